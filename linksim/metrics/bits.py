"""Bit and block error rates."""
from __future__ import annotations

import pydantic
import torch

from ..block import Block, Metric, Params, Port
from ..errors import PortError


class _FrameErrorRate(Block):
    """Base of the bit and block error rates: error counts kept per frame (sample), which is the unit of the
    interval, since the bits or blocks of one frame share its channel realisation and are not independent."""

    metric: str = ""
    role = "metric"
    is_sink = True
    inputs = {"bits": Port(("bits",)), "bits_hat": Port(("bits",))}

    def setup(self, specs):
        if specs["bits"].shape != specs["bits_hat"].shape:
            raise PortError(f"bits {specs['bits']} and bits_hat {specs['bits_hat']} differ in shape")
        return {}

    def reset(self):
        self.err, self.tot, self.frames, self.sq = 0, 0, 0, 0

    def _add(self, per_frame: torch.Tensor, trials: int) -> None:
        """Errors per frame of one batch (int64), out of ``trials`` bits or blocks."""
        self.err += int(per_frame.sum())
        self.sq += int((per_frame * per_frame).sum())
        self.tot += trials
        self.frames += per_frame.numel()

    def error_counts(self):
        return {self.metric: self.err}

    def compute(self):
        return [Metric.rate(self.metric, self.err, self.tot, frames=self.frames, frame_sq=self.sq)]


class BitErrorRate(_FrameErrorRate):
    """Bit error rate between transmitted and decided bits."""

    type_name = "ber"
    metric = "ber"

    def update(self, bits, bits_hat):
        # errors per frame (int32 accumulation is faster than the default int64; the products are int64)
        e = (bits.reshape(bits.shape[0], -1) != bits_hat.reshape(bits.shape[0], -1)).sum(1, dtype=torch.int32)
        self._add(e.long(), bits.numel())


class BlockErrorRate(_FrameErrorRate):
    """Block error rate: a block (default the whole sample, or every ``block_bits`` bits) with any bit error."""

    type_name = "bler"
    metric = "bler"

    class Params(Params):
        block_bits: pydantic.PositiveInt | None = pydantic.Field(None, description="bits per block (e.g. LDPC k)")

    def setup(self, specs):
        super().setup(specs)
        n = specs["bits"].size
        if self.p.block_bits and n % self.p.block_bits:
            raise PortError(f"{n} bits per sample is not a multiple of block_bits={self.p.block_bits}")
        self.bb = self.p.block_bits or n
        return {}

    def update(self, bits, bits_hat):
        d = (bits.reshape(-1, self.bb) != bits_hat.reshape(-1, self.bb)).any(1)
        self._add(d.reshape(bits.shape[0], -1).sum(1), d.numel())  # block errors per sample
