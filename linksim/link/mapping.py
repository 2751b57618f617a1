"""QAM mapper / demapper (Sionna ``Mapper``/``Demapper``). BPSK = 1 bit per symbol (Sionna "pam")."""
from __future__ import annotations

import functools
from typing import Literal

import pydantic
import torch

from ..block import Block, Params, Port, Spec, expect, find_pair, paired_value, pop_pair, push_pair
from ..errors import ParamError, PortError

_BPS = {1: "BPSK", 2: "QPSK", 4: "16-QAM", 6: "64-QAM", 8: "256-QAM"}


def _constellation(m: int) -> tuple[str, int]:
    if m not in _BPS:
        raise ParamError("bits_per_symbol", f"bits_per_symbol must be one of {sorted(_BPS)} (BPSK, QPSK, 16/64/256-QAM), got {m}")
    return ("pam", 1) if m == 1 else ("qam", m)


@functools.lru_cache(maxsize=32)
def _mapper(m: int, device: str):
    """One Sionna Mapper per (bits per symbol, device) per process: its constellation is fixed (not trainable
    here), and building one costs about a millisecond, which validation paid for every sweep point."""
    from sionna.phy.mapping import Mapper

    return Mapper(*_constellation(m), device=device)


@functools.lru_cache(maxsize=64)
def _demapper(method: str, m: int, device: str):
    """The Sionna Demapper paired with ``_mapper(m, device)``: it shares that mapper's constellation object."""
    from sionna.phy.mapping import Demapper

    return Demapper(method, constellation=_mapper(m, device).constellation, device=device)


class QAMMapper(Block):
    """Gray-mapped BPSK/QAM with unit average energy; pads the bit vector to a multiple of bits_per_symbol."""

    type_name = "qam_mapper"
    role = "link"
    memoize_eval = True  # deterministic: reused across the SNR points of a run
    inputs = {"bits": Port(("bits",))}
    outputs = {"symbols": "complex symbols"}

    class Params(Params):
        bits_per_symbol: int = pydantic.Field(description="1 = BPSK, 2 = QPSK, 4 = 16-QAM, 6 = 64-QAM, 8 = 256-QAM")

    def __init__(self, name, params, ctx):
        super().__init__(name, params, ctx)
        self.mapper = _mapper(params.bits_per_symbol, ctx.device)

    def setup(self, specs):
        expect(specs["bits"], "bits", "bits")
        self.L = specs["bits"].size
        m = self.p.bits_per_symbol
        self.pad = (-self.L) % m
        meta = push_pair({**specs["bits"].meta, "num_bits": self.L}, self.type_name, self)
        return {"symbols": Spec("complex", ((self.L + self.pad) // m,), meta)}

    def forward(self, bits):
        b = bits.reshape(bits.shape[0], -1).float()
        if self.pad:
            b = torch.cat([b, torch.zeros(b.shape[0], self.pad, device=b.device)], 1)
        if self.p.bits_per_symbol <= 2:
            return {"symbols": _map_bpsk_qpsk(b, self.mapper.constellation.points, self.p.bits_per_symbol)}
        return {"symbols": self.mapper(b)}


# BPSK and Gray QPSK in closed form (Sionna's mapping and exact APP LLRs: bit 0 -> +a on the real axis, bit 1
# of QPSK on the imaginary axis). Sionna's generic Mapper/Demapper compare every received symbol with every
# point (logsumexp), which dominates an uncoded chain on CPU; tests check both paths agree.
def _map_bpsk_qpsk(b: torch.Tensor, points: torch.Tensor, m: int) -> torch.Tensor:
    a = float(points[0].real)
    if m == 2:  # bit pairs are (real, imaginary) already: a * (1 - 2 b) viewed as complex
        return torch.view_as_complex(torch.mul(b, -2.0 * a).add_(a).reshape(b.shape[0], -1, 2))
    out = torch.zeros(*b.shape, 2, device=b.device)
    torch.mul(b, -2.0 * a, out=out[..., 0]).add_(a)
    return torch.view_as_complex(out)


def _llr_bpsk_qpsk(y: torch.Tensor, nvar: torch.Tensor, points: torch.Tensor, m: int) -> torch.Tensor:
    """Exact APP LLRs log p(1)/p(0) (equal to max-log for these constellations)."""
    a = float(points[0].real)
    if m == 1:
        return torch.div(y.real, nvar).mul_(-4.0 * a)
    return torch.div(torch.view_as_real(y), nvar.unsqueeze(-1)).mul_(-4.0 * a).reshape(y.shape[0], -1)


class QAMDemapper(Block):
    """Soft demapping to LLRs (Sionna Demapper, log p(1)/p(0)) and hard bits; uses the channel's noise variance."""

    type_name = "qam_demapper"
    role = "link"
    inputs = {"y": Port(("complex",)), "nvar": Port(("real",), "noise variance per symbol", optional=True)}
    outputs = {"llr": "LLRs, log p(b=1)/p(b=0)", "bits": "hard decisions"}

    class Params(Params):
        bits_per_symbol: int | None = pydantic.Field(
            None, description="taken from the qam_mapper the symbols come from (set it only without one)")
        method: Literal["app", "maxlog"] = pydantic.Field("app", description="Sionna demapping method")
        snr_db: float | None = pydantic.Field(None, description="Es/N0 used when the 'nvar' input is not wired")
        closed_form: bool = pydantic.Field(
            False, description="BPSK/QPSK: exact APP LLRs in closed form, several times faster than Sionna's "
                               "generic demapper; equal to it within float rounding, so a coded link may differ "
                               "in rare frames (off by default: shipped results stay reproducible)")

    def setup(self, specs):
        y = specs["y"]
        mapper = find_pair(y.meta, "qam_mapper")
        m = paired_value(self.p.bits_per_symbol, mapper and mapper.p.bits_per_symbol, "bits_per_symbol",
                         mapper and mapper.name)
        self.p = self.p.model_copy(update={"bits_per_symbol": m})
        # Sionna's pairing: the demapper shares the mapper's constellation object (the one of _mapper(m))
        self.demapper = _demapper(self.p.method, m, self.ctx.device)
        if "nvar" not in specs and self.p.snr_db is None:
            raise PortError("connect 'nvar' (noise variance from the channel) or set params.snr_db")
        nbits = y.size * self.p.bits_per_symbol
        self.L = y.meta.get("num_bits", nbits)
        if self.L > nbits:
            raise PortError(f"{y} carries at most {nbits} bits but the mapper sent {self.L}: bits_per_symbol differs?")
        meta = pop_pair({k: v for k, v in y.meta.items() if k != "num_bits"}, "qam_mapper")
        return {"llr": Spec("llr", (self.L,), meta), "bits": Spec("bits", (self.L,), meta)}

    def forward(self, y, nvar=None):
        if nvar is None:
            nvar = torch.full(y.shape, 10 ** (-self.p.snr_db / 10), device=y.device)
        b = y.shape[0]
        if self.p.closed_form and self.p.bits_per_symbol <= 2:
            llr = _llr_bpsk_qpsk(y.reshape(b, -1), nvar.reshape(b, -1), self.demapper.constellation.points,
                                 self.p.bits_per_symbol)
        else:
            llr = self.demapper(y.reshape(b, -1), nvar.reshape(b, -1))
        llr = llr.reshape(b, -1)[:, : self.L]
        # the 0/1 decisions written straight into a float tensor: (llr > 0).float() makes a bool tensor first
        return {"llr": llr, "bits": torch.gt(llr, 0, out=torch.empty(llr.shape, device=llr.device))}
