"""Channel estimation on OFDM resource grids: LS at the pilots with interpolation (Sionna
``LSChannelEstimator``) or perfect CSI (the channel's true response with the nulled carriers removed, Sionna
``RemoveNulledSubcarriers``; estimation error variance 0)."""
from __future__ import annotations

from typing import Literal

import pydantic
import torch

from ..block import Block, Params, Port, Spec
from ..errors import PortError
from .grid import grid_of


class OFDMEstimator(Block):
    """Channel estimate per used RE, layer and receive antenna, plus its error variance."""

    type_name = "ofdm_estimator"
    role = "link"
    inputs = {"y": Port(("complex",), "received grids (ofdm_channel.y)"),
              "nvar": Port(("real",), "noise variance (ofdm_channel.nvar)"),
              "h": Port(("complex",), "true channel (ofdm_channel.h), needed for csi: perfect", optional=True)}
    outputs = {"h_hat": "channel estimate [slots, rx_ant, layers, ofdm_symbols, used_carriers]",
               "err_var": "estimation error variance, same shape"}

    class Params(Params):
        csi: Literal["perfect", "ls"] = pydantic.Field("ls", description="perfect CSI or LS pilot estimation")
        interpolation: Literal["nn", "lin", "lin_time_avg"] = pydantic.Field(
            "lin", description="LS interpolation over the grid (Sionna): nearest neighbour, linear, linear with "
                               "averaging over OFDM symbols")

    def setup(self, specs):
        g = grid_of(specs["y"], "y")
        self.grid = g
        if self.p.csi == "perfect" and "h" not in specs:
            raise PortError("csi: perfect needs the true channel: connect input 'h' (ofdm_channel.h)")
        if self.p.csi == "ls" and g.params["pilot_pattern"] != "kronecker":
            raise ValueError("csi: ls needs pilots, but the grid's pilot_pattern is empty (use kronecker)")
        from sionna.phy.ofdm import LSChannelEstimator, RemoveNulledSubcarriers

        dev = self.ctx.device
        if self.p.csi == "ls":
            self.ls = LSChannelEstimator(g.rg, interpolation_type=self.p.interpolation, device=dev)
        self.remove_nulled = RemoveNulledSubcarriers(g.rg, device=dev)
        R = specs["y"].shape[1]
        self.R = R
        shape = (g.slots, R, g.streams, g.rg.num_ofdm_symbols, g.rg.num_effective_subcarriers)
        return {"h_hat": Spec("complex", shape, {"ofdm": g}), "err_var": Spec("real", shape)}

    def forward(self, y, nvar, h=None):
        g = self.grid
        b, S = y.shape[0], g.slots
        if self.p.csi == "perfect":
            h_hat = self.remove_nulled(h)  # acts on the last dimension (FFT -> used carriers)
            return {"h_hat": h_hat, "err_var": torch.zeros(h_hat.shape, device=h_hat.device)}
        yy = y.reshape(b * S, 1, self.R, g.rg.num_ofdm_symbols, g.rg.fft_size)
        no = nvar.reshape(b, 1).expand(b, S).reshape(b * S, 1, 1).expand(b * S, 1, self.R)
        h_hat, err = self.ls(yy, no)  # [b*S, 1, R, 1, layers, ofdm_symbols, used]
        shape = (b, S, self.R, g.streams, g.rg.num_ofdm_symbols, g.rg.num_effective_subcarriers)
        return {"h_hat": h_hat.reshape(shape), "err_var": err.broadcast_to(h_hat.shape).reshape(shape)}
