"""Shared base of symbol channels: counts channel uses and converts Es/N0 to a noise variance."""
from __future__ import annotations

import pydantic
import torch

from ..block import IN_TRAINING, LABEL, Block, Impairment, Params, Port, Spec, expect, labelled


def noise_variance(snr_db: float) -> float:
    """Complex noise variance N0 for unit-energy symbols at Es/N0 = ``snr_db``."""
    return 10.0 ** (-snr_db / 10.0)


class SymbolChannel(Impairment, Block):
    role = "channel"
    inputs = {"x": Port(("complex",), "unit-energy complex symbols")}
    outputs = {"y": "received (equalised, if CSI) symbols", "nvar": "effective noise variance per symbol"}

    class Params(Params):
        snr_db: float = pydantic.Field(description="Es/N0 in dB per complex channel use")
        in_training: bool = IN_TRAINING
        label: str | None = LABEL

    def setup(self, specs):
        expect(specs["x"], "complex", "x")
        self.uses = specs["x"].size
        return {"y": specs["x"], "nvar": Spec("real", specs["x"].shape)}

    def forward(self, x):
        if self.bypassed():
            return {"y": x, "nvar": torch.full(x.shape, 1e-6, device=x.device)}
        return self.transmit(x)

    def transmit(self, x) -> dict:
        raise NotImplementedError

    def report(self):
        return labelled(self, {"channel_uses_per_sample": float(self.uses)})
