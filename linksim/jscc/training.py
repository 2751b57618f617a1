"""End-to-end training of JSCC encoders and decoders through the differentiable training channel.

One loop serves deep JSCC (one layer, MSE only), multi-resolution JSCC (L layers, sum over layers of
alpha_l * MSE + class-weighted cross-entropy) and decoder fine-tuning (no encoder: the inputs are received
symbols). Shuffling and channel noise draw from one seeded CPU ``torch.Generator``, so a run is reproducible
given the seed and the initial weights (thread count can change float round-off only).
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as Fn
from torch import nn

from .models import training_channel


@dataclasses.dataclass
class LayerLoss:
    """Loss of one decoder: ``alpha`` * MSE + cross-entropy weighted per class of this layer's class space.

    ``class_weights`` (``[K]``, None = no semantic loss) weights each sample's cross-entropy by the weight of
    its true class (mean over the batch, so a uniform weight w scales the term by w); ``label_map`` (``[C]``,
    None = identity) maps original labels to this layer's classes (class pooling).
    """

    alpha: float = 1.0
    class_weights: torch.Tensor | None = None
    label_map: torch.Tensor | None = None

    def __call__(self, img, logits, target, labels) -> tuple[torch.Tensor, float, float]:
        mse = Fn.mse_loss(img, target)
        loss = self.alpha * mse
        ce_val = 0.0
        if self.class_weights is not None and logits is not None:
            y = labels if self.label_map is None else self.label_map.to(labels.device)[labels]
            w = self.class_weights.to(logits.device)[y]
            ce = (Fn.cross_entropy(logits, y, reduction="none") * w).mean()
            loss = loss + ce
            ce_val = float(ce.detach())
        return loss, float(mse.detach()), ce_val


def train_jscc(encoder: nn.Module | None, decoders: nn.Module, losses: list[LayerLoss | None],
               inputs: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor | None, *,
               channel: str | None, snr_db: tuple[float, float], epochs: int, lr: float, batch_size: int,
               seed: int, max_seconds: float | None = None, device: str | torch.device = "cpu",
               progress: Callable[[dict], None] | None = None) -> dict:
    """Train ``encoder`` (if given) and ``decoders`` jointly with Adam; returns a summary.

    ``decoders`` maps received symbols to ``[(image, logits)]``, one entry per layer (a
    :class:`~linksim.jscc.models.DecoderStack`); layer l is scored by ``losses[l]`` (None: not scored).
    With an encoder, ``inputs`` are images, symbols = encoder(images) pass the training channel (``channel``,
    ``snr_db``) and decoder l sees the received symbols (it keeps its own prefix). Without one (fine-tuning),
    ``inputs`` are received symbols fed to the decoders as they are. One epoch = one pass over the shuffled
    data in full batches (a last partial batch is dropped when N > batch_size); training stops after
    ``epochs`` or once ``max_seconds`` of wall time have passed (checked after every batch).
    Returns ``{"epochs", "losses", "mse", "ce" (per epoch, summed over layers), "stopped", "seconds"}``.
    """
    device = torch.device(device)
    mods = ([encoder] if encoder is not None else []) + [decoders]
    params = [p for m in mods for p in m.to(device).parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(int(seed))
    n = inputs.shape[0]
    bs = min(int(batch_size), n)
    n_batches = max(n // bs, 1)
    hist = {"losses": [], "mse": [], "ce": []}
    stopped = "epochs"
    t0 = time.perf_counter()
    for m in mods:
        m.train()
    for epoch in range(int(epochs)):
        perm = torch.randperm(n, generator=gen)
        tot = mse_sum = ce_sum = 0.0
        done = 0
        for k in range(n_batches):
            idx = perm[k * bs:(k + 1) * bs]
            xb = inputs[idx].to(device)
            tb = targets[idx].to(device).float()
            yb = labels[idx].to(device) if labels is not None else None
            if encoder is not None:
                sym = training_channel(encoder(xb), channel, snr_db, gen)
            else:
                sym = xb
            loss = torch.zeros((), device=device)
            for (img, logits), lf in zip(decoders(sym), losses):
                if lf is None:
                    continue
                l, mse, ce = lf(img, logits, tb, yb)
                loss = loss + l
                mse_sum += mse
                ce_sum += ce
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss.detach())
            done += 1
            if not math.isfinite(tot):
                raise FloatingPointError(f"JSCC training diverged in epoch {epoch + 1} (loss {tot})")
            if max_seconds is not None and time.perf_counter() - t0 >= max_seconds:
                stopped = "max_seconds"
                break
        hist["losses"].append(tot / done)
        hist["mse"].append(mse_sum / done)
        hist["ce"].append(ce_sum / done)
        if progress is not None:
            progress({"epoch": epoch + 1, "loss": hist["losses"][-1], "mse": hist["mse"][-1],
                      "seconds": time.perf_counter() - t0})
        if stopped == "max_seconds":
            break
    for m in mods:
        m.eval()
    return {"epochs": len(hist["losses"]), **hist, "stopped": stopped, "seconds": time.perf_counter() - t0}


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
