"""Image codecs of the SSCC baseline: round trips, exact rate control, header bytes, caches, capacity."""
import io
import math
import struct

import numpy as np
import pytest

from baselines.codecs import DecodeError, RateTableCache, codec_class, strip_padding
from baselines.codecs.base import read_ue7, ue7
from baselines.sscc import capacity_bits_per_use


def synthetic(h=28, w=28, c=None, seed=0):
    """A deterministic image with smooth gradients, an edge and a little texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 80 + 100 * np.sin(xx / 5.0) * np.cos(yy / 7.0) + 60 * (xx > w // 2)
    if c is None:
        img = base + rng.normal(0, 6, (h, w))
    else:
        img = np.stack([base + 30 * k + rng.normal(0, 6, (h, w)) for k in range(c)], -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def psnr(a, b):
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-10))


CASES = [("heif", None), ("heif", 3), ("jpeg", None), ("jpeg", 3), ("jpeg2000", None), ("jpeg2000", 3)]


@pytest.mark.parametrize("name, c", CASES)
def test_round_trip_every_codec(name, c):
    codec = codec_class(name)()
    img = synthetic(28, 30, c)  # odd-ish size: exercises padding and cropping
    lo, hi = codec.qualities[0], codec.qualities[-1]
    p_lo, p_hi = codec.encode(img, lo), codec.encode(img, hi)
    assert len(p_lo) < len(p_hi) and p_lo[-1] != 0 and p_hi[-1] != 0
    # the link zero-pads; the receiver strips the padding
    rec = codec.decode(strip_padding(p_hi + bytes(17)), img.shape)
    assert rec.shape == img.shape and rec.dtype == np.uint8
    assert psnr(img, rec) > 40
    assert psnr(img, codec.decode(p_lo, img.shape)) < psnr(img, rec)


@pytest.mark.parametrize("name", ["heif", "jpeg", "jpeg2000"])
def test_rate_control_picks_highest_fitting_quality(name):
    codec = codec_class(name)()
    img = synthetic(seed=1)
    sizes = {q: len(codec.encode(img, q)) for q in codec.qualities}  # brute force
    for budget in sorted(set(sizes.values()))[::7] + [max(sizes.values()) + 5]:
        payload, q = codec.encode_at_budget(img, budget)
        assert len(payload) <= budget
        assert q == max(k for k, s in sizes.items() if s <= budget)
        assert payload == codec.encode(img, q)
    assert codec.encode_at_budget(img, min(sizes.values()) - 1) is None  # too small: nothing fits


def test_heif_payload_is_3_byte_header_plus_the_slice_nal_unit():
    import pillow_heif

    codec = codec_class("heif")()
    img = synthetic()
    assert codec.header_bytes(img.shape) == 3 and codec.header_bytes((200, 300)) == 5
    payload = codec.encode(img, 20)
    assert payload[0] == 0x00  # monochrome, 8 bit
    w, p = read_ue7(payload, 1)
    h, p = read_ue7(payload, p)
    assert (h, w, p) == (28, 28, 3)
    nal_type = (payload[3] >> 1) & 0x3F
    assert nal_type in (19, 20)  # IDR picture
    # the same NAL unit as in libheif's file, whose container costs hundreds of bytes more
    padded = np.pad(img, ((0, 4), (0, 4)), mode="edge")
    f = pillow_heif.from_bytes("L", (32, 32), padded.tobytes())
    buf = io.BytesIO()
    f.save(buf, enc_params={"x265:qp": "31", "x265:pools": "none", "x265:frame-threads": "1"})
    full = buf.getvalue()
    mdat = full.rfind(b"mdat")
    (n,) = struct.unpack(">I", full[mdat + 4:mdat + 8])
    assert full[mdat + 8:mdat + 8 + n] == payload[3:]
    assert len(full) - len(payload) > 300
    # colour 4:4:4
    assert codec.encode(synthetic(c=3), 20)[0] == 0x30


def test_ue7_matches_bpg():
    for v in (0, 1, 127, 128, 300, 16383, 16384, 2 ** 28):
        b = ue7(v)
        assert read_ue7(b, 0) == (v, len(b))
    assert ue7(28) == b"\x1c" and ue7(128) == b"\x81\x00"


@pytest.mark.parametrize("name", ["heif", "jpeg", "jpeg2000"])
def test_garbage_is_a_decode_error(name):
    codec = codec_class(name)()
    img = synthetic()
    good = codec.encode(img, codec.qualities[len(codec.qualities) // 2])
    rng = np.random.default_rng(0)
    bad = [b"", b"\x01", bytes(rng.integers(1, 256, 60, dtype=np.uint8)), good[: len(good) // 3]]
    if name == "heif":
        bad.append(b"\x30" + good[1:])  # wrong format byte
        bad.append(good[:1] + ue7(27) + good[2:])  # wrong size
    truncated = good[: len(good) // 3]
    for data in bad:
        if name == "heif" and data == truncated:
            # libde265 conceals a truncated slice: the rows decoded before the cut are the image's own (a
            # decoder returning zeros or noise fails this), the rest is concealed
            out = codec.decode(data, img.shape)
            assert out.shape == img.shape and out.dtype == np.uint8
            assert psnr(out[:9], img[:9]) > 20 and psnr(out, img) > psnr(np.zeros_like(img), img) + 3
            continue
        with pytest.raises(DecodeError):  # everything else is refused, never silently decoded
            codec.decode(data, img.shape)


def test_rate_tables_are_cached_on_disk(tmp_path):
    codec = codec_class("heif")()
    imgs = [synthetic(seed=s) for s in range(2)]
    cache = RateTableCache(tmp_path)
    tables = [codec.size_table(a, cache) for a in imgs]
    cache.flush()
    assert len(list(tmp_path.glob("*.json"))) == 1
    RateTableCache._memory.clear()  # a new process: only the disk copy is left
    fresh = codec_class("heif")()
    fresh.encode = lambda img, q: pytest.fail("table should come from the disk cache")
    assert [fresh.size_table(a, RateTableCache(tmp_path)) for a in imgs] == tables


def test_bpg_availability_follows_path(monkeypatch, tmp_path):
    bpg = codec_class("bpg")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert not bpg.available()
    assert "bpgenc" in bpg.unavailable_reason()


def test_capacity_formulas():
    assert capacity_bits_per_use(0.0) == pytest.approx(1.0)
    assert capacity_bits_per_use(10 * math.log10(3)) == pytest.approx(2.0)
    rng = np.random.default_rng(0)
    g = rng.exponential(1.0, 400_000)
    for snr_db in (0.0, 10.0, 20.0):
        snr = 10 ** (snr_db / 10)
        mc = np.mean(np.log2(1 + g * snr))
        assert capacity_bits_per_use(snr_db, "rayleigh") == pytest.approx(mc, rel=5e-3)
        assert capacity_bits_per_use(snr_db, "rayleigh") < capacity_bits_per_use(snr_db)  # Jensen
    # eps-outage: P(log2(1 + g SNR) < C_eps) = eps
    c01 = capacity_bits_per_use(10.0, "rayleigh", outage=0.1)
    assert np.mean(np.log2(1 + g * 10.0) < c01) == pytest.approx(0.1, abs=3e-3)
