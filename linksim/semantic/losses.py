"""Training losses of the paper: supervised contrastive loss (Eq. 2) and the sparsity penalties (Eqs. 6-8).

All sparsity losses are l1 norms summed over features (all non-batch dimensions) and averaged over the
batch, so ``lam`` does not depend on the batch size.
"""
from __future__ import annotations

import torch

__all__ = ["supcon_loss", "feature_l1", "mask_l1", "weighted_l1", "sparsity_loss", "SPARSITY_KINDS"]

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
