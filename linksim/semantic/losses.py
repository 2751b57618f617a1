"""The DNRL losses (supervised contrastive, sparsity); they live in :mod:`linksim.losses` with every other loss."""
from ..losses import SPARSITY_KINDS, feature_l1, mask_l1, sparsity_loss, supcon_loss, weighted_l1

__all__ = ["supcon_loss", "feature_l1", "mask_l1", "weighted_l1", "sparsity_loss", "SPARSITY_KINDS"]
