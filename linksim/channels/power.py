"""Power normalisation: real or complex vectors -> complex symbols with unit average energy per sample."""
from __future__ import annotations

import math

import torch

from ..block import Block, Port, Spec


class PowerNormalize(Block):
    """Map a real vector (pairs -> one complex symbol) or complex vector to unit average energy per symbol."""

    type_name = "power_normalize"
    role = "channel"
    inputs = {"x": Port(("real", "complex", "bits"), "any real, bit or complex vector")}
    outputs = {"symbols": "complex symbols, mean |s|^2 = 1 per sample"}

    def setup(self, specs):
        s = specs["x"]
        self.in_shape = s.shape
        n = s.size if s.kind == "complex" else math.ceil(s.size / 2)
        return {"symbols": Spec("complex", (n,), {**s.meta, "real_dims": s.size if s.kind == "real" else None})}

    def forward(self, x):
        b = x.shape[0]
        v = x.reshape(b, -1)
        if not torch.is_complex(v):
            v = v.float()
            if v.shape[1] % 2:
                v = torch.cat([v, torch.zeros(b, 1, device=v.device)], 1)
            v = torch.complex(v[:, 0::2], v[:, 1::2])
        p = v.abs().pow(2).mean(1, keepdim=True).clamp_min(1e-12)
        return {"symbols": (v / p.sqrt()).to(torch.complex64)}


class ComplexToReal(Block):
    """Inverse of power_normalize's packing: complex symbols -> the real vector (pairs), original length."""

    type_name = "complex_to_real"
    role = "receiver"
    inputs = {"y": Port(("complex",))}
    outputs = {"x": "real vector"}

    def setup(self, specs):
        s = specs["y"]
        self.d = s.meta.get("real_dims") or 2 * s.size
        return {"x": Spec("real", (self.d,), {k: v for k, v in s.meta.items() if k != "real_dims"})}

    def forward(self, y):
        v = torch.view_as_real(y.reshape(y.shape[0], -1).to(torch.complex64)).reshape(y.shape[0], -1)
        return {"x": v[:, : self.d]}
