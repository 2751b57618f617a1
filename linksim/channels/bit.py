"""Bit-level channels: binary symmetric and binary erasure. One channel use = one binary symbol.

Sionna's ``BinarySymmetricChannel`` / ``BinaryErasureChannel`` sample every bit through a differentiable
Gumbel-softmax (two uniforms, four logarithms and a softmax per bit), which is what end-to-end training
through the channel needs but dominates run time for long payloads (a float32 feature payload is 16k bits
per sample). With ``differentiable: false`` (default) the same channel is sampled directly with one uniform
per bit (flip / erase where u < p); ``differentiable: true`` uses Sionna's blocks.
"""
from __future__ import annotations

import pydantic
import torch

from ..block import IN_TRAINING, LABEL, Block, Impairment, Params, Port, Spec, expect, labelled

LLR_MAX = 20.0


class _BitChannel(Impairment, Block):
    role = "channel"
    inputs = {"bits": Port(("bits",), "0/1 bits")}
    outputs = {"bits": "received bits (erasures resolved to 0)", "llr": "LLRs log p(1)/p(0); 0 = erased"}
    sionna_block: str = ""  # class name in sionna.phy.channel, used when differentiable

    class Params(Params):
        p: float = pydantic.Field(ge=0.0, le=1.0, description="flip (BSC) or erasure (BEC) probability")
        differentiable: bool = pydantic.Field(False, description="use Sionna's Gumbel-softmax sampler")
        in_training: bool = IN_TRAINING
        label: str | None = LABEL

    def __init__(self, name, params, ctx):
        super().__init__(name, params, ctx)
        import sionna.phy.channel as sch

        self.ch = getattr(sch, self.sionna_block)(device=ctx.device)

    def setup(self, specs):
        expect(specs["bits"], "bits", "bits")
        self.uses = specs["bits"].size
        return {"bits": specs["bits"], "llr": Spec("llr", specs["bits"].shape, specs["bits"].meta)}

    def forward(self, bits):
        if self.bypassed():
            return {"bits": bits.float(), "llr": (2 * bits.float() - 1) * LLR_MAX}
        return self.transmit(bits)

    def impair(self, x: torch.Tensor, hit: torch.Tensor) -> torch.Tensor:
        """x where the channel leaves a bit alone, ``hit`` where it strikes (probability p per bit)."""
        if self.p.p <= 0:
            return x
        if self.p.differentiable:
            return self.ch(x, self.p.p)
        return torch.where(torch.rand(x.shape, device=x.device) < self.p.p, hit, x)

    def report(self):
        return labelled(self, {"channel_uses_per_sample": float(self.uses)})


class BSCChannel(_BitChannel):
    """Binary symmetric channel with crossover probability p (Sionna BinarySymmetricChannel semantics)."""

    type_name = "bsc"
    sionna_block = "BinarySymmetricChannel"

    def transmit(self, bits):
        x = bits.float()
        y = self.impair(x, 1.0 - x)
        p = min(max(self.p.p, 1e-9), 1 - 1e-9)
        mag = min(abs(float(torch.log(torch.tensor((1 - p) / p)))), LLR_MAX)
        return {"bits": y, "llr": (2 * y - 1) * mag}


class BECChannel(_BitChannel):
    """Binary erasure channel with erasure probability p (Sionna BinaryErasureChannel semantics)."""

    type_name = "bec"
    sionna_block = "BinaryErasureChannel"

    def transmit(self, bits):
        x = bits.float()
        y = self.impair(x, torch.full_like(x, -1.0))
        erased = y < 0
        llr = torch.where(erased, torch.zeros_like(y), (2 * y - 1) * LLR_MAX)
        return {"bits": torch.where(erased, torch.zeros_like(y), y), "llr": llr}
