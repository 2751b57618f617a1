"""SSCC (separate source-channel coding) blocks: an image codec at a bit budget, its receiver, and stats.

Chain (issue 4): ``image_codec_encoder`` -> ``crc_encoder`` (CRC24A) -> ``ldpc5g_encoder`` -> ``qam_mapper``
-> channel -> ``qam_demapper`` -> ``ldpc5g_decoder`` -> ``crc_decoder`` -> ``image_codec_decoder`` (its
``ok`` input wired to the CRC check).

**Budget.** The encoder's payload is exactly ``B`` bits per image (the codec bitstream, zero-padded; the
stream's end is found by stripping the padding, see :mod:`baselines.codecs.base`), with B from one of

* ``budget_bits``: B given;
* ``channel_uses`` N + ``bits_per_channel_use`` (an MCS's spectral efficiency R log2 M):
  B = floor(N R log2 M) - ``reserved_bits`` (e.g. 24 for the CRC24A that the link adds);
* ``channel_uses`` N + ``capacity_snr_db``: the *SSCC capacity bound*, B = floor(N C) - ``reserved_bits``
  delivered without error (wire the encoder straight to the decoder). ``fading: awgn``: C = log2(1 + SNR).
  ``fading: rayleigh`` (E|h|^2 = 1, receiver CSI): by default the **ergodic** capacity
  C = E[log2(1 + |h|^2 SNR)] = log2(e) e^(1/SNR) E1(1/SNR), the bound for a codeword spanning many
  independent fades (``coherence: symbol``); with ``outage: eps`` the eps-**outage** capacity
  C_eps = log2(1 + SNR ln(1/(1 - eps))), the rate a one-fade (block-fading) codeword delivers with
  probability 1 - eps -- the bound then holds for a fraction 1 - eps of the images, the others get the mean
  image in a real system (``codec_stats`` does not model that; report it next to the curve).

The rate control picks the highest codec quality whose payload fits floor(B / 8) bytes. When even the lowest
quality does not fit, the payload is all zeros, ``ok`` = 0, and the receiver outputs the mean image: a result,
flagged by ``codec_stats`` (``codec_fit_rate`` < 1, ``fallback_rate``), not an error.

**Mean image / fallback rule.** The encoder is a (cheap) trainable block: ``fit`` computes the mean image of
the training split (pixel-wise, what the receiver outputs without information: the MMSE estimate), cached
like any trained state, and the receiver gets it with the codec through the payload's port metadata, like a
codebook shared at link set-up. ``image_codec_decoder`` outputs that mean image, with ``fallback`` = 1, when
its ``ok`` input is 0 (CRC failed: a failed LDPC block), when the payload is empty (nothing fitted), or when
the codec cannot decode the stream (wrong header, decoder error).
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import numpy as np
import pydantic
import torch

from linksim.block import LABEL, Block, Metric, Params, Port, Spec, labelled
from linksim.errors import PortError, UserError

from .codecs import (
    Codec,
    DecodeError,
    RateTableCache,
    codec_class,
    strip_padding,
)


def capacity_bits_per_use(snr_db: float, fading: str = "awgn", outage: float | None = None) -> float:
    """Capacity in bits per complex channel use at Es/N0 = ``snr_db`` (see module doc for the choices)."""
    snr = 10.0 ** (snr_db / 10.0)
    if fading == "awgn":
        return math.log2(1.0 + snr)
    if fading != "rayleigh":
        raise ValueError(f"fading must be awgn or rayleigh, got {fading!r}")
    if outage is not None:
        return math.log2(1.0 + snr * -math.log1p(-outage))
    from scipy.special import exp1

    x = 1.0 / snr
    if x > 700:  # e^x E1(x) -> 1/x: C -> SNR log2(e)
        return snr * math.log2(math.e)
    return float(math.log2(math.e) * math.exp(x) * exp1(x))


class SSCCLink:
    """What both ends of an SSCC link share: the codec, the image shape, the budget and the mean image."""

    def __init__(self, codec: Codec, chw: tuple[int, int, int], budget_bits: int):
        self.codec = codec
        self.chw = chw
        c, h, w = chw
        self.hwc = (h, w) if c == 1 else (h, w, c)
        self.budget_bits = budget_bits
        self.mean: torch.Tensor | None = None  # (C, H, W) in [0, 1], set by the encoder's fit

    def to_uint8(self, images: torch.Tensor) -> np.ndarray:
        """(N, C, H, W) in [0, 1] -> (N, H, W[, C]) uint8."""
        a = (images.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).cpu().numpy()
        return a[:, 0] if a.shape[1] == 1 else np.ascontiguousarray(a.transpose(0, 2, 3, 1))

    def to_image(self, arr: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(arr)).float() / 255.0
        return t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1)


def _workers(n: int | None) -> int:
    return n or max(1, min(4, os.cpu_count() or 1))


class ImageCodecEncoder(Block):
    """Image -> codec bitstream at the highest quality fitting a bit budget, zero-padded to the budget."""

    type_name = "image_codec_encoder"
    role = "transmitter"
    trainable = True  # fit = mean training image, the receiver's fallback
    memoize_eval = True  # deterministic: reused across SNR points of a run
    inputs = {"image": Port(("image",), "image in [0,1], 1 (grey) or 3 (colour) channels")}
    outputs = {"bits": "payload: codec bitstream + zero padding (budget bits)",
               "ok": "1 if a codec quality fitted the budget, else 0 (shape (1,))",
               "payload_bits": "bits of the codec bitstream (0 if nothing fitted) (shape (1,))",
               "quality": "codec quality chosen by the rate control (-1 if nothing fitted) (shape (1,))"}

    class Params(Params):
        codec: Literal["heif", "bpg", "jpeg2000", "jpeg"] = pydantic.Field(
            description="heif (HEVC intra via pillow-heif), bpg (bpgenc/bpgdec on PATH), jpeg2000, jpeg")
        budget_bits: pydantic.PositiveInt | None = pydantic.Field(None, description="payload bits per image")
        channel_uses: pydantic.PositiveInt | None = pydantic.Field(
            None, description="complex channel uses per image (with bits_per_channel_use or capacity_snr_db)")
        bits_per_channel_use: pydantic.PositiveFloat | None = pydantic.Field(
            None, description="MCS spectral efficiency R log2 M: budget = floor(channel_uses x this) - reserved_bits")
        capacity_snr_db: float | None = pydantic.Field(
            None, description="SSCC capacity bound: budget = floor(channel_uses x C(SNR)) - reserved_bits")
        fading: Literal["awgn", "rayleigh"] = pydantic.Field(
            "awgn", description="capacity formula: awgn log2(1+SNR); rayleigh ergodic (or outage, see 'outage')")
        outage: float | None = pydantic.Field(
            None, description="rayleigh only: eps-outage capacity log2(1 + SNR ln(1/(1-eps))) instead of ergodic")
        reserved_bits: pydantic.NonNegativeInt = pydantic.Field(
            0, description="bits of a channel-derived budget used by the link (e.g. 24 for a CRC24A)")
        chroma: Literal["444", "420"] = pydantic.Field("444", description="chroma format of colour images")
        workers: pydantic.PositiveInt | None = pydantic.Field(
            None, description="threads building rate tables (default min(4, CPU cores))")
        label: str | None = LABEL

        @pydantic.model_validator(mode="after")
        def _check(self):
            modes = [m for m in ("budget_bits", "bits_per_channel_use", "capacity_snr_db") if getattr(self, m) is not None]
            if len(modes) != 1:
                raise ValueError("set exactly one of budget_bits, bits_per_channel_use (with channel_uses) or "
                                 f"capacity_snr_db (with channel_uses); got {modes or 'none'}")
            if modes[0] != "budget_bits" and self.channel_uses is None:
                raise ValueError(f"{modes[0]} needs channel_uses")
            if modes[0] == "budget_bits" and (self.channel_uses is not None or self.reserved_bits):
                raise ValueError("channel_uses / reserved_bits apply to channel-derived budgets, not budget_bits")
            if modes[0] != "capacity_snr_db" and (self.fading != "awgn" or self.outage is not None):
                raise ValueError("fading / outage apply to capacity_snr_db only")
            if self.outage is not None and (self.fading != "rayleigh" or not 0 < self.outage < 1):
                raise ValueError(f"outage must be in (0, 1) with fading: rayleigh, got {self.outage}")
            if self.budget() < 1:
                raise ValueError(f"the budget is {self.budget()} bits (after reserved_bits={self.reserved_bits})")
            return self

        def budget(self) -> int:
            if self.budget_bits is not None:
                return self.budget_bits
            if self.bits_per_channel_use is not None:
                per_use = self.bits_per_channel_use
            else:
                per_use = capacity_bits_per_use(self.capacity_snr_db, self.fading, self.outage)
            return math.floor(self.channel_uses * per_use + 1e-9) - self.reserved_bits

    def __init__(self, name, params, ctx):
        super().__init__(name, params, ctx)
        cls = codec_class(params.codec)
        if not cls.available():
            raise UserError(cls.unavailable_reason())
        self.codec = cls(params.chroma)
        self.budget_bits = params.budget()
        root = getattr(getattr(ctx, "cache", None), "root", None)
        self.tables = RateTableCache(root / "sscc_rate" if root is not None else None)

    def setup(self, specs):
        s = specs["image"]
        if len(s.shape) != 3 or s.shape[0] not in (1, 3):
            raise PortError(f"expects a (1 or 3, H, W) image, got {s}")
        self.link = SSCCLink(self.codec, tuple(s.shape), self.budget_bits)
        one = Spec("real", (1,))
        return {"bits": Spec("bits", (self.budget_bits,), {**s.meta, "sscc": self.link}), "ok": one,
                "payload_bits": one, "quality": one}

    # -- mean image (the receiver's fallback) ------------------------------------------------------
    def fit(self, data, ctx):
        total, n = None, 0
        for batch in data.epoch(0, shuffle=False):
            x = batch["image"].double()
            total = x.sum(0) if total is None else total + x.sum(0)
            n += x.shape[0]
        if not n:
            raise UserError("image_codec_encoder: the training split is empty (needed for the mean image)")
        self.link.mean = (total / n).float().cpu()

    def state(self):
        return {"mean": self.link.mean}

    def load_state(self, state):
        self.link.mean = state["mean"].float()

    # -- coding -------------------------------------------------------------------------------------
    def forward(self, image):
        imgs = self.link.to_uint8(image)
        max_bytes = self.budget_bits // 8
        enc = self.codec.encode_at_budget
        if len(imgs) > 1 and _workers(self.p.workers) > 1:
            with ThreadPoolExecutor(_workers(self.p.workers)) as ex:
                res = list(ex.map(lambda a: enc(a, max_bytes, self.tables), imgs))
        else:
            res = [enc(a, max_bytes, self.tables) for a in imgs]
        self.tables.flush()
        n = len(imgs)
        bits = np.zeros((n, self.budget_bits), np.float32)
        ok = np.zeros((n, 1), np.float32)
        used = np.zeros((n, 1), np.float32)
        quality = np.full((n, 1), -1.0, np.float32)
        for i, r in enumerate(res):
            if r is None:
                continue
            payload, q = r
            b = np.unpackbits(np.frombuffer(payload, np.uint8))
            bits[i, : len(b)] = b
            ok[i], used[i], quality[i] = 1.0, len(b), q
        dev = image.device
        return {"bits": torch.from_numpy(bits).to(dev), "ok": torch.from_numpy(ok).to(dev),
                "payload_bits": torch.from_numpy(used).to(dev), "quality": torch.from_numpy(quality).to(dev)}

    def report(self):
        rep = {"bits_per_sample": float(self.budget_bits)}
        if self.p.capacity_snr_db is not None:  # an ideal link of channel_uses uses stands in for the channel
            rep["channel_uses_per_sample"] = float(self.p.channel_uses)
        return labelled(self, rep)


class ImageCodecDecoder(Block):
    """Payload bits -> image; the training-split mean image when ``ok`` is 0 or the stream is undecodable."""

    type_name = "image_codec_decoder"
    role = "receiver"
    inputs = {"bits": Port(("bits",), "payload from an image_codec_encoder (through any link)"),
              "ok": Port(("real",), "1 = payload intact (e.g. crc_decoder.ok); 0 -> mean image", optional=True)}
    outputs = {"image": "decoded image in [0,1] (the mean image on fallback)",
               "fallback": "1 if the mean image was output, else 0 (shape (1,))"}

    class Params(Params):
        workers: pydantic.PositiveInt = pydantic.Field(1, description="decoding threads (decoding is cheap)")

    def setup(self, specs):
        s = specs["bits"]
        self.link = s.meta.get("sscc")
        if not isinstance(self.link, SSCCLink):
            raise PortError(f"'bits' must come (through any link) from an image_codec_encoder, got {s}")
        if s.size != self.link.budget_bits:
            raise PortError(f"expects the encoder's {self.link.budget_bits} payload bits, got {s}: "
                            "a block in between changes the payload length?")
        if "ok" in specs and specs["ok"].size != 1:
            raise PortError(f"'ok' must be one flag per sample, got {specs['ok']}")
        return {"image": Spec("image", self.link.chw), "fallback": Spec("real", (1,))}

    _memo: dict = {}  # (codec key, shape, payload) -> decoded image or None; the same payloads recur
    _memo_bytes = 0   # across SNR points (error-free frames) and systems with equal budgets
    MEMO_LIMIT = 256 << 20

    def _decode(self, row: np.ndarray):
        data = strip_padding(np.packbits(row[: len(row) // 8 * 8].astype(np.uint8)).tobytes())
        if not data:
            return None
        key = (self.link.codec.key(), self.link.hwc, data)
        if key in self._memo:
            return self._memo[key]
        try:
            out = self.link.codec.decode(data, self.link.hwc)
        except DecodeError:
            out = None
        cls = type(self)
        if cls._memo_bytes > cls.MEMO_LIMIT:
            cls._memo.clear()
            cls._memo_bytes = 0
        cls._memo[key] = out
        cls._memo_bytes += len(data) + (out.nbytes if out is not None else 0)
        return out

    def forward(self, bits, ok=None):
        if self.link.mean is None:
            raise RuntimeError("image_codec_decoder: the encoder's mean image was not fitted")
        n = bits.shape[0]
        rows = (bits.reshape(n, -1) > 0.5).cpu().numpy()
        good = np.ones(n, bool) if ok is None else (ok.reshape(n) > 0.5).cpu().numpy()
        todo = [i for i in range(n) if good[i]]
        if len(todo) > 1 and _workers(self.p.workers) > 1:
            with ThreadPoolExecutor(_workers(self.p.workers)) as ex:
                dec = list(ex.map(lambda i: self._decode(rows[i]), todo))
        else:
            dec = [self._decode(rows[i]) for i in todo]
        out = self.link.mean.unsqueeze(0).repeat(n, 1, 1, 1)
        fallback = torch.ones(n, 1)
        for i, arr in zip(todo, dec):
            if arr is not None:
                out[i] = self.link.to_image(arr)
                fallback[i] = 0.0
        return {"image": out.to(bits.device), "fallback": fallback.to(bits.device)}


class CodecStats(Block):
    """SSCC figures for results.csv: fallback_rate (mean image output), codec_fit_rate, payload_bits, quality."""

    type_name = "codec_stats"
    role = "metric"
    is_sink = True
    inputs = {"fallback": Port(("real",), "image_codec_decoder.fallback"),
              "fit": Port(("real",), "image_codec_encoder.ok (something fitted the budget)", optional=True),
              "payload_bits": Port(("real",), "image_codec_encoder.payload_bits", optional=True),
              "quality": Port(("real",), "image_codec_encoder.quality", optional=True)}

    def setup(self, specs):
        for k, s in specs.items():
            if s.size != 1:
                raise PortError(f"'{k}' must be one value per sample, got {s}")
        return {}

    def reset(self):
        self.acc = {k: [] for k in self.inputs}

    def update(self, fallback, fit=None, payload_bits=None, quality=None):
        for k, v in (("fallback", fallback), ("fit", fit), ("payload_bits", payload_bits), ("quality", quality)):
            if v is not None:
                self.acc[k].append(v.reshape(-1).float().cpu())

    def error_counts(self):
        return {"fallback_rate": int(sum(float((v > 0.5).sum()) for v in self.acc["fallback"]))}

    def compute(self):
        cat = {k: torch.cat(v) for k, v in self.acc.items() if v}
        fb = cat["fallback"] > 0.5
        rows = [Metric.rate("fallback_rate", int(fb.sum()), len(fb), value=float(cat["fallback"].mean()))]
        if "fit" in cat:
            fit = cat["fit"] > 0.5
            rows.append(Metric.rate("codec_fit_rate", int((~fit).sum()), len(fit), success=True,
                                    value=float(cat["fit"].mean())))
        fitted = cat["fit"] > 0.5 if "fit" in cat else None
        for k, name in (("payload_bits", "payload_bits"), ("quality", "codec_quality")):
            if k in cat:
                v = cat[k][fitted] if fitted is not None else cat[k]
                v = v[v >= 0]
                rows.append(Metric.mean(name, v) if len(v) else Metric(name, float("nan"), 0))
        return rows
