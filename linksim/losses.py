"""Every training loss of linksim, in one place (the training loop is :mod:`linksim.training`).

- paper 000 (DNRL): supervised contrastive loss (Eq. 2) and the sparsity penalties (Eqs. 6-8). The sparsity
  losses are l1 norms summed over features (all non-batch dimensions) and averaged over the batch, so ``lam``
  does not depend on the batch size;
- self-supervised encoders (paper 003 and its baselines): SimCLR's NT-Xent and the decoupled contrastive loss;
- JSCC / SMRC (paper 001): per-layer ``alpha`` * MSE + class-weighted cross-entropy (:class:`LayerLoss`).
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as Fn

__all__ = ["supcon_loss", "feature_l1", "mask_l1", "weighted_l1", "sparsity_loss", "SPARSITY_KINDS", "nt_xent",
           "dcl_loss", "LayerLoss"]

SPARSITY_KINDS = ("none", "fs", "ms", "ws")


def supcon_loss(z: torch.Tensor, labels: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, "L_out"; the paper's Eq. 2).

    ``z``: ``[V*B, d]`` L2-normalised embeddings of V views stacked view-major (``[view1; view2]``);
    ``labels``: ``[B]``. For every anchor i, with A(i) = all other samples and P(i) = those with i's label,
    ``l_i = -1/|P(i)| sum_{p in P(i)} log( exp(z_i.z_p/t) / sum_{a in A(i)} exp(z_i.z_a/t) )``; the loss
    is the mean over anchors with at least one positive (with >= 2 views every anchor has one). Self-similarity
    is excluded from numerator and denominator; rows are shifted by their max for stability. (No
    ``temperature / base_temperature`` factor: identical to the reference code at t = 0.07.)
    """
    if z.dim() != 2:
        raise ValueError("z must be [V*B, d]")
    labels = labels.reshape(-1)
    n, b = z.shape[0], labels.shape[0]
    if b == 0 or n % b:
        raise ValueError(f"z has {n} rows, not a multiple of {b} labels")
    lab = labels.repeat(n // b)
    logits = (z @ z.T) / temperature
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    logits = logits - logits.amax(dim=1, keepdim=True).detach()
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = (lab[:, None] == lab[None, :]) & ~self_mask
    n_pos = pos.sum(dim=1)
    mean_log_pos = log_prob.masked_fill(~pos, 0.0).sum(dim=1) / n_pos.clamp(min=1)
    has = n_pos > 0
    if not bool(has.any()):
        return z.sum() * 0.0
    return -mean_log_pos[has].mean()


def _l1(t: torch.Tensor) -> torch.Tensor:
    return t.abs().flatten(1).sum(dim=1).mean()


def feature_l1(F: torch.Tensor) -> torch.Tensor:
    """Feature-based sparsity (FS, Eq. 6): ``||F||_1`` per sample, averaged over the batch."""
    return _l1(F)


def mask_l1(mask: torch.Tensor) -> torch.Tensor:
    """Mask-based sparsity (MS, Eq. 7): ``||F_mask||_1`` per sample, averaged over the batch."""
    return _l1(mask)


def weighted_l1(mask: torch.Tensor, F: torch.Tensor) -> torch.Tensor:
    """Weighted sparsity (WS, Eq. 8): ``||F_mask o F||_1`` (= ``||X||_1``) per sample, averaged over the batch."""
    return _l1(mask * F)


def sparsity_loss(kind: str, F: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Dispatch on ``kind`` in ``("none", "fs", "ms", "ws")``; "ms"/"ws" need a mask (mask-net encoder)."""
    if kind == "none":
        return F.new_zeros(())
    if kind == "fs":
        return feature_l1(F)
    if kind in ("ms", "ws"):
        if mask is None:
            raise ValueError(f"sparsity {kind!r} needs an encoder with a mask-net (mask=True)")
        return mask_l1(mask) if kind == "ms" else weighted_l1(mask, F)
    raise ValueError(f"unknown sparsity kind {kind!r}; choose from {SPARSITY_KINDS}")


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent over 2B views (positives: the other view; negatives: the 2B - 2 others)."""
    z = Fn.normalize(torch.cat([z1, z2]), dim=1)
    b = z1.shape[0]
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return Fn.cross_entropy(sim, target)


def dcl_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Decoupled contrastive loss, symmetric: mean over both directions of
    -<z, z+>/t + log sum_{negatives} exp(<z, z->/t), negatives = the 2B - 2 views of the other samples."""
    z1, z2 = Fn.normalize(z1, dim=1), Fn.normalize(z2, dim=1)
    b = z1.shape[0]
    eye = torch.eye(b, dtype=torch.bool, device=z1.device)

    def one(a, c):
        pos = (a * c).sum(1) / temperature
        neg = torch.cat([a @ c.T, a @ a.T], dim=1) / temperature
        neg = neg.masked_fill(torch.cat([eye, eye], dim=1), float("-inf"))
        return (-pos + torch.logsumexp(neg, dim=1)).mean()

    return 0.5 * (one(z1, z2) + one(z2, z1))


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
