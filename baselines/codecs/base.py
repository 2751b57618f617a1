"""One interface for the classical image codecs of the SSCC baseline (CompressAI codec-bench style).

A :class:`Codec` turns a ``uint8`` image (``H x W`` grey or ``H x W x C`` colour) into the bytes a link must
carry (``encode``) and back (``decode``), at an integer ``quality`` in ``codec.qualities`` (ascending =
better). What is counted is the bitstream the receiver needs, nothing else: each codec strips what its
receiver can rebuild from what it already knows (image shape, colour mode, codec settings) and documents it.

Framing rule shared by every codec: **a payload never ends with a zero byte**, so the link may zero-pad it
to a fixed budget and the receiver finds its end by stripping trailing zero bytes (no length field needed).
JPEG and JPEG 2000 end with a marker (``FFD9``), HEVC NAL units with the RBSP stop bit; a quality whose
payload would end with ``00`` anyway is treated as not fitting any budget.

Rate control (:meth:`Codec.encode_at_budget`): the highest quality whose payload fits ``max_bytes``, found
exactly (the size-quality curve is not monotone) from a per-image table of payload sizes at every quality.
Tables are memoised in memory and, through :class:`RateTableCache`, on disk (one JSON file per codec
configuration, keyed by a hash of the image), so a sweep over many budgets encodes each image once per
quality, and later runs not at all.
"""
from __future__ import annotations

import abc
import collections
import hashlib
import json
import os
import threading
from pathlib import Path

import numpy as np


class DecodeError(Exception):
    """The received bytes are not a decodable stream for this codec and image shape."""


def strip_padding(data: bytes) -> bytes:
    """Remove the zero padding after a payload (payloads never end with a zero byte)."""
    return data.rstrip(b"\0")


def ue7(value: int) -> bytes:
    """BPG's ``ue7`` variable-length unsigned integer: 7 bits per byte, most significant first, MSB = more."""
    if value < 0:
        raise ValueError(f"ue7 cannot code {value}")
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def read_ue7(data: bytes, pos: int) -> tuple[int, int]:
    """Parse a ``ue7`` at ``pos``; returns (value, next position). Raises DecodeError on truncation."""
    value = 0
    for i in range(5):
        if pos + i >= len(data):
            raise DecodeError("truncated header")
        b = data[pos + i]
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value, pos + i + 1
    raise DecodeError("ue7 field too long")


def image_key(img: np.ndarray) -> str:
    """Content hash of a uint8 image (shape included)."""
    h = hashlib.sha1(repr(img.shape).encode())
    h.update(np.ascontiguousarray(img).tobytes())
    return h.hexdigest()


