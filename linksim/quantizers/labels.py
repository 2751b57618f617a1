"""Decisions as bits: a class index <-> ceil(log2 C) bits (decision fusion over a link)."""
from __future__ import annotations

import math

import torch


from ..block import LABEL, Block, Params, Port, Spec, labelled
from ..errors import PortError


class LabelBits(Block):
    """Class decision -> ceil(log2 C) bits (MSB first)."""

    type_name = "label_bits"
    role = "transmitter"
    inputs = {"pred": Port(("label",))}
    outputs = {"bits": "decision bits"}

    class Params(Params):
        label: str | None = LABEL

    def setup(self, specs):
        self.C = specs["pred"].meta.get("num_classes")
        if not self.C:
            raise PortError("decision carries no num_classes")
        self.nb = max(1, math.ceil(math.log2(self.C)))
        return {"bits": Spec("bits", (self.nb,), {"label_meta": specs["pred"].meta})}

    def forward(self, pred):
        shifts = torch.arange(self.nb - 1, -1, -1, device=pred.device)
        return {"bits": ((pred.reshape(-1, 1).long() >> shifts) & 1).float()}

    def report(self):
        return labelled(self, {"bits_per_sample": float(self.nb)})


class BitsLabel(Block):
    """Decision bits -> class index; a word >= C (corrupted) gives -1 (no vote)."""

    type_name = "bits_label"
    role = "receiver"
    inputs = {"bits": Port(("bits",))}
    outputs = {"pred": "decoded decision (-1 if invalid)"}

    def setup(self, specs):
        meta = specs["bits"].meta.get("label_meta")
        if meta is None:
            raise PortError("'bits' must come (through any link) from a label_bits block")
        self.C = meta["num_classes"]
        self.nb = specs["bits"].size
        return {"pred": Spec("label", (), meta)}

    def forward(self, bits):
        w = 2 ** torch.arange(self.nb - 1, -1, -1, device=bits.device)
        v = ((bits > 0.5).long() * w).sum(-1)
        return {"pred": torch.where(v < self.C, v, torch.full_like(v, -1))}
