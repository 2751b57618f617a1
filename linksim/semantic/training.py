"""Pure-torch training loops for semantic encoders (paper Algorithms 1 and 2) and representation statistics.

Everything works on in-memory tensors: images ``uint8 [N, C, H, W]`` (or float in [0, 1]), labels
``int64 [N]``. Shuffling and augmentation draw from one seeded ``torch.Generator`` so a run is reproducible
given ``seed`` and the encoder's initial weights (thread count can change float round-off only).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as Fn
from torch import nn

from ..training import EarlyStopper, fit
from .losses import SPARSITY_KINDS, sparsity_loss, supcon_loss

__all__ = [
    "augment", "EarlyStopper", "train_encoder", "make_classifier", "train_classifier", "extract_features",
    "compactness", "activation_order", "DEFAULT_LR",
]

# (method, optimizer) -> default learning rate. SGD values are the paper's (CE 0.02, CL 0.05).
DEFAULT_LR = {("ce", "sgd"): 0.02, ("cl", "sgd"): 0.05, ("ce", "adam"): 1e-3, ("cl", "adam"): 1e-3}


def _to_float(images: torch.Tensor) -> torch.Tensor:
    return images.float().div_(255.0) if images.dtype == torch.uint8 else images.float()


def augment(x: torch.Tensor, generator: torch.Generator, scale: tuple[float, float] = (0.6, 1.0),
            ratio: tuple[float, float] = (3 / 4, 4 / 3), flip_p: float = 0.5, brightness: float = 0.4,
            contrast: float = 0.4) -> torch.Tensor:
    """Batched random augmentation of ``x [B, C, H, W]`` (float in [0, 1], or uint8) -> float in [0, 1].

    Random resized crop (area fraction ``scale``, aspect ``ratio`` log-uniform, crop box inside the image)
    and horizontal flip with probability ``flip_p`` as one affine warp (``affine_grid`` + bilinear
    ``grid_sample``, output size = input size); then brightness ``x * b`` and contrast
    ``(x - mean) * c + mean`` with ``b, c ~ U[1 - s, 1 + s]``, clamped to [0, 1]. All random numbers come from
    ``generator`` (a CPU generator; they are moved to ``x.device``), in a fixed order.
    """
    x = _to_float(x)
    b = x.shape[0]
    if b == 0:
        return x

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, generator=generator)

    s = u(*scale)
    r = torch.exp(u(math.log(ratio[0]), math.log(ratio[1])))
    w = torch.sqrt(s * r).clamp(max=1.0)
    h = torch.sqrt(s / r).clamp(max=1.0)
    tx = (2 * torch.rand(b, generator=generator) - 1) * (1 - w)
    ty = (2 * torch.rand(b, generator=generator) - 1) * (1 - h)
    sign = torch.where(torch.rand(b, generator=generator) < flip_p, -1.0, 1.0)
    bright = u(1 - brightness, 1 + brightness)
    contr = u(1 - contrast, 1 + contrast)

    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = w * sign
    theta[:, 0, 2] = tx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = ty
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = Fn.affine_grid(theta, list(x.shape), align_corners=False)
    out = Fn.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    out = out * bright.to(x.device, x.dtype).view(b, 1, 1, 1)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = (out - mean) * contr.to(x.device, x.dtype).view(b, 1, 1, 1) + mean
    return out.clamp_(0.0, 1.0)


def _make_optimizer(params, optimizer: str, lr: float, momentum: float, weight_decay: float):
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {optimizer!r}; use 'sgd' or 'adam'")


def _seeded_init(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def train_encoder(encoder: nn.Module, images: torch.Tensor, labels: torch.Tensor, method: str = "cl",
                  sparsity: str = "none", lam: float = 0.0, epochs_max: int = 100, patience: int = 5,
                  batch_size: int = 256, lr: float | None = None, temperature: float = 0.07, seed: int = 0,
                  progress: Callable[[dict], None] | None = None, optimizer: str = "adam",
                  momentum: float = 0.9, weight_decay: float = 1e-4, num_classes: int | None = None,
                  proj_dim: int = 128, proj_hidden: int | None = None, augment_ce: bool = True,
                  min_delta: float = 0.0, device: str | torch.device | None = None,
                  max_seconds: float | None = None, where: str | None = None, name: str = "encoder",
                  show_progress: bool = False) -> dict:
    """Train ``encoder`` (a :class:`~linksim.semantic.models.SemanticEncoder`) in place; return a summary.

    ``method="ce"``: encoder + linear head ``nn.Linear(nf, num_classes)`` trained jointly with cross-entropy
    (Algorithm 1) on one augmented view (``augment_ce``) of each image. ``method="cl"``: SupCon (Eq. 2) on
    two augmented views through encoder + projection head ``Linear(nf, hidden) - ReLU - Linear(hidden,
    proj_dim)`` with L2-normalised output (Algorithm 2, first stage); the projection head is discarded.
    Loss = basic + ``lam`` * sparsity(``sparsity``) (Eq. 12), sparsity on ``F`` / ``mask`` of every view.

    Optimiser: ``"adam"`` (default, lr 1e-3) or ``"sgd"`` (momentum 0.9, the paper's lr CE 0.02 / CL 0.05);
    ``lr=None`` picks :data:`DEFAULT_LR`. ``weight_decay`` applies to both. One epoch = one pass over the
    shuffled data in full batches (a last partial batch is dropped when ``N > batch_size``). The loop is
    :func:`linksim.training.fit`: training stops when the epoch's mean total loss has not improved for
    ``patience`` epochs, after ``epochs_max`` epochs, or (safety net, with a warning) once ``max_seconds``
    of wall time have passed. The encoder is left in eval mode.

    Returns ``{"epochs", "losses" (total per epoch), "basic_losses", "sparse_losses", "n_active" (mean number
    of non-zero X entries per training sample, per epoch), "collapsed", "head" (CE: the linear head's
    state_dict on CPU, else None), "num_classes", "optimizer", "lr", "batch_size",
    "stopped"/"stopped_by": "patience"|"epochs"|"time_cap"|"collapsed", "seconds"}``. ``progress(info)`` is
    called after each epoch with ``{"epoch", "loss", "basic", "sparse", "n_active"}``.

    Mask collapse: with "ms"/"ws" and a too large ``lam`` the mask-net's final ReLU can switch every entry
    off; the gradient is then zero for good. Training stops at once with ``stopped == "collapsed"``
    (on SmallCNN / Fashion-MNIST: lam = 0.1 (Adam) and 0.01 (SGD) collapsed in epoch 1; lam = 0.01 with Adam
    gave N2 ~ 5 active features).
    """
    if method not in ("ce", "cl"):
        raise ValueError(f"unknown method {method!r}; use 'ce' or 'cl'")
    if sparsity not in SPARSITY_KINDS:
        raise ValueError(f"unknown sparsity {sparsity!r}; choose from {SPARSITY_KINDS}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError("images and labels differ in length")
    if device is None:
        device = next(encoder.parameters()).device
    device = torch.device(device)
    labels = labels.long()
    n = images.shape[0]
    nf = int(getattr(encoder, "nf"))
    if num_classes is None:
        num_classes = int(labels.max()) + 1
    lr = DEFAULT_LR[(method, optimizer)] if lr is None else float(lr)

    encoder.to(device)
    if method == "ce":
        head = _seeded_init(seed, lambda: nn.Linear(nf, num_classes)).to(device)
    else:
        hid = nf if proj_hidden is None else int(proj_hidden)
        head = _seeded_init(seed, lambda: nn.Sequential(
            nn.Linear(nf, hid), nn.ReLU(inplace=True), nn.Linear(hid, proj_dim))).to(device)
    params = list(encoder.parameters()) + list(head.parameters())
    opt = _make_optimizer(params, optimizer, lr, momentum, weight_decay)

    def step(idx, gen):
        xb = images[idx].to(device)
        yb = labels[idx].to(device)
        if method == "cl":
            x_in = torch.cat([augment(xb, gen), augment(xb, gen)], dim=0)
        else:
            x_in = augment(xb, gen) if augment_ce else _to_float(xb)
        out = encoder(x_in)
        if method == "cl":
            basic = supcon_loss(Fn.normalize(head(out["X"]), dim=1), yb, temperature)
        else:
            basic = Fn.cross_entropy(head(out["X"]), yb)
        sparse = sparsity_loss(sparsity, out["F"], out["mask"])
        return {"loss": basic + lam * sparse, "basic": basic, "sparse": sparse,
                "n_active": (out["X"].detach() > 0).sum(dim=1).float().mean()}

    def epoch_end(epoch, info):
        if progress is not None:
            progress({"epoch": epoch, **info})
        # every X entry was 0 for the whole epoch: ReLU-dead mask, cannot recover
        return "collapsed" if info["n_active"] == 0.0 else None

    res = fit(step, n, optimizer=opt, epochs=epochs_max, batch_size=batch_size, seed=seed, patience=patience,
              min_delta=min_delta, max_seconds=max_seconds, drop_last=True, epoch_end=epoch_end,
              modules=[encoder, head], where=where, name=name, progress=show_progress)
    h = res["history"]
    head_state = None
    if method == "ce":
        head_state = {k: v.detach().cpu().clone() for k, v in head.state_dict().items()}
    return {**res, "basic_losses": h.get("basic", []), "sparse_losses": h.get("sparse", []),
            "n_active": h.get("n_active", []), "collapsed": res["stopped_by"] == "collapsed",
            "head": head_state, "num_classes": num_classes, "optimizer": optimizer, "lr": lr,
            "stopped": res["stopped_by"]}


class _Standardize(nn.Module):
    """Fixed per-feature affine ``(x - mean) / std`` (buffers, saved in the state_dict)."""

    def __init__(self, d: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("std", torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def make_classifier(d: int, num_classes: int, hidden: int = 0, standardize: bool = False) -> nn.Sequential:
    """The architecture :func:`train_classifier` returns (rebuild it to ``load_state_dict`` a saved one).

    ``hidden == 0``: ``Linear(d, num_classes)``; else ``Linear(d, hidden) - ReLU - Linear(hidden, num_classes)``;
    preceded by a fixed standardisation layer when ``standardize``.
    """
    layers: list[nn.Module] = [_Standardize(d)] if standardize else []
    if hidden and hidden > 0:
        layers += [nn.Linear(d, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes)]
    else:
        layers += [nn.Linear(d, num_classes)]
    return nn.Sequential(*layers)


def train_classifier(features: torch.Tensor, labels: torch.Tensor, num_classes: int, hidden: int = 0,
                     epochs: int = 100, batch_size: int = 256, lr: float = 1e-3, seed: int = 0,
                     patience: int = 5, weight_decay: float = 0.0, standardize: bool = False,
                     min_delta: float = 1e-4, max_seconds: float | None = None, where: str | None = None,
                     name: str = "classifier", show_progress: bool = False,
                     summary: dict | None = None) -> nn.Sequential:
    """Train a linear (``hidden=0``) or one-hidden-layer classifier on fixed features with Adam + CE.

    Early stopping on the epoch's mean training loss (``patience`` epochs without improving by
    ``min_delta``), at most ``epochs`` epochs. ``standardize`` folds the training features' per-dimension
    mean/std (std floored at 10 % of the mean per-feature std) into the model. Returns the model
    (``make_classifier`` layout) in eval mode, on the features' device; the loop's summary
    (:func:`linksim.training.fit`) goes into ``summary`` when a dict is given.
    """
    x = features.detach().float()
    y = labels.detach().long().to(x.device)
    n, d = x.shape
    model = _seeded_init(seed, lambda: make_classifier(d, num_classes, hidden, standardize)).to(x.device)
    if standardize:
        model[0].mean.copy_(x.mean(dim=0))
        # floor: 10 % of the mean per-feature std. A feature that is (almost) constant in training -- most
        # entries of a sparse representation -- must not amplify test-time noise by 1/std.
        std = x.std(dim=0, unbiased=False)
        model[0].std.copy_(std.clamp(min=max(1e-6, 0.1 * float(std.mean()))))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    # the fixed standardisation is applied once to the whole training set, not per batch (elementwise, so the
    # values are the same; it was about a tenth of the main job's classifier training time)
    xs, trained = (model[0](x), model[1:]) if standardize else (x, model)

    def step(idx, gen):
        idx = idx.to(x.device)
        return Fn.cross_entropy(trained(xs[idx]), y[idx])

    res = fit(step, n, optimizer=opt, epochs=epochs, batch_size=batch_size, seed=seed, patience=patience,
              min_delta=min_delta, max_seconds=max_seconds, drop_last=False, weighted=True, modules=[model],
              where=where, name=name, progress=show_progress, threads=1)
    if summary is not None:
        summary.update(res)
    return model.eval()


@torch.no_grad()
def extract_features(encoder: nn.Module, images: torch.Tensor, batch_size: int = 1024,
                     key: str = "X") -> torch.Tensor:
    """Run ``encoder`` in eval mode over ``images`` (uint8 or float) and return ``out[key]`` on CPU ``[N, nf]``."""
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    outs = []
    for k in range(0, images.shape[0], batch_size):
        out = encoder(_to_float(images[k:k + batch_size].to(device)))
        outs.append(out[key].detach().cpu())
    encoder.train(was_training)
    return torch.cat(outs) if outs else torch.zeros(0, int(getattr(encoder, "nf", 0)))


def compactness(X: torch.Tensor, threshold: float = 0.0455) -> tuple[int, float, torch.Tensor]:
    """Compactness / sparsity statistics of representations ``X [N, nf]`` (paper Table I).

    Returns ``(N1, N2, p_active)``: ``p_active[i]`` = fraction of samples with ``X[:, i] > 0``;
    ``N1`` = number of features with ``p_active > threshold`` (N1(2 sigma) with the default 4.55 %);
    ``N2`` = mean number of non-zero (positive) features per sample.
    """
    X = torch.as_tensor(X)
    active = X > 0
    p = active.float().mean(dim=0) if X.shape[0] else torch.zeros(X.shape[1])
    n1 = int((p > threshold).sum())
    n2 = float(active.sum(dim=1).float().mean()) if X.shape[0] else 0.0
    return n1, n2, p


def activation_order(X: torch.Tensor) -> torch.Tensor:
    """Feature indices by decreasing activation count ``#{n : X[n, i] > 0}``, ties broken by smaller index.

    The first K entries are the MaxPro-K index set (paper Eq. 13).
    """
    counts = (torch.as_tensor(X) > 0).sum(dim=0).long()
    return torch.sort(-counts, stable=True).indices
