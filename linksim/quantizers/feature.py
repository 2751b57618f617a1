"""Quantizer blocks: the transmitter's feature quantizer and the receiver's dequantizer.

Both ends share the fitted codec (MaxPro set, value levels) the way a real system shares a codebook: the
transmitter block fits it on the training representations, and the receiver finds it in the metadata of
the bit stream it is wired to (through any channel or channel code in between).
"""
from __future__ import annotations

from typing import Literal

import pydantic

from ..block import LABEL, Block, Params, Port, Spec, labelled
from ..errors import PortError
from .codec import FeatureCodec


class FeatureQuantizer(Block):
    """Representation -> bit payload: float, scalar n-bit, MaxPro-K, MaxAmp-K or MaxProAmp (fitted, cached)."""

    type_name = "feature_quantizer"
    role = "transmitter"
    trainable = True
    inputs = {"features": Port(("real",))}
    outputs = {"bits": "payload bits (fixed length)"}

    class Params(Params):
        scheme: Literal["float", "scalar", "maxpro", "maxamp", "maxproamp"] = pydantic.Field(
            description="quantization scheme")
        K: int | None = pydantic.Field(None, description="selected indices (maxpro/maxamp/maxproamp)")
        n: int = pydantic.Field(1, description="bits per transmitted value (32 = float32)")
        maxpro_size: int | None = pydantic.Field(None, description="MaxPro set size (maxproamp only)")
        label: str | None = LABEL
        train_samples: pydantic.PositiveInt | None = pydantic.Field(
            None, description="fit the MaxPro set / value levels on the first N training samples (default: all)")

        @pydantic.model_validator(mode="after")
        def _check(self):
            if self.scheme in ("maxpro", "maxamp", "maxproamp", "scalar") and not (1 <= self.n <= 16 or self.n == 32):
                raise ValueError(f"n must be in 1..16 or 32, got {self.n}")
            if self.scheme == "scalar" and self.n == 32:
                raise ValueError("scalar quantization needs n <= 16 (use scheme: float for 32-bit floats)")
            if self.scheme in ("maxpro", "maxamp", "maxproamp") and (self.K is None or self.K < 1):
                raise ValueError(f"K must be >= 1 for {self.scheme}, got {self.K}")
            if self.scheme == "maxproamp" and self.maxpro_size is None:
                raise ValueError("maxproamp needs maxpro_size (the MaxPro set size)")
            if self.K is not None and self.K < 1:
                raise ValueError(f"K must be >= 1, got {self.K}")
            if self.maxpro_size is not None and self.K is not None and self.K > self.maxpro_size:
                raise ValueError(f"K ({self.K}) > maxpro_size ({self.maxpro_size})")
            return self

    def setup(self, specs):
        s = specs["features"]
        if len(s.shape) != 1:
            raise PortError(f"expects a feature vector, got {s}")
        nf = s.shape[0]
        if self.p.K is not None and self.p.K > nf:
            raise PortError(f"K ({self.p.K}) > N ({nf} features)")
        if self.p.maxpro_size is not None and self.p.maxpro_size > nf:
            raise PortError(f"maxpro_size ({self.p.maxpro_size}) > N ({nf} features)")
        self.codec = FeatureCodec(self.p.scheme, nf, self.p.K, self.p.n, self.p.maxpro_size)
        self.nf = nf
        return {"bits": Spec("bits", (self.codec.payload_bits(),), {"codec": self.codec, "features": nf})}

    def train_signature(self):
        # train_samples left unset keeps the cache keys of quantizers fitted before it existed
        return self.p.model_dump(mode="json", exclude={"train_samples"} if self.p.train_samples is None else None)

    def fit(self, data, ctx):
        if self.p.scheme == "float":
            return  # nothing to fit: no pass over the training data
        self.codec.fit(data.materialize(self.p.train_samples)["features"])

    def state(self):
        return {"codec": self.codec.state()}

    def load_state(self, state):
        self.codec.load_state(state["codec"])

    def forward(self, features):
        return {"bits": self.codec.encode(features)}

    def report(self):
        return labelled(self, {"bits_per_sample": float(self.codec.payload_bits())})


class FeatureDequantizer(Block):
    """Bit payload -> representation (zeros elsewhere); invalid index words give an all-zero vector."""

    type_name = "feature_dequantizer"
    role = "receiver"
    # deterministic, and its output (Nf floats) is small next to a float payload (32 Nf bits): memoised, the
    # quantizer and a deterministic link upstream are skipped at the other points of a node sweep
    memoize_eval = True
    inputs = {"bits": Port(("bits",), "payload from a feature_quantizer, possibly through a link")}
    outputs = {"features": "decoded representation", "valid": "1 if the index word was valid"}

    def setup(self, specs):
        s = specs["bits"]
        self.codec = s.meta.get("codec")
        if not isinstance(self.codec, FeatureCodec):
            raise PortError(f"'bits' must come (through any link) from a feature_quantizer, got {s}")
        return {"features": Spec("real", (s.meta["features"],)), "valid": Spec("real", ())}

    def forward(self, bits):
        X, valid = self.codec.decode(bits)
        return {"features": X, "valid": valid.float()}
