"""Bit-level channels: binary symmetric and binary erasure. One channel use = one binary symbol.

Sionna's ``BinarySymmetricChannel`` / ``BinaryErasureChannel`` sample every bit through a differentiable
Gumbel-softmax (two uniforms, four logarithms and a softmax per bit), which is what end-to-end training
through the channel needs but dominates run time for long payloads (a float32 feature payload is 16k bits
per sample). With ``differentiable: false`` (default) the same channel is sampled directly: the positions of
the struck bits are drawn (``bernoulli_positions``); ``differentiable: true`` uses Sionna's blocks.
"""
from __future__ import annotations

import math

import pydantic
import torch

from ..block import IN_TRAINING, LABEL, Block, Impairment, Params, Port, Spec, expect, labelled

LLR_MAX = 20.0
_SPARSE_BELOW = 0.2  # geometric gaps cost ~ n p draws, a dense mask n: the gaps win below about p = 0.2


def bernoulli_positions(n: int, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Sorted indices in [0, n) of an i.i.d. Bernoulli(p) sequence of length n.

    Below p = 0.2 the gaps between successes are drawn (Geometric(p), exactly the same process) instead of n
    uniforms: a 16k-bit float payload at p = 0.01 then costs ~160 draws per sample instead of 16k. Neither
    torch nor Sionna samples sparse Bernoulli positions, hence this helper.
    """
    if p >= _SPARSE_BELOW:
        return (torch.rand(n, generator=generator) < p).nonzero().squeeze(1)
    if p <= 0.0 or n <= 0:  # no success (geometric_ needs p in (0, 1)); nothing drawn, as the blocks do at p = 0
        return torch.zeros(0, dtype=torch.long)
    parts, end = [], -1.0  # end: position of the last success drawn so far
    while end < n - 1:
        m = int((n - 1 - end) * p + 6 * math.sqrt(n * p * (1 - p)) + 16)
        pos = torch.empty(m, dtype=torch.float64).geometric_(p, generator=generator).cumsum_(0).add_(end)
        parts.append(pos)
        end = float(pos[-1])
    pos = torch.cat(parts) if len(parts) > 1 else parts[0]
    return pos[pos < n].long()


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
        self.ch = None
        if self.p.differentiable:  # Sionna (and its import) only where its Gumbel-softmax sampler is used
            import sionna.phy.channel as sch

            self.ch = getattr(sch, self.sionna_block)(device=ctx.device)

    def setup(self, specs):
        expect(specs["bits"], "bits", "bits")
        self.uses = specs["bits"].size
        return {"bits": specs["bits"], "llr": Spec("llr", specs["bits"].shape, specs["bits"].meta)}

    def forward(self, bits):
        if self.bypassed():  # LLRs only where a block reads them: a float payload is 16k bits per sample
            x = bits.float()
            return {"bits": x, **({"llr": (2 * x - 1) * LLR_MAX} if self.wants("llr") else {})}
        return self.transmit(bits)

    def random_in_eval(self) -> bool:
        # seeded per copy and batch (below): a deterministic function of (seed, name, p, batch), so the
        # blocks downstream can be memoised across sweep points and link i of a node sweep sees the same
        # errors at every number of nodes (paired comparisons, as pixel_noise does for the images)
        return self.p.differentiable

    def random_in_training(self) -> bool:
        return bool(self.p.in_training) and self.p.differentiable

    def train_signature(self):
        return {**self.p.model_dump(mode="json"), "name": self.name} if self.p.in_training else {"bypassed": True}

    def strikes(self, x: torch.Tensor) -> torch.Tensor | None:
        """Flat indices of the bits the channel strikes (each independently with probability p), or None when
        p = 0; drawn from a generator seeded by (run seed, block name, p, split, batch). Not differentiable."""
        if self.p.p <= 0:
            return None
        return bernoulli_positions(x.numel(), self.p.p, self.batch_generator(self.p.p)).to(x.device)

    def report(self):
        return labelled(self, {"channel_uses_per_sample": float(self.uses)})


class BSCChannel(_BitChannel):
    """Binary symmetric channel with crossover probability p (Sionna BinarySymmetricChannel semantics)."""

    type_name = "bsc"
    sionna_block = "BinarySymmetricChannel"

    def transmit(self, bits):
        x = bits.float()
        if self.p.differentiable and self.p.p > 0:
            y = self.ch(x, self.p.p)
        else:
            flip = self.strikes(x)
            y = x
            if flip is not None:
                y = x.clone()
                flat = y.view(-1)
                flat[flip] = 1.0 - flat[flip]
        out = {"bits": y}
        if self.wants("llr"):
            p = min(max(self.p.p, 1e-9), 1 - 1e-9)
            mag = min(abs(float(torch.log(torch.tensor((1 - p) / p)))), LLR_MAX)
            out["llr"] = (2 * y - 1) * mag
        return out


class BECChannel(_BitChannel):
    """Binary erasure channel with erasure probability p (Sionna BinaryErasureChannel semantics)."""

    type_name = "bec"
    sionna_block = "BinaryErasureChannel"

    def transmit(self, bits):
        x = bits.float()
        if self.p.differentiable and self.p.p > 0:
            erased = self.ch(x, self.p.p) < 0  # -1 marks an erasure
        else:
            pos = self.strikes(x)
            erased = None if pos is None else torch.zeros(x.numel(), dtype=torch.bool, device=x.device).index_fill_(
                0, pos, True).view(x.shape)
        out = {"bits": x if erased is None else x.masked_fill(erased, 0.0)}
        if self.wants("llr"):
            llr = (2 * x - 1) * LLR_MAX
            out["llr"] = llr if erased is None else llr.masked_fill(erased, 0.0)
        return out
