"""Phase noise: y = x * exp(j phi), the residual carrier phase after synchronisation."""
from __future__ import annotations

import math

import pydantic
import torch

from linksim import IN_TRAINING, Block, Impairment, Params, Port, expect


class PhaseNoise(Impairment, Block):
    """Phase noise on complex symbols: Gaussian phase per symbol (iid), or a Wiener walk along the frame."""

    role = "channel"
    inputs = {"x": Port(("complex",), "complex symbols")}
    outputs = {"y": "the symbols rotated by the phase noise"}

    class Params(Params):
        sigma_deg: float = pydantic.Field(ge=0, description="standard deviation of the phase (iid) or of its "
                                                            "increment per symbol (wiener), degrees")
        wiener: bool = pydantic.Field(False, description="phase random walk along the frame, starting at 0")
        in_training: bool = IN_TRAINING  # Impairment: bypassed on the training split unless true

    def setup(self, specs):
        expect(specs["x"], "complex", "x")
        # the same spec (and metadata, e.g. a paired transmitter) flows on: a channel does not change the shape
        return {"y": specs["x"]}

    def forward(self, x):
        if self.bypassed():
            return {"y": x}
        # the global generator: linksim seeds it per run, system and sweep point (reproducible results)
        phi = torch.randn(x.shape, device=x.device) * math.radians(self.p.sigma_deg)
        if self.p.wiener:
            phi = phi.cumsum(dim=-1)
        return {"y": x * torch.polar(torch.ones_like(phi), phi)}
