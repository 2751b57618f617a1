"""Baseline JPEG through Pillow (libjpeg), standard Huffman tables, 4:4:4 by default for colour.

``quality`` is Pillow's/libjpeg's 1..100 (IJG scale). What is counted: **1 byte** (the quality) + the
entropy-coded scan + the 2-byte EOI marker. Everything before the scan -- SOI, APP0/JFIF, the quantisation
tables (a function of the quality), SOF (size, components, sampling), the standard Huffman tables and the
SOS header, about 330 bytes for a 28 x 28 grey image and 600 for colour -- depends only on (quality, image
shape, colour mode, chroma subsampling), which the receiver knows once it has the quality byte, so it is
rebuilt there from a header template (a flat image encoded with the same settings). Every encode checks
that its header equals the template, so stripping it is lossless. The EOI marker is kept because the scan
may end with a zero byte (a stuffed ``FF 00``) and the link's zero padding must be removable.
"""
from __future__ import annotations

import io
import threading

import numpy as np

from .base import Codec, DecodeError, as_hwc, check_decoded


def _scan_start(data: bytes) -> int:
    """Offset of the first entropy-coded byte (just after the SOS segment)."""
    p = 2
    while p + 4 <= len(data):
        if data[p] != 0xFF:
            raise ValueError(f"not a JPEG marker at {p}")
        marker = data[p + 1]
        seg = int.from_bytes(data[p + 2:p + 4], "big")
        if marker == 0xDA:
            return p + 2 + seg
        p += 2 + seg
    raise ValueError("no SOS segment")


class JPEGCodec(Codec):
    """JPEG (Pillow); payload = quality byte + scan + EOI (see module doc)."""

    name = "jpeg"
    qualities = range(1, 101)

    def __init__(self, chroma: str = "444"):
        super().__init__(chroma)
        self._headers: dict[tuple, bytes] = {}
        self._lock = threading.Lock()

    def versions(self) -> dict:
        import PIL
        from PIL import features

        return {"pillow": PIL.__version__, "libjpeg": features.version("jpg")}

    def _jpeg(self, img: np.ndarray, quality: int) -> bytes:
        from PIL import Image

        buf = io.BytesIO()
        kw = {} if img.ndim == 2 else {"subsampling": 0 if self.chroma == "444" else 2}
        Image.fromarray(img).save(buf, format="JPEG", quality=int(quality), optimize=False, progressive=False, **kw)
        return buf.getvalue()

    def _header(self, shape: tuple, quality: int) -> bytes:
        key = (tuple(shape), quality)
        with self._lock:
            h = self._headers.get(key)
        if h is None:
            d = self._jpeg(np.full(shape, 128, np.uint8), quality)
            h = d[:_scan_start(d)]
            with self._lock:
                self._headers[key] = h
        return h

    def encode(self, img, quality):
        img = as_hwc(img)
        if quality not in self.qualities:
            raise ValueError(f"jpeg quality must be in 1..100, got {quality}")
        d = self._jpeg(img, quality)
        s = _scan_start(d)
        if d[:s] != self._header(img.shape, quality):
            raise RuntimeError("JPEG header differs from the receiver's template (content-dependent tables?)")
        return bytes([quality]) + d[s:]

    def decode(self, data, shape):
        from PIL import Image

        if len(data) < 3 or data[0] not in self.qualities:
            raise DecodeError("bad quality byte or empty scan")
        try:
            with Image.open(io.BytesIO(self._header(tuple(shape), data[0]) + data[1:])) as im:
                arr = np.asarray(im)
        except Exception as e:
            raise DecodeError(f"libjpeg: {e}") from None
        return check_decoded(arr, tuple(shape))
