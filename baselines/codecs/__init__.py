"""Classical image codecs behind one interface (:class:`~baselines.codecs.base.Codec`), for SSCC baselines.

=============  ===============================================  ===========  =================================
name           implementation                                   quality      header counted in the payload
=============  ===============================================  ===========  =================================
``heif``       HEVC intra via pillow-heif (libheif, x265)       0..51        3 bytes (< 128 x 128), + slice NAL
``bpg``        ``bpgenc``/``bpgdec`` on PATH                    0..51        BPG file header (magic removed)
``jpeg2000``   Pillow / OpenJPEG codestream, 9/7 wavelet        10..70 dB    whole codestream minus COM
``jpeg``       Pillow / libjpeg, standard Huffman tables        1..100       1 byte (quality) + scan + EOI
=============  ===============================================  ===========  =================================
"""
from __future__ import annotations

from .base import Codec, DecodeError, RateTableCache, strip_padding


def codec_class(name: str):
    from .bpg import BPGCodec
    from .heif import HEIFCodec
    from .jpeg import JPEGCodec
    from .jpeg2000 import JPEG2000Codec

    classes = {c.name: c for c in (HEIFCodec, BPGCodec, JPEG2000Codec, JPEGCodec)}
    if name not in classes:
        raise ValueError(f"unknown codec {name!r} (known: {', '.join(classes)})")
    return classes[name]


CODECS = ("heif", "bpg", "jpeg2000", "jpeg")

__all__ = ["CODECS", "Codec", "DecodeError", "RateTableCache", "codec_class", "strip_padding"]
