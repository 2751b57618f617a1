"""LMMSE / ZF equalisation (MIMO detection per RE) of OFDM grids (Sionna ``LMMSEEqualizer`` /
``ZFEqualizer`` with ``StreamManagement``), back to the transmitter's symbol vector.

Outputs the equalised data symbols of the sample (padding removed, in the order the mapper took them) and
their effective noise variance (post-equalisation, including the channel-estimation error), with the port
metadata of the transmitter restored: ``qam_demapper``, ``ldpc5g_decoder``, ``jscc_decoder``, ... plug in
unchanged, exactly as behind the flat channels' ``y``/``nvar``.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import pydantic
import torch

from ..block import Block, Params, Port, Spec
from .grid import grid_of


class OFDMEqualizerBlock(Block):
    """LMMSE or ZF equalisation per RE -> the sample's data symbols and their effective noise variance."""

    type_name = "ofdm_equalizer"
    role = "link"
    inputs = {"y": Port(("complex",), "received grids (ofdm_channel.y)"),
              "h_hat": Port(("complex",), "channel estimate (ofdm_estimator.h_hat)"),
              "err_var": Port(("real",), "estimation error variance (ofdm_estimator.err_var)"),
              "nvar": Port(("real",), "noise variance (ofdm_channel.nvar)")}
    outputs = {"y": "equalised data symbols (the transmitter's vector)",
               "nvar": "effective noise variance per symbol"}

    class Params(Params):
        method: Literal["lmmse", "zf"] = pydantic.Field("lmmse", description="linear MIMO equaliser per RE")

    def setup(self, specs):
        g = grid_of(specs["y"], "y")
        self.grid = g
        self.R = specs["y"].shape[1]
        from sionna.phy.mimo import StreamManagement
        from sionna.phy.ofdm import LMMSEEqualizer, ZFEqualizer

        sm = StreamManagement(np.ones([1, 1], int), g.streams)
        cls = LMMSEEqualizer if self.p.method == "lmmse" else ZFEqualizer
        self.eq = cls(g.rg, sm, device=self.ctx.device)
        meta = g.inner_meta
        return {"y": Spec("complex", (g.num_symbols,), meta), "nvar": Spec("real", (g.num_symbols,), meta)}

    def forward(self, y, h_hat, err_var, nvar):
        g, R = self.grid, self.R
        b, S = y.shape[0], g.slots
        rg = g.rg
        yy = y.reshape(b * S, 1, R, rg.num_ofdm_symbols, rg.fft_size)
        hh = h_hat.reshape(b * S, 1, R, 1, g.streams, rg.num_ofdm_symbols, rg.num_effective_subcarriers)
        ev = err_var.reshape(hh.shape)
        no = nvar.reshape(b, 1).expand(b, S).reshape(b * S, 1, 1).expand(b * S, 1, R)
        x_hat, no_eff = self.eq(yy, hh, ev, no)  # [b*S, 1, layers, data_symbols]
        x_hat = x_hat.reshape(b, -1)[:, : g.num_symbols]
        no_eff = no_eff.reshape(b, -1)[:, : g.num_symbols]
        return {"y": x_hat, "nvar": no_eff}
