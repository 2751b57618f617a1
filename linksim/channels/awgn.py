"""AWGN channel (Sionna ``AWGN``)."""
from __future__ import annotations

import torch

from .base import SymbolChannel, noise_variance


class AWGNChannel(SymbolChannel):
    """Complex AWGN at Es/N0 = snr_db (Sionna AWGN)."""

    type_name = "awgn"

    def __init__(self, name, params, ctx):
        super().__init__(name, params, ctx)
        from sionna.phy.channel import AWGN

        self.awgn = AWGN(device=ctx.device)

    def transmit(self, x):
        no = noise_variance(self.p.snr_db)
        y = self.awgn(x.to(torch.complex64), no)
        # one value for every symbol: a read-only broadcast view, not a tensor filled per batch
        return {"y": y, "nvar": torch.full((), no, device=y.device).expand(y.shape)}
