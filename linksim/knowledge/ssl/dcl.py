"""``dcl_encoder``: decoupled contrastive learning (Yeh et al. 2022) between the two views, no knowledge base.

The ablation of ``kb_guided_encoder``: the same loss (DCL, the positive pair left out of the denominator)
with p and q themselves instead of the KB-enhanced q*, so a comparison separates what the knowledge base adds
from what the loss adds."""
from __future__ import annotations

from ...losses import dcl_loss
from .base import SSLEncoderBlock


class DCLEncoder(SSLEncoderBlock):
    """Local encoder trained with DCL between the two views (same model, data and budget as the others)."""

    type_name = "dcl_encoder"
    method = "dcl"
    pair_loss = staticmethod(dcl_loss)
