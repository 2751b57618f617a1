"""HEVC intra (the codec inside BPG) through pillow-heif: libheif + x265 encoder, libde265 decoder.

Settings: grey images are coded monochrome (4:0:0), colour images RGB -> YCbCr (BT.601, full range) 4:4:4 by
default (``chroma="420"`` selectable), 8 bit. ``quality`` q in 0..51 is BPG's scale turned around: x265
constant QP = 51 - q (``bpgenc -q`` takes the QP, default 28 = quality 23), so q = 51 is the finest
quantiser. The image is edge-padded to a multiple of 8 (HEVC's minimum coding block; libheif pads further
to x265's 64x64 CTU and signals the crop) and cropped back after decoding.

What is counted (the payload the link carries), for an image of W x H:

==========  =============================================================================================
bytes       content
==========  =============================================================================================
1           format: chroma_format_idc << 4 | (bit_depth - 8) (0x00 grey, 0x30 colour 4:4:4, 0x10 4:2:0)
ue7(W)      width, BPG's ue7 code (1 byte below 128, 2 below 16384)
ue7(H)      height (same)
L           the coded picture: the HEVC slice NAL unit (2-byte NAL header + slice header + CABAC data)
==========  =============================================================================================

so the header is ``1 + len(ue7(W)) + len(ue7(H))`` bytes: **3 bytes for every image below 128 x 128**
(28 x 28 Fashion-MNIST, 32 x 32 CIFAR, 96 x 96 STL-10). This mirrors BPG's own header (format byte, ue7
width/height; BPG also sends a 4-byte magic, a colour-space byte, a ue7 picture length and a compacted SPS)
without what the receiver of a link already knows: no magic and no length field (the payload's end is found
by stripping the link's zero padding -- a NAL unit always ends with the non-zero RBSP stop bit) and no
VPS/SPS/PPS: x265's parameter sets depend only on (padded size, chroma format, encoder settings), not on the
picture or the QP (the slice header carries the QP), so the receiver regenerates them. Not counted, because
rebuilt by the receiver: the ~400-byte HEIF container (ftyp, meta: hdlr, pitm, iloc, iinf, iprp with
hvcC = VPS+SPS+PPS, ispe, clap, colr/nclx, pixi) and the 4-byte NAL length prefix in ``mdat``.

Receiver: a container *template* for the padded size and format is made once by encoding a flat image with
the same settings; decoding puts the received NAL unit into the template's ``mdat`` and patches the two
length fields (mdat box size, iloc extent length). Every encode checks that this rebuild reproduces
libheif's file byte for byte, so the receiver's stream is exactly the transmitter's.
"""
from __future__ import annotations

import io
import struct
import threading

import numpy as np

from .base import Codec, DecodeError, as_hwc, check_decoded, pad_to, read_ue7, ue7

PAD = 8  # HEVC minimum coding-block size: pictures are coded in multiples of it
_CHROMA_IDC = {"grey": 0, "420": 1, "444": 3}


def _boxes(data: bytes, start: int, end: int) -> list[tuple[str, int, int]]:
    """(type, offset, size) of the ISO-BMFF boxes in data[start:end] (32-bit sizes only)."""
    out = []
    off = start
    while off + 8 <= end:
        size, typ = struct.unpack(">I4s", data[off:off + 8])
        if size < 8 or off + size > end:
            raise ValueError(f"unsupported box layout at {off}")
        out.append((typ.decode("latin-1"), off, size))
        off += size
    return out


class _Template:
    """A libheif file for one (padded size, format), split around the coded picture."""

    def __init__(self, data: bytes):
        top = _boxes(data, 0, len(data))
        if top[-1][0] != "mdat":
            raise RuntimeError("libheif output: expected 'mdat' as the last box")
        _, self.mdat_off, _ = top[-1]
        meta = [b for b in top if b[0] == "meta"]
        if len(meta) != 1:
            raise RuntimeError("libheif output: expected one 'meta' box")
        _, moff, msize = meta[0]
        iloc = [b for b in _boxes(data, moff + 12, moff + msize) if b[0] == "iloc"]
        if len(iloc) != 1:
            raise RuntimeError("libheif output: expected one 'iloc' box")
        self.len_field, self.len_size = self._extent_length_field(data, iloc[0][1])
        self.prefix = bytearray(data[: self.mdat_off])

    def _extent_length_field(self, d: bytes, off: int) -> tuple[int, int]:
        """Offset and size of the extent-length field of the one item stored in mdat."""
        p = off + 8
        version = d[p]
        p += 4
        offset_size, length_size = d[p] >> 4, d[p] & 15
        base_size, index_size = d[p + 1] >> 4, (d[p + 1] & 15) if version in (1, 2) else 0
        p += 2
        count, p = (struct.unpack(">H", d[p:p + 2])[0], p + 2) if version < 2 else (struct.unpack(">I", d[p:p + 4])[0], p + 4)

        def uint(pos, n):
            return int.from_bytes(d[pos:pos + n], "big") if n else 0

        found = []
        for _ in range(count):
            p += 2 if version < 2 else 4  # item_ID
            if version in (1, 2):
                p += 2  # construction_method
            p += 2  # data_reference_index
            base = uint(p, base_size)
            p += base_size
            extents = uint(p, 2)
            p += 2
            for _ in range(extents):
                p += index_size
                eoff = uint(p, offset_size)
                p += offset_size
                found.append((base + eoff, p, extents))
                p += length_size
        in_mdat = [f for f in found if f[0] == self.mdat_off + 8]
        if len(in_mdat) != 1 or in_mdat[0][2] != 1 or length_size not in (4, 8):
            raise RuntimeError("libheif output: expected one single-extent item at the start of mdat")
        return in_mdat[0][1], length_size

    def rebuild(self, nal: bytes) -> bytes:
        content = struct.pack(">I", len(nal)) + nal
        head = bytearray(self.prefix)
        head[self.len_field:self.len_field + self.len_size] = len(content).to_bytes(self.len_size, "big")
        return bytes(head) + struct.pack(">I4s", 8 + len(content), b"mdat") + content


