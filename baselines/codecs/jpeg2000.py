"""JPEG 2000 through Pillow (OpenJPEG): raw codestream (no JP2 container), 9/7 irreversible wavelet.

``quality`` is the target PSNR in dB of OpenJPEG's rate allocation (``quality_mode="dB"``), 10..70 in 1 dB
steps. Decomposition levels: min(5, floor(log2(min(H, W))) - 2) so that tiny images keep a few pixels at the
coarsest level. What is counted: the whole codestream (SOC, SIZ, COD, QCD, SOT, SOD, packets, EOC) except
OpenJPEG's COM comment marker ("Created by OpenJPEG version ..."), which a decoder ignores and is removed;
for a 28 x 28 grey image the main header is ~70 bytes. The codestream ends with EOC (``FFD9``), so the link's
zero padding is removable.
"""
from __future__ import annotations

import io
import math

import numpy as np

from .base import Codec, DecodeError, as_hwc, check_decoded


def _strip_com(d: bytes) -> bytes:
    """Remove COM (FF64) segments of the main header (between SOC and the first SOT)."""
    out = bytearray(d[:2])
    p = 2
    while p + 4 <= len(d):
        marker = d[p + 1]
        if d[p] != 0xFF or marker == 0x90:  # SOT: main header ends
            break
        seg = int.from_bytes(d[p + 2:p + 4], "big")
        if marker != 0x64:
            out += d[p:p + 2 + seg]
        p += 2 + seg
    return bytes(out + d[p:])


class JPEG2000Codec(Codec):
    """JPEG 2000 codestream (Pillow/OpenJPEG); payload = codestream without COM (see module doc)."""

    name = "jpeg2000"
    qualities = range(10, 71)

    def versions(self) -> dict:
        import PIL
        from PIL import features

        return {"pillow": PIL.__version__, "openjpeg": features.version("jpg_2000")}

    @staticmethod
    def levels(shape) -> int:
        return max(1, min(5, int(math.log2(min(shape[:2]))) - 2))

    def encode(self, img, quality):
        from PIL import Image

        img = as_hwc(img)
        if quality not in self.qualities:
            raise ValueError(f"jpeg2000 quality must be in 10..70, got {quality}")
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG2000", no_jp2=True, irreversible=True, quality_mode="dB",
                                  quality_layers=[float(quality)], num_resolutions=self.levels(img.shape) + 1)
        return _strip_com(buf.getvalue())

    def decode(self, data, shape):
        from PIL import Image

        if len(data) < 4 or data[:2] != b"\xff\x4f":
            raise DecodeError("not a JPEG 2000 codestream")
        try:
            with Image.open(io.BytesIO(data), formats=["JPEG2000"]) as im:
                arr = np.asarray(im)
        except Exception as e:
            raise DecodeError(f"OpenJPEG: {e}") from None
        return check_decoded(arr, tuple(shape))