class RateTableCache:
    """Payload-size-per-quality tables, in memory and (optionally) in ``folder/<codec key>.json``."""

    _memory: dict[str, dict[str, list[int]]] = {}  # process-wide: shared by every block of a run
    _lock = threading.Lock()

    def __init__(self, folder: str | Path | None):
        self.folder = Path(folder) if folder else None
        self._dirty: set[str] = set()

    def _table(self, codec_key: str) -> dict[str, list[int]]:
        with self._lock:
            if codec_key not in self._memory:
                tables: dict[str, list[int]] = {}
                f = self._file(codec_key)
                if f is not None and f.is_file():
                    try:
                        tables = {k: list(map(int, v)) for k, v in json.loads(f.read_text()).items()}
                    except (ValueError, OSError, AttributeError):
                        tables = {}  # unreadable cache: recompute
                self._memory[codec_key] = tables
            return self._memory[codec_key]

    def _file(self, codec_key: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{codec_key}.json"

    def get(self, codec_key: str, img_key: str) -> list[int] | None:
        return self._table(codec_key).get(img_key)

    def put(self, codec_key: str, img_key: str, sizes: list[int]) -> None:
        t = self._table(codec_key)
        with self._lock:
            t[img_key] = sizes
            self._dirty.add(codec_key)

    def flush(self) -> None:
        """Write new tables to disk (atomic replace; merged with what another process wrote meanwhile)."""
        if self.folder is None:
            self._dirty.clear()
            return
        with self._lock:
            for codec_key in list(self._dirty):
                f = self._file(codec_key)
                f.parent.mkdir(parents=True, exist_ok=True)
                merged = {}
                if f.is_file():
                    try:
                        merged = json.loads(f.read_text())
                    except (ValueError, OSError):
                        merged = {}
                merged.update(self._memory[codec_key])
                tmp = f.with_name(f".{f.name}.{os.getpid()}.{threading.get_ident()}.tmp")
                tmp.write_text(json.dumps(merged, separators=(",", ":")))
                os.replace(tmp, f)
            self._dirty.clear()


class _PayloadLRU:
    """Recently encoded payloads (bounded in bytes), so choosing a quality from a table rarely re-encodes."""

    def __init__(self, max_bytes: int = 64 << 20):
        self.max_bytes = max_bytes
        self.data: collections.OrderedDict = collections.OrderedDict()
        self.size = 0
        self.lock = threading.Lock()

    def get(self, key):
        with self.lock:
            v = self.data.get(key)
            if v is not None:
                self.data.move_to_end(key)
            return v

    def put(self, key, value: bytes):
        with self.lock:
            if key in self.data:
                return
            self.data[key] = value
            self.size += len(value)
            while self.size > self.max_bytes and self.data:
                _, old = self.data.popitem(last=False)
                self.size -= len(old)


class Codec(abc.ABC):
    """An image codec behind one interface. Subclasses set ``name``/``qualities`` and implement the rest."""

    name: str = ""
    qualities: range = range(0)  # integer quality levels, ascending = better
    NO_FIT = 1 << 62  # table entry of a quality that cannot be framed (payload ends with a zero byte)

    def __init__(self, chroma: str = "444"):
        if chroma not in ("444", "420"):
            raise ValueError(f"chroma must be '444' or '420', got {chroma!r}")
        self.chroma = chroma

    _lrus: dict[str, _PayloadLRU] = {}  # per codec configuration, shared by every instance in the process

    @property
    def _payloads(self) -> _PayloadLRU:
        return self._lrus.setdefault(self.key(), _PayloadLRU())

    # -- to implement ---------------------------------------------------------------------------
    @classmethod
    def available(cls) -> bool:
        """Whether the codec's encoder/decoder can run here."""
        return True

    @classmethod
    def unavailable_reason(cls) -> str:
        return ""

    @abc.abstractmethod
    def encode(self, img: np.ndarray, quality: int) -> bytes:
        """``img`` uint8 ``H x W`` or ``H x W x C`` -> the payload bytes the link must carry."""

    @abc.abstractmethod
    def decode(self, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
        """Payload (padding stripped) -> uint8 image of ``shape``; raises DecodeError if undecodable."""

    def settings(self) -> dict:
        """Everything besides the image and quality that changes the payload (part of cache keys)."""
        return {"chroma": self.chroma}

    # -- shared ---------------------------------------------------------------------------------
    def key(self) -> str:
        """Hash naming this codec configuration and the library versions behind it."""
        if getattr(self, "_key", None) is None:
            self._key = hashlib.sha1(json.dumps([self.name, self.settings(), self.versions()], sort_keys=True)
                                     .encode()).hexdigest()[:16]
        return self._key

    def versions(self) -> dict:
        return {}

    def framed(self, img: np.ndarray, quality: int) -> bytes | None:
        """The payload at ``quality`` (memoised), or None if it cannot be zero-padded unambiguously."""
        k = (image_key(img), int(quality))
        data = self._payloads.get(k)
        if data is None:
            data = self.encode(img, int(quality))
            self._payloads.put(k, data)
        return data if data and data[-1] != 0 else None

    def size_table(self, img: np.ndarray, cache: RateTableCache | None = None) -> list[int]:
        """Payload bytes at every quality of ``self.qualities`` (NO_FIT where a payload cannot be framed)."""
        ik = image_key(img)
        if cache is not None:
            sizes = cache.get(self.key(), ik)
            if sizes is not None and len(sizes) == len(self.qualities):
                return sizes
        sizes = []
        for q in self.qualities:
            data = self.framed(img, q)
            sizes.append(len(data) if data is not None else self.NO_FIT)
        if cache is not None:
            cache.put(self.key(), ik, sizes)
        return sizes

    def encode_at_budget(self, img: np.ndarray, max_bytes: int,
                         cache: RateTableCache | None = None) -> tuple[bytes, int] | None:
        """Rate control: (payload, quality) at the highest quality whose payload has <= max_bytes bytes;
        None when even the lowest quality does not fit."""
        sizes = self.size_table(img, cache)
        best = None
        for q, s in zip(self.qualities, sizes):
            if s <= max_bytes:
                best = q
        if best is None:
            return None
        data = self.framed(img, best)
        if data is None or len(data) > max_bytes:  # cached table from another library build: recompute
            raise RuntimeError(f"{self.name}: payload size at quality {best} differs from its rate table")
        return data, best


def as_hwc(img: np.ndarray) -> np.ndarray:
    """uint8 ``H x W`` (grey) or ``H x W x 3`` (colour); a single-channel ``H x W x 1`` becomes ``H x W``."""
    if img.dtype != np.uint8:
        raise TypeError(f"codecs take uint8 images, got {img.dtype}")
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3):
        return np.ascontiguousarray(img)
    raise ValueError(f"codecs take H x W grey or H x W x 3 colour images, got shape {img.shape}")


def pad_to(img: np.ndarray, multiple: int) -> np.ndarray:
    """Edge-replicate the bottom/right borders up to a multiple of ``multiple`` (cropped back after decoding)."""
    h, w = img.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not ph and not pw:
        return img
    pad = ((0, ph), (0, pw)) + (((0, 0),) if img.ndim == 3 else ())
    return np.pad(img, pad, mode="edge")


def check_decoded(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Crop a decoded array to ``shape`` (H, W[, C]); DecodeError if it is smaller or has other channels."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != len(shape) or arr.shape[0] < shape[0] or arr.shape[1] < shape[1] or arr.shape[2:] != tuple(shape[2:]):
        raise DecodeError(f"decoded image has shape {arr.shape}, expected {tuple(shape)}")
    return np.ascontiguousarray(arr[: shape[0], : shape[1]]).astype(np.uint8)
