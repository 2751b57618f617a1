"""Shared base of symbol channels: counts channel uses and converts Es/N0 to a noise variance."""
from __future__ import annotations

import pydantic

from ..block import Block, Params, Port, Spec, expect


def noise_variance(snr_db: float) -> float:
    """Complex noise variance N0 for unit-energy symbols at Es/N0 = ``snr_db``."""
    return 10.0 ** (-snr_db / 10.0)


class SymbolChannel(Block):
    role = "channel"
    inputs = {"x": Port(("complex",), "unit-energy complex symbols")}
    outputs = {"y": "received (equalised, if CSI) symbols", "nvar": "effective noise variance per symbol"}

    class Params(Params):
        snr_db: float = pydantic.Field(description="Es/N0 in dB per complex channel use")

    def setup(self, specs):
        expect(specs["x"], "complex", "x")
        self.uses = specs["x"].size
        return {"y": specs["x"], "nvar": Spec("real", specs["x"].shape)}

    def report(self):
        return {"channel_uses_per_sample": float(self.uses)}
