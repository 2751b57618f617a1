"""Resource-grid mapper (Sionna ``ResourceGrid`` + ``ResourceGridMapper``).

A sample's complex symbols (from any transmitter: QAM, deep JSCC, ...) fill the data resource elements (REs)
of as many slots (one ``ResourceGrid`` = one slot of ``num_ofdm_symbols`` OFDM symbols) as it needs, layer by
layer (``num_streams`` spatial layers, one per transmit antenna, no precoding). The tail of the last slot is
padded with zero symbols; the padding is counted (``overhead_padding_per_sample``).

Accounting (``report``), all in REs x layers (= complex channel uses; for one layer simply REs):
``channel_uses_per_sample`` = the sample's data symbols; ``overhead_pilot_per_sample``,
``overhead_guard_per_sample`` (guard + DC carriers), ``overhead_cp_per_sample`` (cyclic-prefix samples),
``overhead_padding_per_sample``; ``ofdm_total_per_sample`` = slots x layers x symbols x (FFT + CP).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Literal

import pydantic
import torch

from ..block import Block, Params, Port, Spec, expect

# seed of the Kronecker pilot sequences: Sionna draws them from its global generator when a grid is built;
# fixing them keeps transmitter and receiver consistent and leaves the run's random stream untouched
PILOT_SEED = 20261202


class GridParams(Params):
    """Parameters of one OFDM slot. Field order matters: later fields are checked against earlier ones, so
    an error names the key that does not fit."""

    model_config = pydantic.ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)

    num_ofdm_symbols: pydantic.PositiveInt = pydantic.Field(14, description="OFDM symbols per slot")
    subcarrier_spacing: float = pydantic.Field(30e3, gt=0, description="subcarrier spacing [Hz]")
    cyclic_prefix_length: pydantic.NonNegativeInt = pydantic.Field(0, description="cyclic prefix [samples]")
    num_streams: pydantic.PositiveInt = pydantic.Field(
        1, description="spatial layers = transmit antennas (MIMO spatial multiplexing, no precoding)")
    num_used_carriers: pydantic.PositiveInt | None = pydantic.Field(
        None, description="used (data + pilot) subcarriers; the rest of the FFT are guard carriers, split "
                          "left/right (overrides num_guard_carriers)")
    num_guard_carriers: tuple[pydantic.NonNegativeInt, pydantic.NonNegativeInt] = pydantic.Field(
        (0, 0), description="guard carriers (left, right)")
    dc_null: bool = pydantic.Field(False, description="null the DC subcarrier")
    fft_size: pydantic.PositiveInt = pydantic.Field(72, description="FFT size (subcarriers)")
    pilot_pattern: Literal["kronecker", "empty"] = pydantic.Field(
        "kronecker", description="Sionna pilot pattern: kronecker (orthogonal pilots per layer) or empty")
    pilot_ofdm_symbols: list[int] = pydantic.Field([2, 11], description="OFDM symbols carrying pilots (kronecker)")

    @pydantic.field_validator("fft_size")
    @classmethod
    def _fft(cls, v, info):
        d = info.data
        used = d.get("num_used_carriers")
        dc = int(bool(d.get("dc_null")))
        if used is not None and v < used + dc:
            raise ValueError(f"FFT size {v} is smaller than the {used} used carriers" + (" + DC" if dc else ""))
        guards = d.get("num_guard_carriers") or (0, 0)
        if used is None and sum(guards) + dc >= v:
            raise ValueError(f"FFT size {v} leaves no used carrier next to {sum(guards)} guard carriers"
                             + (" + DC" if dc else ""))
        cp = d.get("cyclic_prefix_length") or 0
        if cp > v:
            raise ValueError(f"the cyclic prefix ({cp}) is longer than the FFT size {v}")
        return v

    @pydantic.field_validator("pilot_ofdm_symbols")
    @classmethod
    def _pilots(cls, v, info):
        d = info.data
        if d.get("pilot_pattern") != "kronecker" or "fft_size" not in d or "num_ofdm_symbols" not in d:
            return v
        n = d["num_ofdm_symbols"]
        if not v:
            raise ValueError("a kronecker pilot pattern needs at least one pilot OFDM symbol")
        if len(set(v)) != len(v) or any(i < 0 or i >= n for i in v):
            raise ValueError(f"pilot OFDM symbols {v} do not fit a slot of {n} OFDM symbols (distinct, 0..{n - 1})")
        if len(v) >= n:
            raise ValueError(f"pilots on all {n} OFDM symbols leave no data resource element")
        eff = _effective_carriers(d)
        s = d.get("num_streams") or 1
        if eff % s:
            raise ValueError(f"kronecker pilots for {s} layers need the {eff} used subcarriers to be a multiple of {s}")
        return v


def _guards(d: dict) -> tuple[int, int]:
    used = d.get("num_used_carriers")
    if used is None:
        return tuple(d.get("num_guard_carriers") or (0, 0))
    free = d["fft_size"] - used - int(bool(d.get("dc_null")))
    return (free // 2, free - free // 2)


def _effective_carriers(d: dict) -> int:
    return d["fft_size"] - sum(_guards(d)) - int(bool(d.get("dc_null")))


@dataclasses.dataclass(frozen=True)
class Grid:
    """One resource grid (slot) and how a sample of ``num_symbols`` symbols is laid out on it."""

    params: dict
    num_symbols: int  # the sample's data symbols
    inner_meta: dict  # the metadata of the transmitter's port, restored by the equaliser
    rg: object  # sionna.phy.ofdm.ResourceGrid

    @property
    def streams(self) -> int:
        return self.rg.num_streams_per_tx

    @property
    def data_per_slot(self) -> int:  # data symbols per slot, all layers
        return self.rg.num_data_symbols * self.streams

    @property
    def slots(self) -> int:
        return max(1, math.ceil(self.num_symbols / self.data_per_slot))

    @property
    def padding(self) -> int:
        return self.slots * self.data_per_slot - self.num_symbols

    def figures(self) -> dict[str, float]:
        rg, L, S = self.rg, self.streams, self.slots
        return {
            "channel_uses_per_sample": float(self.num_symbols),
            "overhead_pilot_per_sample": float(S * L * rg.num_pilot_symbols),
            "overhead_guard_per_sample": float(S * L * rg.num_zero_symbols),
            "overhead_cp_per_sample": float(S * L * rg.num_ofdm_symbols * rg.cyclic_prefix_length),
            "overhead_padding_per_sample": float(self.padding),
            "ofdm_total_per_sample": float(S * L * rg.num_ofdm_symbols * (rg.fft_size + rg.cyclic_prefix_length)),
            "ofdm_slots_per_sample": float(S),
        }


def sionna_rng(device=None):
    """Sionna's generator for a device ("cuda" names the current CUDA device: Sionna keys them "cuda:i")."""
    import torch
    from sionna.phy import config

    dev = str(device or config.device)
    if dev == "cuda":
        dev = f"cuda:{torch.cuda.current_device()}"
    return config.torch_rng(dev)


