"""CRC attachment and check (Sionna ``CRCEncoder``/``CRCDecoder``), e.g. CRC24A as on 5G transport blocks.

``crc_encoder`` appends the CRC parity bits to the whole payload; ``crc_decoder`` removes them and outputs
``ok`` = 1 when the received parity matches. Placed around a channel code (payload -> crc -> LDPC -> ... ->
LDPC decoder -> crc check), it tells the receiver that a codeword failed, so an application decoder can
reject the payload instead of using corrupted bits (e.g. ``image_codec_decoder`` falls back to the mean
image). Undetected errors occur with probability about 2^-r for r parity bits.
"""
from __future__ import annotations

import functools
from typing import Literal

import pydantic
import torch

from ..block import Block, Params, Port, Spec, expect, find_pair, paired_value, pop_pair, push_pair
from ..errors import PortError

_CRC = Literal["CRC24A", "CRC24B", "CRC24C", "CRC16", "CRC11", "CRC6"]


class _CRCParams(Params):
    crc: _CRC = pydantic.Field("CRC24A", description="CRC polynomial (3GPP 38.212 names)")


@functools.lru_cache(maxsize=16)
def _crc_encoder(poly: str, device: str):
    from sionna.phy.fec.crc import CRCEncoder

    return CRCEncoder(poly, device=device)


class CRCEncoderBlock(Block):
    """Append a CRC to the payload (Sionna CRCEncoder): L bits -> L + r bits."""

    type_name = "crc_encoder"
    role = "link"
    memoize_eval = True  # deterministic: reused across the SNR points of a run
    inputs = {"bits": Port(("bits",))}
    outputs = {"bits": "payload followed by the CRC parity bits"}
    Params = _CRCParams

    def __init__(self, name, params, ctx):
        super().__init__(name, params, ctx)
        self.enc = _crc_encoder(params.crc, ctx.device)

    def setup(self, specs):
        expect(specs["bits"], "bits", "bits")
        self.L = specs["bits"].size
        return {"bits": Spec("bits", (self.L + self.enc.crc_length,), push_pair(specs["bits"].meta, self.type_name, self))}

    def forward(self, bits):
        return {"bits": self.enc(bits.reshape(bits.shape[0], -1).float())}

    def report(self):
        return {"crc_bits_per_sample": float(self.enc.crc_length)}


class CRCDecoderBlock(Block):
    """Check and remove the CRC (Sionna CRCDecoder): L + r bits -> L bits and ok (1 = CRC passed)."""

    type_name = "crc_decoder"
    role = "link"
    inputs = {"bits": Port(("bits",), "hard-decided payload + CRC (e.g. from an LDPC decoder)")}
    outputs = {"bits": "payload without the CRC", "ok": "1 if the CRC check passed, else 0 (shape (1,))"}

    class Params(Params):
        crc: _CRC | None = pydantic.Field(None, description="CRC polynomial: the crc_encoder's the bits come from "
                                                            "(CRC24A without one)")

    def setup(self, specs):
        from sionna.phy.fec.crc import CRCDecoder

        s = specs["bits"]
        enc = find_pair(s.meta, "crc_encoder")
        own = self.p.crc if enc is not None or self.p.crc is not None else "CRC24A"  # unpaired: 5G's CRC24A
        self.p = self.p.model_copy(update={"crc": paired_value(own, enc and enc.p.crc, "crc", enc and enc.name)})
        self.dec = CRCDecoder(_crc_encoder(self.p.crc, self.ctx.device), device=self.ctx.device)
        self.r = self.dec.encoder.crc_length
        expect(s, "bits", "bits")
        if s.size <= self.r:
            raise PortError(f"{s} is not longer than the {self.r} bits of {self.p.crc}")
        return {"bits": Spec("bits", (s.size - self.r,), pop_pair(s.meta, "crc_encoder")), "ok": Spec("real", (1,))}

    def forward(self, bits):
        b = bits.reshape(bits.shape[0], -1).float()
        info, valid = self.dec(b)
        return {"bits": info, "ok": valid.reshape(b.shape[0], 1).to(torch.float32)}
