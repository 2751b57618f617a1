"""Bit and block error rates."""
from __future__ import annotations

import pydantic
import torch

from ..block import Block, Metric, Params, Port
from ..errors import PortError


class BitErrorRate(Block):
    """Bit error rate between transmitted and decided bits."""

    type_name = "ber"
    role = "metric"
    is_sink = True
    inputs = {"bits": Port(("bits",)), "bits_hat": Port(("bits",))}

    def setup(self, specs):
        if specs["bits"].shape != specs["bits_hat"].shape:
            raise PortError(f"bits {specs['bits']} and bits_hat {specs['bits_hat']} differ in shape")
        return {}

    def reset(self):
        self.err, self.tot, self.frames, self.sq = 0, 0, 0, 0

    def update(self, bits, bits_hat):
        # errors per frame (int32 accumulation is faster than the default int64; the products below are int64)
        e = (bits.reshape(bits.shape[0], -1) != bits_hat.reshape(bits.shape[0], -1)).sum(1, dtype=torch.int32).long()
        self.err += int(e.sum())
        self.sq += int((e * e).sum())
        self.tot += bits.numel()
        self.frames += bits.shape[0]

    def error_counts(self):
        return {"ber": self.err}

    def compute(self):
        # the frame (sample) is the unit of the interval: bits of one frame are not independent
        return [Metric.rate("ber", self.err, self.tot, frames=self.frames, frame_sq=self.sq)]


class BlockErrorRate(Block):
    """Block error rate: a block (default the whole sample, or every ``block_bits`` bits) with any bit error."""

    type_name = "bler"
    role = "metric"
    is_sink = True
    inputs = {"bits": Port(("bits",)), "bits_hat": Port(("bits",))}

    class Params(Params):
        block_bits: pydantic.PositiveInt | None = pydantic.Field(None, description="bits per block (e.g. LDPC k)")

    def setup(self, specs):
        n = specs["bits"].size
        if specs["bits"].shape != specs["bits_hat"].shape:
            raise PortError(f"bits {specs['bits']} and bits_hat {specs['bits_hat']} differ in shape")
        if self.p.block_bits and n % self.p.block_bits:
            raise PortError(f"{n} bits per sample is not a multiple of block_bits={self.p.block_bits}")
        self.bb = self.p.block_bits or n
        return {}

    def reset(self):
        self.err, self.tot, self.frames, self.sq = 0, 0, 0, 0

    def update(self, bits, bits_hat):
        d = (bits.reshape(-1, self.bb) != bits_hat.reshape(-1, self.bb)).any(1)
        e = d.reshape(bits.shape[0], -1).sum(1)  # block errors per sample
        self.err += int(e.sum())
        self.sq += int((e * e).sum())
        self.tot += d.numel()
        self.frames += bits.shape[0]

    def error_counts(self):
        return {"bler": self.err}

    def compute(self):
        # blocks of one sample share the sample's channel realisation (e.g. block fading): samples are the unit
        return [Metric.rate("bler", self.err, self.tot, frames=self.frames, frame_sq=self.sq)]