def build_resource_grid(p: GridParams, device=None):
    """Sionna ResourceGrid of these parameters, with pilots drawn from a fixed seed (see PILOT_SEED)."""
    from sionna.phy.ofdm import ResourceGrid

    kron = p.pilot_pattern == "kronecker"
    g = sionna_rng(device)
    state = g.get_state()
    g.manual_seed(PILOT_SEED)
    try:
        return ResourceGrid(num_ofdm_symbols=p.num_ofdm_symbols, fft_size=p.fft_size,
                            subcarrier_spacing=p.subcarrier_spacing, num_tx=1, num_streams_per_tx=p.num_streams,
                            cyclic_prefix_length=p.cyclic_prefix_length,
                            num_guard_carriers=_guards(p.model_dump()), dc_null=p.dc_null,
                            pilot_pattern=p.pilot_pattern, pilot_ofdm_symbol_indices=p.pilot_ofdm_symbols if kron else None,
                            device=device)
    finally:
        g.set_state(state)


def grid_of(spec: Spec, what: str) -> Grid:
    """The Grid a port carries in its metadata (set by ofdm_mapper); PortError-like ValueError otherwise."""
    from ..errors import PortError

    g = spec.meta.get("ofdm")
    if not isinstance(g, Grid):
        raise PortError(f"{what} must come from an ofdm_mapper chain (an OFDM resource grid), got {spec}")
    return g


class OFDMMapper(Block):
    """Complex symbols of a sample -> OFDM resource grids (slots x layers x OFDM symbols x FFT) with pilots."""

    type_name = "ofdm_mapper"
    role = "link"
    memoize_eval = True  # deterministic
    inputs = {"x": Port(("complex",), "unit-energy complex symbols (any transmitter)")}
    outputs = {"grid": "frequency-domain resource grids [slots, layers, ofdm_symbols, fft_size]"}

    Params = GridParams

    def __init__(self, name, params, ctx):
        super().__init__(name, params, ctx)
        from sionna.phy.ofdm import ResourceGridMapper

        self.rg = build_resource_grid(params, ctx.device)
        self.mapper = ResourceGridMapper(self.rg, device=ctx.device)

    def setup(self, specs):
        s = specs["x"]
        expect(s, "complex", "x")
        self.grid = Grid(self.p.model_dump(mode="json"), s.size, dict(s.meta), self.rg)
        g = self.grid
        return {"grid": Spec("complex", (g.slots, g.streams, self.rg.num_ofdm_symbols, self.rg.fft_size),
                             {"ofdm": g})}

    def forward(self, x):
        g = self.grid
        b = x.shape[0]
        v = x.reshape(b, -1).to(torch.complex64)
        if g.padding:
            v = torch.cat([v, torch.zeros(b, g.padding, dtype=v.dtype, device=v.device)], 1)
        v = v.reshape(b * g.slots, 1, g.streams, self.rg.num_data_symbols)
        out = self.mapper(v)  # [b*slots, 1, layers, ofdm_symbols, fft]
        return {"grid": out.reshape(b, g.slots, g.streams, self.rg.num_ofdm_symbols, self.rg.fft_size)}

    def report(self):
        return self.grid.figures()
