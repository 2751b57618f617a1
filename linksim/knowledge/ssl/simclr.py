"""``simclr_encoder``: SimCLR baseline (Chen et al. 2020): NT-Xent between the projections of two views."""
from __future__ import annotations

from .base import SSLEncoderBlock, nt_xent


class SimCLREncoder(SSLEncoderBlock):
    """Local encoder trained with SimCLR's NT-Xent loss (same model, data and budget as the KB-guided one)."""

    type_name = "simclr_encoder"
    method = "simclr"

    def loss(self, v1, v2, gen):
        _, z1 = self.model(v1)
        _, z2 = self.model(v2)
        return nt_xent(z1, z2, self.p.temperature)
