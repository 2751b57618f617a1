"""``simclr_encoder``: SimCLR baseline (Chen et al. 2020): NT-Xent between the projections of two views."""
from __future__ import annotations

from ...losses import nt_xent
from .base import SSLEncoderBlock


class SimCLREncoder(SSLEncoderBlock):
    """Local encoder trained with SimCLR's NT-Xent loss (same model, data and budget as the KB-guided one)."""

    type_name = "simclr_encoder"
    method = "simclr"
    pair_loss = staticmethod(nt_xent)
