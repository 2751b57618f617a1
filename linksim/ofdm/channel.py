"""OFDM channel in the frequency domain (Sionna ``GenerateOFDMChannel`` + ``ApplyOFDMChannel``).

``model``: ``tdl`` (3GPP TR 38.901 TDL, ``profile`` A-E or Sionna's fixed-delay variants), ``cdl`` (38.901 CDL
A-E, uniform linear arrays of omni single-polarised elements at both ends, downlink), ``rayleigh`` (one
Rayleigh tap per slot: flat fading, Sionna ``RayleighBlockFading``) or ``flat`` (one tap of gain 1, identity
between layer i and receive antenna i: AWGN on every RE, the closed-form check). UE speed gives Doppler (the
channel varies over the OFDM symbols of a slot); each slot of a sample is an independent channel draw.
The channel is applied per RE (no inter-carrier interference; the cyclic prefix is assumed long enough and is
counted as overhead by the mapper).

Paired draws (``paired``, default on): channel and noise come from Sionna's generator re-seeded per batch by
(run seed, block name or ``pair_key``, split, batch indices), as ``pixel_noise`` does, and the run's own random
stream is left untouched. Every system and sweep point with a channel block of the same name (or the same
``pair_key``, e.g. inside composites that prefix the names differently) sees the same channel realisations and
the same unit noise (scaled by the SNR): LS vs perfect CSI, QPSK vs 16-QAM, JSCC vs SSCC are compared on
identical channels, which removes the slot-to-slot fading scatter from their differences.
Noise: Es/N0 = snr_db per data RE and layer, i.e. N0 = 10^(-snr/10)
per receive antenna with unit-energy symbols.
"""
from __future__ import annotations

import contextlib
from typing import Literal

import pydantic
import torch

from ..block import IN_TRAINING, LABEL, Block, Impairment, Params, Port, Spec
from ..channels.base import noise_variance
from .grid import grid_of, sionna_rng

def batch_seed(seed: int, name: str, split: str, first: int, size: int, epoch: int = 0) -> int:
    """The seed of one batch's paired channel draws (also used by the Sionna reference pipeline)."""
    from ..context import derive_seed

    return derive_seed(seed, name, split, first, size, epoch)


TDL_PROFILES = ("A", "B", "C", "D", "E", "A10", "A30", "B100", "C60", "C300", "D10", "D30")
CDL_PROFILES = ("A", "B", "C", "D", "E")


