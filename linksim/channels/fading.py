"""Flat Rayleigh and Rician block fading with AWGN.

Rayleigh coefficients come from Sionna's ``RayleighBlockFading`` (one CN(0,1) tap per block) and noise from
Sionna's ``AWGN``. Sionna has no flat Rician model, so Rician taps are built here from those Rayleigh taps:
h = sqrt(K/(K+1)) e^{j phi} + sqrt(1/(K+1)) h_Rayleigh (phi = 0 unless ``random_los_phase``).

``coherence``: ``sample`` (one coefficient per sample), ``symbol`` (fast fading) or ``block`` (constant over
``block_symbols`` consecutive symbols). With ``perfect_csi`` the receiver equalises y/h and reports the
effective noise variance N0/|h|^2; without it, y is passed on unequalised with noise variance N0.
"""
from __future__ import annotations

import math
from typing import Literal

import pydantic
import torch

from .base import SymbolChannel, noise_variance


class RayleighChannel(SymbolChannel):
    """Flat Rayleigh block fading + AWGN at average Es/N0 = snr_db (Sionna RayleighBlockFading + AWGN)."""

    type_name = "rayleigh"

    class Params(SymbolChannel.Params):
        coherence: Literal["sample", "symbol", "block"] = pydantic.Field("sample", description="fading block")
        block_symbols: pydantic.PositiveInt = pydantic.Field(1, description="symbols per block if coherence=block")
        perfect_csi: bool = pydantic.Field(True, description="equalise with the true channel at the receiver")

    def __init__(self, name, params, ctx):
        super().__init__(name, params, ctx)
        from sionna.phy.channel import AWGN, RayleighBlockFading

        self.awgn = AWGN(device=ctx.device)
        self.fading = RayleighBlockFading(1, 1, 1, 1, device=ctx.device)

    def _rayleigh(self, n: int) -> torch.Tensor:
        a, _ = self.fading(n, 1)
        return a.reshape(n).to(torch.complex64)

    def taps(self, batch: int, length: int) -> torch.Tensor:
        mode = self.p.coherence
        if mode == "sample":
            return self._rayleigh(batch)[:, None].expand(batch, length)
        if mode == "symbol":
            return self._rayleigh(batch * length).reshape(batch, length)
        nb = math.ceil(length / self.p.block_symbols)
        h = self._rayleigh(batch * nb).reshape(batch, nb)
        return h.repeat_interleave(self.p.block_symbols, dim=1)[:, :length]

    def transmit(self, x):
        shape = x.shape
        x2 = x.reshape(shape[0], -1).to(torch.complex64)
        h = self.taps(shape[0], x2.shape[1])
        no = noise_variance(self.p.snr_db)
        y = self.awgn(h * x2, no)
        if self.p.perfect_csi:
            y = y / h
            no_eff = no / h.abs().pow(2).clamp_min(1e-12)
        else:
            no_eff = torch.full(y.shape, no, device=y.device)
        return {"y": y.reshape(shape), "nvar": no_eff.reshape(shape)}


class RicianChannel(RayleighChannel):
    """Flat Rician block fading (K factor) + AWGN; the diffuse part from Sionna's Rayleigh taps."""

    type_name = "rician"

    class Params(RayleighChannel.Params):
        k_factor_db: float = pydantic.Field(description="Rician K factor (LOS/diffuse power) in dB")
        random_los_phase: bool = pydantic.Field(False, description="uniform random LOS phase per tap")

    def _rayleigh(self, n: int) -> torch.Tensor:
        k = 10 ** (self.p.k_factor_db / 10)
        diffuse = super()._rayleigh(n)
        los = torch.ones(n, dtype=torch.complex64, device=diffuse.device)
        if self.p.random_los_phase:
            los = torch.exp(1j * 2 * math.pi * torch.rand(n, device=diffuse.device)).to(torch.complex64)
        return math.sqrt(k / (k + 1)) * los + math.sqrt(1 / (k + 1)) * diffuse
