"""End-to-end training of JSCC encoders and decoders through the differentiable training channel.

One loop serves deep JSCC (one layer, MSE only), multi-resolution JSCC (L layers, sum over layers of
alpha_l * MSE + class-weighted cross-entropy) and decoder fine-tuning (no encoder: the inputs are received
symbols). Shuffling and channel noise draw from one seeded CPU ``torch.Generator``, so a run is reproducible
given the seed and the initial weights (thread count can change float round-off only).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..losses import LayerLoss  # noqa: F401  (smrc / deep_jscc import it from here)
from ..training import fit
from .models import training_channel




def train_jscc(encoder: nn.Module | None, decoders: nn.Module, losses: list[LayerLoss | None],
               inputs: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor | None, *,
               channel: str | None, snr_db: tuple[float, float], epochs: int, lr: float, batch_size: int,
               seed: int, max_seconds: float | None = None, device: str | torch.device = "cpu",
               progress: Callable[[dict], None] | None = None, where: str | None = None,
               name: str = "jscc", csi_error: float = 0.0) -> dict:
    """Train ``encoder`` (if given) and ``decoders`` jointly with Adam; returns a summary.

    ``decoders`` maps received symbols to ``[(image, logits)]``, one entry per layer (a
    :class:`~linksim.jscc.models.DecoderStack`); layer l is scored by ``losses[l]`` (None: not scored).
    With an encoder, ``inputs`` are images, symbols = encoder(images) pass the training channel (``channel``,
    ``snr_db``, ``csi_error``) and decoder l sees the received symbols (it keeps its own prefix). Without one (fine-tuning),
    ``inputs`` are received symbols fed to the decoders as they are. One epoch = one pass over the shuffled
    data in full batches (a last partial batch is dropped when N > batch_size), in the one training loop
    (:func:`linksim.training.fit`): training stops after ``epochs`` or (safety net, with a warning) once
    ``max_seconds`` of wall time have passed. Returns ``{"epochs", "losses", "mse", "ce" (per epoch, summed
    over layers), "stopped_by", "seconds"}``.
    """
    device = torch.device(device)
    mods = ([encoder] if encoder is not None else []) + [decoders]
    params = [p for m in mods for p in m.to(device).parameters()]
    opt = torch.optim.Adam(params, lr=lr)

    def step(idx, gen):
        xb = inputs[idx].to(device)
        tb = targets[idx].to(device).float()
        yb = labels[idx].to(device) if labels is not None else None
        sym = training_channel(encoder(xb), channel, snr_db, gen, csi_error) if encoder is not None else xb
        loss = torch.zeros((), device=device)
        mse_sum = ce_sum = 0.0
        for (img, logits), lf in zip(decoders(sym), losses):
            if lf is None:
                continue
            l, mse, ce = lf(img, logits, tb, yb)
            loss = loss + l
            mse_sum += mse
            ce_sum += ce
        return {"loss": loss, "mse": mse_sum, "ce": ce_sum}

    def epoch_end(epoch, info):
        if progress is not None:
            progress({"epoch": epoch, **info})

    res = fit(step, inputs.shape[0], optimizer=opt, epochs=epochs, batch_size=batch_size, seed=seed,
              max_seconds=max_seconds, drop_last=True, epoch_end=epoch_end, modules=mods, where=where, name=name)
    h = res["history"]
    return {**res, "mse": h.get("mse", []), "ce": h.get("ce", []), "stopped": res["stopped_by"]}


def tqdm_progress(enabled: bool, total: int, desc: str):
    """(callback, close) showing one tqdm step per epoch with the loss, when ``enabled``."""
    if not enabled:
        return None, lambda: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="ep", leave=False)

    def cb(info):
        bar.update(1)
        bar.set_postfix(loss=f"{info['loss']:.4f}", mse=f"{info['mse']:.4f}")

    return cb, bar.close