class HEIFCodec(Codec):
    """HEVC intra via pillow-heif (x265 / libde265); payload = 3-byte header + slice NAL unit (see module doc)."""

    name = "heif"
    qualities = range(0, 52)  # x265 QP = 51 - quality
    # the first x265 encode / libde265 decode of a process initialises global tables: done under a lock so
    # that the encoder/decoder blocks may run the codec from several threads afterwards
    _first_use = threading.Lock()
    _warm = {"encode": False, "decode": False}

    @classmethod
    def _serial_first(cls, what: str, fn):
        if cls._warm[what]:
            return fn()
        with cls._first_use:
            out = fn()
            cls._warm[what] = True
            return out

    def __init__(self, chroma: str = "444"):
        super().__init__(chroma)
        self._templates: dict[tuple, _Template] = {}
        self._tlock = threading.Lock()

    @classmethod
    def available(cls) -> bool:
        try:
            import pillow_heif
        except ImportError:
            return False
        info = pillow_heif.libheif_info()
        return bool(info.get("HEIF")) and bool(info.get("decoders"))

    @classmethod
    def unavailable_reason(cls) -> str:
        return "codec 'heif' needs pillow-heif with an HEVC encoder (x265) and decoder (libde265): pip install pillow-heif"

    def versions(self) -> dict:
        import pillow_heif

        info = pillow_heif.libheif_info()
        return {"pillow_heif": pillow_heif.__version__, "libheif": info.get("libheif"), "x265": info.get("HEIF")}

    def _fmt(self, img: np.ndarray) -> str:
        return "grey" if img.ndim == 2 else self.chroma

    def _heif_bytes(self, img: np.ndarray, qp: int, fmt: str) -> bytes:
        import pillow_heif

        h, w = img.shape[:2]
        f = pillow_heif.from_bytes("L" if img.ndim == 2 else "RGB", (w, h), img.tobytes())
        kw = {} if fmt == "grey" else {"chroma": fmt}

        def run():
            buf = io.BytesIO()
            f.save(buf, enc_params={"x265:qp": str(qp), "x265:pools": "none", "x265:frame-threads": "1"}, **kw)
            return buf.getvalue()

        return self._serial_first("encode", run)

    def _template(self, padded_shape: tuple, fmt: str) -> _Template:
        key = (padded_shape, fmt)
        with self._tlock:
            t = self._templates.get(key)
        if t is None:
            t = _Template(self._heif_bytes(np.full(padded_shape, 128, np.uint8), 51, fmt))
            with self._tlock:
                self._templates[key] = t
        return t

    def _header(self, shape: tuple, fmt: str) -> bytes:
        return bytes([_CHROMA_IDC[fmt] << 4]) + ue7(shape[1]) + ue7(shape[0])

    def header_bytes(self, shape: tuple) -> int:
        """Bytes of header in every payload for an image of ``shape`` (H, W[, C])."""
        return len(self._header(shape, "grey"))

    def encode(self, img, quality):
        img = as_hwc(img)
        if quality not in self.qualities:
            raise ValueError(f"heif quality must be in 0..51, got {quality}")
        fmt = self._fmt(img)
        padded = pad_to(img, PAD)
        data = self._heif_bytes(padded, 51 - quality, fmt)
        t = self._template(padded.shape, fmt)
        content = data[t.mdat_off + 8:]
        (n,) = struct.unpack(">I", content[:4])
        nal = content[4:]
        if n != len(nal):
            raise RuntimeError(f"libheif output: expected one NAL unit in mdat, got {n} + {len(nal) - n} bytes")
        if t.rebuild(nal) != data:
            raise RuntimeError("libheif output differs from the receiver's container template "
                               "(parameter sets depend on the picture?)")
        return self._header(img.shape, fmt) + nal

    def decode(self, data, shape):
        shape = tuple(shape)
        fmt = "grey" if len(shape) == 2 else self.chroma
        header = self._header(shape, fmt)
        if len(data) <= len(header) + 2:
            raise DecodeError("payload shorter than header + NAL header")
        if data[0] != header[0]:
            raise DecodeError(f"format byte {data[0]:#04x}, expected {header[0]:#04x}")
        w, p = read_ue7(data, 1)
        h, p = read_ue7(data, p)
        if (h, w) != shape[:2]:
            raise DecodeError(f"header says {w} x {h}, expected {shape[1]} x {shape[0]}")
        padded = tuple(s + (-s) % PAD for s in shape[:2]) + tuple(shape[2:])
        stream = self._template(padded, fmt).rebuild(data[p:])
        import pillow_heif

        try:
            arr = self._serial_first(
                "decode", lambda: np.asarray(pillow_heif.open_heif(io.BytesIO(stream), convert_hdr_to_8bit=True)))
        except Exception as e:  # libde265 errors surface as several exception types
            raise DecodeError(f"libde265: {e}") from None
        return check_decoded(arr, shape)