class OFDMChannelBlock(Impairment, Block):
    """Frequency-selective (TDL/CDL), flat Rayleigh or unit single-tap channel + AWGN on OFDM resource grids."""

    type_name = "ofdm_channel"
    role = "channel"
    inputs = {"grid": Port(("complex",), "resource grids from ofdm_mapper")}
    outputs = {"y": "received grids [slots, rx_ant, ofdm_symbols, fft_size]",
               "h": "true channel frequency response [slots, rx_ant, layers, ofdm_symbols, fft_size] (perfect CSI)",
               "nvar": "noise variance N0 per receive antenna"}

    class Params(Params):
        model_config = pydantic.ConfigDict(extra="forbid", allow_inf_nan=False, validate_default=True)

        snr_db: float = pydantic.Field(description="Es/N0 in dB per data resource element (and layer)")
        model: Literal["tdl", "cdl", "rayleigh", "flat"] = pydantic.Field("tdl", description="channel model")
        profile: str = pydantic.Field("A", description="TDL profile (A-E, A30, ...) or CDL profile (A-E)")
        delay_spread: float = pydantic.Field(100e-9, gt=0, description="RMS delay spread [s] (TDL/CDL)")
        carrier_frequency: float = pydantic.Field(3.5e9, gt=0, description="carrier frequency [Hz]")
        ue_speed: float = pydantic.Field(0.0, ge=0, description="UE speed [m/s] (Doppler)")
        num_rx_ant: pydantic.PositiveInt = pydantic.Field(1, description="receive antennas")
        paired: bool = pydantic.Field(
            True, description="draw channel and noise per batch from (run seed, block name, split, indices): the "
                              "same realisations at every SNR and in every system (paired comparisons)")
        normalize: bool = pydantic.Field(
            False, description="Sionna normalize_channel: scale each slot to E|h|^2 = 1 (removes slot-level fading; "
                               "off: the 3GPP profiles have unit average power already)")
        pair_key: str | None = pydantic.Field(
            None, description="key of the paired draws instead of the block's name: channels with one key draw the "
                              "same realisations in every system, wherever a composite puts them")
        in_training: bool = IN_TRAINING
        label: str | None = LABEL

        @pydantic.field_validator("profile")
        @classmethod
        def _profile(cls, v, info):
            m = info.data.get("model")
            if m == "tdl" and v not in TDL_PROFILES:
                raise ValueError(f"unknown TDL model '{v}' (known: {', '.join(TDL_PROFILES)})")
            if m == "cdl" and v not in CDL_PROFILES:
                raise ValueError(f"unknown CDL model '{v}' (known: {', '.join(CDL_PROFILES)})")
            return v

    def setup(self, specs):
        s = specs["grid"]
        g = grid_of(s, "grid")
        self.grid = g
        L, R = g.streams, self.p.num_rx_ant
        if L > R:
            raise ValueError(f"num_rx_ant: {R} receive antennas cannot separate {L} layers (more streams than "
                             "antennas); set num_rx_ant >= num_streams")
        self._build()
        S, rg = g.slots, g.rg
        shape = (rg.num_ofdm_symbols, rg.fft_size)
        return {"y": Spec("complex", (S, R) + shape, {"ofdm": g}),
                "h": Spec("complex", (S, R, L) + shape, {"ofdm": g}),
                "nvar": Spec("real", (1,))}

    def _build(self):
        from sionna.phy.channel import ApplyOFDMChannel, GenerateOFDMChannel, RayleighBlockFading

        p, g, dev = self.p, self.grid, self.ctx.device
        L, R = g.streams, p.num_rx_ant
        if p.model == "tdl":
            from sionna.phy.channel.tr38901 import TDL

            ds = None if p.profile not in ("A", "B", "C", "D", "E") else p.delay_spread
            model = TDL(p.profile, ds, p.carrier_frequency, min_speed=p.ue_speed, max_speed=p.ue_speed,
                        num_rx_ant=R, num_tx_ant=L, device=dev)
        elif p.model == "cdl":
            from sionna.phy.channel.tr38901 import CDL, AntennaArray

            def ula(n):
                return AntennaArray(1, n, "single", "V", "omni", p.carrier_frequency, device=dev)

            model = CDL(p.profile, p.delay_spread, p.carrier_frequency, ut_array=ula(R), bs_array=ula(L),
                        direction="downlink", min_speed=p.ue_speed, max_speed=p.ue_speed, device=dev)
        elif p.model == "rayleigh":
            model = RayleighBlockFading(1, R, 1, L, device=dev)
        else:
            model = None
        self.gen = None if model is None else GenerateOFDMChannel(model, g.rg, normalize_channel=p.normalize,
                                                                  device=dev)
        self.apply = ApplyOFDMChannel(device=dev)

    def _identity(self, n: int, device) -> torch.Tensor:
        g, R = self.grid, self.p.num_rx_ant
        eye = torch.eye(R, g.streams, dtype=torch.complex64, device=device)
        return eye[None, None, :, None, :, None, None].expand(n, 1, R, 1, g.streams, g.rg.num_ofdm_symbols,
                                                              g.rg.fft_size)

    @contextlib.contextmanager
    def _rng(self, device):
        """Sionna's generator seeded for this batch (paired draws), its state restored afterwards."""
        if not self.p.paired:
            yield
            return
        bi = self.ctx.batch
        g = sionna_rng(device)
        state = g.get_state()
        key = self.p.pair_key or self.name
        g.manual_seed(batch_seed(self.ctx.seed, key, bi.split, int(bi.indices[0]), bi.size, bi.epoch))
        try:
            yield
        finally:
            g.set_state(state)

    def forward(self, grid):
        g = self.grid
        b, S = grid.shape[0], g.slots
        x = grid.reshape(b * S, 1, g.streams, g.rg.num_ofdm_symbols, g.rg.fft_size)
        if self.bypassed():  # training split without impairment: identity channel, (almost) no noise
            h, no = self._identity(b * S, x.device), 1e-6
            y = self.apply(x, h, no)
        else:
            no = noise_variance(self.p.snr_db)
            with self._rng(x.device):
                h = self._identity(b * S, x.device) if self.gen is None else self.gen(b * S)
                y = self.apply(x, h, no)  # [b*S, 1, rx_ant, ofdm_symbols, fft]
        R = self.p.num_rx_ant
        return {"y": y.reshape(b, S, R, g.rg.num_ofdm_symbols, g.rg.fft_size),
                "h": h.reshape(b, S, R, g.streams, g.rg.num_ofdm_symbols, g.rg.fft_size),
                "nvar": torch.full((b, 1), no, device=y.device)}
