"""5G NR LDPC encoder/decoder blocks (Sionna ``LDPC5GEncoder``/``LDPC5GDecoder``).

A payload of L bits is split into ceil(L/k) codewords (the last one zero-padded), each encoded to n bits.
The decoder implementation is selectable: ``sionna`` (reference) or ``fast`` (compiled CPU path, see
:mod:`linksim.link.fast_ldpc`).
"""
from __future__ import annotations

import functools
import math
from typing import Literal

import pydantic
import torch

from ..block import Block, Params, Port, Spec, expect, find_pair, paired_value, pop_pair, push_pair
from ..errors import PortError


class _LDPCParams(Params):
    k: pydantic.PositiveInt = pydantic.Field(description="information bits per codeword")
    n: pydantic.PositiveInt = pydantic.Field(description="codeword length after rate matching")

    @pydantic.model_validator(mode="after")
    def _rate(self):
        if self.n <= self.k:
            raise ValueError(f"n ({self.n}) must be larger than k ({self.k})")
        return self


@functools.lru_cache(maxsize=64)
def _encoder(k: int, n: int, device: str):
    """One Sionna encoder per (k, n, device) per process (stateless after construction; building one loads
    the base graph, which would otherwise dominate short sweep points)."""
    from sionna.phy.fec.ldpc import LDPC5GEncoder

    try:
        return LDPC5GEncoder(k, n, device=device)
    except (ValueError, AssertionError) as e:
        raise ValueError(f"5G LDPC cannot make (k={k}, n={n}): {e}") from None


@functools.lru_cache(maxsize=8)
def _generator(k: int, n: int, device: str) -> torch.Tensor:
    """The k x n generator matrix of Sionna's encoder (rows = codewords of the unit vectors). The encoder,
    rate matching included, is linear over GF(2), so u G mod 2 is its codeword (tests check bit equality)."""
    enc = _encoder(k, n, device)
    rows = [enc(torch.eye(k, device=device)[i:i + 256]) for i in range(0, k, 256)]
    return torch.cat(rows).float()


@functools.lru_cache(maxsize=256)  # two per code (num_iter, train_iter); up to ~0.5 MB each
def _decoder(k: int, n: int, device: str, impl: str, num_iter: int):
    """One decoder per (code, device, implementation, iterations) per process, like ``_encoder``: both kinds
    keep no state between calls that changes their output, and building one (rate recovery, the pruned
    graph) costs about a millisecond, which validation paid for every sweep point."""
    enc = _encoder(k, n, device)
    if impl == "fast":
        from .fast_ldpc import make_decoder

        return make_decoder(enc, "fast", num_iter)
    from sionna.phy.fec.ldpc import LDPC5GDecoder

    return LDPC5GDecoder(enc, num_iter=num_iter, hard_out=True, return_infobits=True, device=device)


class _EncParams(_LDPCParams):
    impl: Literal["sionna", "generator"] = pydantic.Field(
        "sionna", description="sionna: Sionna's encoder; generator: the same codewords as u G mod 2 with its "
                              "generator matrix (one matrix product; faster on CPU, k x n floats of memory)")


class LDPC5GEncoderBlock(Block):
    """5G NR LDPC encoder; segments the payload into codewords of k info bits."""

    type_name = "ldpc5g_encoder"
    role = "link"
    memoize_eval = True  # deterministic: codewords reused across the SNR points of a run
    inputs = {"bits": Port(("bits",))}
    outputs = {"bits": "coded bits"}
    Params = _EncParams

    def __init__(self, name, params, ctx):
        super().__init__(name, params, ctx)
        self.enc = _encoder(params.k, params.n, ctx.device)
        if params.impl == "generator":
            G = _generator(params.k, params.n, ctx.device)
            self.enc = lambda u: torch.remainder(u @ G, 2.0)  # float32 sums of <= k ones: exact

    def setup(self, specs):
        expect(specs["bits"], "bits", "bits")
        self.L = specs["bits"].size
        self.C = math.ceil(self.L / self.p.k)
        meta = push_pair({**specs["bits"].meta, "info_bits": self.L, "codewords": self.C}, self.type_name, self)
        return {"bits": Spec("bits", (self.C * self.p.n,), meta)}

    def forward(self, bits):
        b = bits.reshape(bits.shape[0], -1).float()
        pad = self.C * self.p.k - self.L
        if pad:
            b = torch.cat([b, torch.zeros(b.shape[0], pad, device=b.device)], 1)
        c = self.enc(b.reshape(-1, self.C, self.p.k))
        return {"bits": c.reshape(b.shape[0], -1)}

    def report(self):
        return {"coded_bits_per_sample": float(self.C * self.p.n)}


class LDPC5GDecoderBlock(Block):
    """5G NR LDPC belief-propagation decoder; returns the hard-decided payload bits."""

    type_name = "ldpc5g_decoder"
    role = "link"
    inputs = {"llr": Port(("llr",), "channel LLRs, log p(1)/p(0)")}
    outputs = {"bits": "decoded payload bits"}

    class Params(Params):
        k: pydantic.PositiveInt | None = pydantic.Field(None, description="information bits per codeword (taken "
                                                        "from the ldpc5g_encoder the LLRs come from)")
        n: pydantic.PositiveInt | None = pydantic.Field(None, description="codeword length (from the encoder)")
        num_iter: pydantic.PositiveInt = pydantic.Field(20, description="BP iterations")
        impl: Literal["sionna", "fast"] = pydantic.Field("sionna", description="decoder implementation")
        train_iter: pydantic.PositiveInt = pydantic.Field(
            2, description="BP iterations on the training split, where links are noise-free unless a channel "
                           "sets in_training (2 recover punctured bits from noise-free LLRs)")


    def setup(self, specs):
        s = specs["llr"]
        enc = find_pair(s.meta, "ldpc5g_encoder")
        k = paired_value(self.p.k, enc and enc.p.k, "k", enc and enc.name)
        n = paired_value(self.p.n, enc and enc.p.n, "n", enc and enc.name)
        if n <= k:
            raise ValueError(f"n ({n}) must be larger than k ({k})")
        self.p = self.p.model_copy(update={"k": k, "n": n})
        # decoders of the encoder's own Sionna object (one per k, n, device)
        self.dec = _decoder(k, n, self.ctx.device, self.p.impl, self.p.num_iter)
        self.train_dec = _decoder(k, n, self.ctx.device, self.p.impl, self.p.train_iter)
        self.C = s.meta.get("codewords", s.size // self.p.n)
        self.L = s.meta.get("info_bits", self.C * self.p.k)
        if self.C * self.p.n != s.size:
            raise PortError(f"expects {self.C} codewords of n={self.p.n} LLRs, got {s}: k/n differ from the encoder?")
        meta = pop_pair({a: v for a, v in s.meta.items() if a not in ("info_bits", "codewords")}, "ldpc5g_encoder")
        return {"bits": Spec("bits", (self.L,), meta)}

    def forward(self, llr):
        b = llr.shape[0]
        training = getattr(self.ctx.batch, "split", None) == "train"
        u = (self.train_dec if training else self.dec)(llr.reshape(b, self.C, self.p.n).float())
        return {"bits": u.reshape(b, -1)[:, : self.L].float()}
