"""Fast 5G LDPC decoder vs Sionna's LDPC5GDecoder (the reference) on small codes."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("numba")
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder  # noqa: E402

from linksim.link import fast_ldpc as fl  # noqa: E402
from linksim.link.fast_ldpc import FastLDPC5GDecoder, make_decoder, run_bench  # noqa: E402


def _bpsk_logits(enc, frames: int, sigma: float, seed: int):
    """Random info bits and their BPSK/AWGN logits log p(1)/p(0) (Sionna's convention)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.randint(0, 2, (frames, enc.k), generator=g).to(torch.float32)
    c = enc(u)
    y = (1.0 - 2.0 * c) + sigma * torch.randn(c.shape, generator=g)
    return u, -2.0 * y / sigma**2


def _bler(uh, u) -> float:
    return float((uh != u).any(dim=1).float().mean())


def _exact_boxplus(q: np.ndarray) -> np.ndarray:
    """Float64 sum-product check-node update of q [deg, Z], with Sionna's clamps on |q| and phi."""
    def phi(v):
        return -np.log(np.tanh(np.clip(v, fl._PHI_MIN, fl._PHI_MAX) / 2))

    p = phi(np.abs(q.astype(np.float64)))
    sg = np.where(q < 0, -1.0, 1.0)
    return sg.prod(axis=0) * sg * phi(p.sum(axis=0) - p)


def test_check_node_update_matches_exact_boxplus():
    rng = np.random.default_rng(0)
    for q in (rng.normal(2, 5, (10, 320)), rng.normal(0, 1, (6, 64)), rng.uniform(0, 1e-5, (8, 32))):
        q = q.astype(np.float32)
        r = np.zeros_like(q)
        fl._boxplus_rows(q, r)
        assert np.max(np.abs(r - _exact_boxplus(q))) < 1e-4
    # saturated messages: float32 resolution limits the accuracy (Sionna's own phi is worse there)
    q = (rng.uniform(8, 30, (10, 320)) * rng.choice([-1, 1], (10, 320))).astype(np.float32)
    r = np.zeros_like(q)
    fl._boxplus_rows(q, r)
    assert np.all(np.isfinite(r)) and np.all(np.abs(r) <= 16.7)
    assert np.all(np.sign(r) == np.sign(_exact_boxplus(q)))
    assert np.max(np.abs(r - _exact_boxplus(q))) < 1.0


@pytest.mark.parametrize("k,n", [(100, 300), (512, 1024)])
def test_high_snr_both_decoders_exact(k, n):
    enc = LDPC5GEncoder(k, n)
    u, llr = _bpsk_logits(enc, 16, sigma=0.45, seed=1)
    ref = LDPC5GDecoder(enc, hard_out=True, num_iter=20)(llr)
    fast = FastLDPC5GDecoder(enc, num_iter=20)
    out = fast(llr)
    assert out.shape == (16, k) and out.dtype == torch.float32
    assert torch.equal(ref, u)
    assert torch.equal(out, u)
    assert fast.last_iterations.max() < 20  # early stop kicked in


@pytest.mark.parametrize("k,n,sigma,frames", [(100, 300, 1.05, 200), (512, 1024, 0.86, 64)])
def test_mid_snr_bler_matches_reference(k, n, sigma, frames):
    enc = LDPC5GEncoder(k, n)
    u, llr = _bpsk_logits(enc, frames, sigma=sigma, seed=2)
    ref = LDPC5GDecoder(enc, hard_out=True, num_iter=20)(llr)
    out = make_decoder(enc, "fast", 20)(llr)
    b_ref, b_fast = _bler(ref, u), _bler(out, u)
    assert 0.05 < b_ref < 0.8, b_ref  # really a waterfall point
    # same algorithm on the same frames: the BLERs agree far inside the statistical spread
    sd = math.sqrt(b_ref * (1 - b_ref) / frames)
    assert abs(b_fast - b_ref) <= max(2 * sd, 2 / frames)
    assert int((ref != out).any(dim=1).sum()) <= max(2, frames // 50)
    # without early stopping it runs the reference's exact iterations
    out_noes = FastLDPC5GDecoder(enc, num_iter=20, early_stop=False)(llr)
    assert int((ref != out_noes).any(dim=1).sum()) <= max(1, frames // 100)


def test_sign_convention_all_zero_codeword():
    enc = LDPC5GEncoder(100, 300)
    dec = FastLDPC5GDecoder(enc)
    llr = torch.full((3, 300), -12.0)  # logit log p(1)/p(0) << 0: every bit is surely 0
    assert torch.equal(dec(llr), torch.zeros(3, 100))
    # the opposite sign is not a codeword of all ones; the decoder must not return zeros there
    assert not torch.equal(dec(-llr), torch.zeros(3, 100))


@pytest.mark.parametrize("k,n,bps", [(1000, 2000, None), (20, 60, None), (500, 600, None), (512, 1024, 4),
                                     (60, 126, 6)])
def test_rate_matching_and_fillers_match_reference(k, n, bps):
    enc = LDPC5GEncoder(k, n, num_bits_per_symbol=bps)
    ref_dec = LDPC5GDecoder(enc, hard_out=True, num_iter=10)
    fast = FastLDPC5GDecoder(enc, num_iter=10, early_stop=False)
    # noiseless: every code, filler and puncturing pattern decodes exactly
    g = torch.Generator().manual_seed(3)
    u = torch.randint(0, 2, (6, k), generator=g).to(torch.float32)
    llr = 6.0 * (2.0 * enc(u) - 1.0)
    assert torch.equal(fast(llr), u)
    # noisy: the same decisions as the reference, frame by frame
    u, llr = _bpsk_logits(enc, 16, sigma=0.8, seed=4)
    ref, out = ref_dec(llr), fast(llr)
    assert int((ref != out).any(dim=1).sum()) <= 1
    assert abs(_bler(ref, u) - _bler(out, u)) <= 1 / 16


def test_zero_iterations_and_shapes():
    enc = LDPC5GEncoder(100, 300)
    u, llr = _bpsk_logits(enc, 6, sigma=0.9, seed=5)
    ref0 = LDPC5GDecoder(enc, hard_out=True, num_iter=0)(llr)
    dec = FastLDPC5GDecoder(enc, num_iter=20)
    assert torch.equal(dec(llr, num_iter=0), ref0)
    out = dec(llr.reshape(2, 3, 300))
    assert out.shape == (2, 3, 100)
    assert torch.equal(out.reshape(6, 100), dec(llr))
    out_np = dec(llr.numpy())
    assert isinstance(out_np, np.ndarray) and out_np.shape == (6, 100)
    one = FastLDPC5GDecoder(enc, num_iter=20, num_threads=1)
    assert torch.equal(one(llr), dec(llr))
    with pytest.raises(ValueError):
        dec(torch.zeros(4, 299))


@pytest.mark.parametrize("kw", [{"schedule": "layered"}, {"cn_update": "normalized-minsum"},
                                {"cn_update": "offset-minsum", "schedule": "layered"},
                                {"cn_update": "normalized-minsum", "schedule": "layered"}])
def test_variants_decode_high_snr(kw):
    enc = LDPC5GEncoder(512, 1024)
    u, llr = _bpsk_logits(enc, 20, sigma=0.5, seed=6)
    dec = FastLDPC5GDecoder(enc, num_iter=20, **kw)
    assert torch.equal(dec(llr), u)
    # layered decoding must stay on the codeword once it has converged (no v2c clipping drift)
    dec.early_stop = False
    assert torch.equal(dec(llr), u)


@pytest.mark.parametrize("cn_update", ["minsum", "offset-minsum"])
def test_minsum_matches_sionna_minsum(cn_update):
    enc = LDPC5GEncoder(100, 300)
    u, llr = _bpsk_logits(enc, 24, sigma=0.95, seed=8)
    ref = make_decoder(enc, "sionna", 10, cn_update=cn_update)(llr)
    out = make_decoder(enc, "fast", 10, cn_update=cn_update, early_stop=False)(llr)
    assert int((ref != out).any(dim=1).sum()) <= 1


def test_ldpc_package_decoder():
    pytest.importorskip("ldpc")
    enc = LDPC5GEncoder(100, 300)
    u, llr = _bpsk_logits(enc, 20, sigma=0.5, seed=7)
    dec = make_decoder(enc, "ldpc", 20)
    assert torch.equal(dec(llr), u)


def test_make_decoder_kinds():
    enc = LDPC5GEncoder(100, 300)
    assert isinstance(make_decoder(enc, "sionna", 5), LDPC5GDecoder)
    assert isinstance(make_decoder(enc, "fast", 5), FastLDPC5GDecoder)
    with pytest.raises(ValueError):
        make_decoder(enc, "nope", 5)
    with pytest.raises(TypeError):
        FastLDPC5GDecoder(object())


def test_run_bench_tiny():
    res = run_bench(100, 300, 10, [0.0, 4.0], 8, bits_per_symbol=2, seed=0, decoders=("sionna", "fast"))
    assert res["reference"] == "sionna"
    for name in ("sionna", "fast"):
        r = res["decoders"][name]
        for key in ("mbps", "seconds", "bler", "ber", "avg_iters", "frames_differing_from_ref"):
            assert len(r[key]) == 2, key
        assert r["mbps_total"] > 0
        assert all(0.0 <= b <= 1.0 for b in r["bler"])
        assert r["bler"][1] == 0.0
    sp, dec = res["speedup"]["fast"], res["decoders"]
    # the speed-ups are the throughput ratios, and the compiled decoder is faster than Sionna's (~100x on
    # 2 cores; 3x leaves room for a loaded machine)
    assert sp["total"] == pytest.approx(dec["fast"]["mbps_total"] / dec["sionna"]["mbps_total"])
    assert sp["per_snr"] == pytest.approx([a / b for a, b in zip(dec["fast"]["mbps"], dec["sionna"]["mbps"])])
    assert sp["total"] > 3
    # the same frames decode to the same bits (0 dB: errors to correct; 4 dB: none left)
    assert dec["fast"]["frames_differing_from_ref"] == [0, 0] and dec["fast"]["bler"] == dec["sionna"]["bler"]
    assert dec["sionna"]["bler"][0] > 0


def test_concurrent_calls_from_python_threads():
    from concurrent.futures import ThreadPoolExecutor

    enc = LDPC5GEncoder(512, 1024)
    u, llr = _bpsk_logits(enc, 24, sigma=0.8, seed=9)
    dec = FastLDPC5GDecoder(enc, num_iter=20)
    want = dec(llr)
    with ThreadPoolExecutor(3) as ex:
        outs = list(ex.map(lambda _: dec(llr), range(3)))
    assert all(torch.equal(o, want) for o in outs)
