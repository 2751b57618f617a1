"""Fast 5G LDPC decoder vs Sionna's LDPC5GDecoder (the reference) on small codes."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("numba")
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder  # noqa: E402

from linksim.link import fast_ldpc as fl  # noqa: E402
from linksim.cores import available_cores  # noqa: E402
from linksim.link.fast_ldpc import FastLDPC5GDecoder, make_decoder  # noqa: E402


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
                                     (60, 126, 6), (100, 120, None)])
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


def test_make_decoder_kinds():
    enc = LDPC5GEncoder(100, 300)
    assert isinstance(make_decoder(enc, "sionna", 5), LDPC5GDecoder)
    assert isinstance(make_decoder(enc, "fast", 5), FastLDPC5GDecoder)
    with pytest.raises(ValueError):
        make_decoder(enc, "nope", 5)
    with pytest.raises(TypeError):
        FastLDPC5GDecoder(object())


def test_concurrent_calls_from_python_threads():
    from concurrent.futures import ThreadPoolExecutor

    enc = LDPC5GEncoder(512, 1024)
    u, llr = _bpsk_logits(enc, 24, sigma=0.8, seed=9)
    dec = FastLDPC5GDecoder(enc, num_iter=20)
    want = dec(llr)
    with ThreadPoolExecutor(3) as ex:
        outs = list(ex.map(lambda _: dec(llr), range(3)))
    assert all(torch.equal(o, want) for o in outs)


# ---------------------------------------------------------------------------------------------------------
# the Python layer around the kernels: rate recovery, graph, argument checks, threading (mutmut's reach)
# ---------------------------------------------------------------------------------------------------------
# (100, 120) and (20, 22): rates above 0.83, where the trailing degree-1 parity nodes, not the punctured
# ones, set the pruned length (Sionna's prune_pcm); the others are punctured-length codes
CODES = [(100, 300, None), (512, 1024, 4), (20, 60, None), (1000, 2000, None), (60, 126, 6), (500, 600, None),
         (100, 120, None), (20, 22, None)]


@pytest.mark.parametrize("k,n,bps", CODES)
def test_pruned_code_and_graph_equal_sionnas(k, n, bps):
    enc = LDPC5GEncoder(k, n, num_bits_per_symbol=bps)
    ref = LDPC5GDecoder(enc, hard_out=True, num_iter=1)
    fast = FastLDPC5GDecoder(enc, num_iter=1)
    rr = fast._rr
    assert (rr.k, rr.n, rr.z, rr.k_ldpc, rr.n_ldpc) == (k, n, enc.z, enc.k_ldpc, enc.n_ldpc)
    assert rr.k_filler == enc.k_ldpc - k
    assert rr.n_pruned == ref._n_pruned and rr.m_pruned == ref._pcm.shape[0]
    assert fast.num_edges == ref._num_edges
    # the edges of the base graph, row block by row block, are the lifted parity-check matrix's
    z, pcm = rr.z, enc.pcm.tocsr()
    rows, cols = [], []
    for r in range(fast._row_zr.size):
        for e in range(fast._row_ptr[r], fast._row_ptr[r + 1]):
            c, s = int(fast._e_col[e]), int(fast._e_shift[e])
            for i in range(int(fast._row_zr[r])):  # check r z + i meets variable c z + (i + s) mod z
                rows.append(r * z + i)
                cols.append(c * z + (i + s) % z)
    assert fast._row_zr.sum() == rr.m_pruned and np.all(fast._row_zr[:-1] == z)
    keep = np.asarray(cols) < rr.n_pruned
    got = np.zeros((rr.m_pruned, fast._nv), np.int8)
    got[np.asarray(rows), np.asarray(cols)] = 1
    want = pcm[:rr.m_pruned, :rr.n_pruned].toarray()
    assert np.array_equal(got[:, :rr.n_pruned], want) and not got[:, rr.n_pruned:].any()
    assert keep.sum() == want.sum() == fast.num_edges
    assert fast._nv == -(-rr.n_pruned // z) * z
    for arr in (fast._row_ptr, fast._e_col, fast._e_shift, fast._row_zr):
        assert arr.dtype == np.int32


@pytest.mark.parametrize("k,n,bps", [(100, 300, None), (512, 1024, 4), (500, 600, None), (100, 120, None)])
def test_rate_recovery_by_hand(k, n, bps):
    """Channel logits -> internal LLRs, built index by index: de-interleave, 2Z punctured systematic bits
    (0), transmitted systematic bits, fillers (+llr_max), transmitted parity bits, the rest punctured (0);
    sign flipped and clipped to +-llr_max."""
    enc = LDPC5GEncoder(k, n, num_bits_per_symbol=bps)
    rr = FastLDPC5GDecoder(enc, llr_max=7.5)._rr
    rng = np.random.default_rng(11)
    llr = rng.uniform(-30, 30, (3, n)).astype(np.float32)
    llr[0, :4] = [100.0, -100.0, 7.5, -7.5]
    if bps:  # Sionna's output interleaver: transmitted position j carries codeword bit perm[j]
        deint = llr[:, enc.out_int_inv.numpy()]
    else:
        deint = llr
    want = np.zeros((3, rr.n_pruned + 5), np.float32)
    z = enc.z
    pos = 0
    for v in range(2 * z, enc.k_ldpc + (rr.n_pruned - enc.k_ldpc)):
        if k <= v < enc.k_ldpc:
            want[:, v] = 7.5
            continue
        if pos >= n:
            break
        want[:, v] = -min(max(float(deint[0, pos]), -7.5), 7.5), -min(max(float(deint[1, pos]), -7.5), 7.5), \
            -min(max(float(deint[2, pos]), -7.5), 7.5)
        pos += 1
    got = rr.to_internal(llr, rr.n_pruned + 5)
    assert got.dtype == np.float32 and got.shape == (3, rr.n_pruned + 5)
    assert np.array_equal(got, want)
    assert np.array_equal(rr.to_internal(llr), want[:, :rr.n_pruned])  # default width: the pruned code
    assert rr.llr_max == 7.5 and got.max() == 7.5 and got.min() == -7.5


def test_defaults_are_sionnas():
    enc = LDPC5GEncoder(100, 300)
    d = FastLDPC5GDecoder(enc)
    assert (d.num_iter, d.cn_update, d.schedule, d.early_stop, d.alpha, d.beta, d.num_threads) == \
        (20, "boxplus-phi", "flooding", True, 0.75, 0.5, None)
    assert d._rr.llr_max == 20.0 and d.encoder is enc and (d.k, d.n) == (100, 300)
    assert d.last_iterations is None
    m = make_decoder(enc)
    assert isinstance(m, FastLDPC5GDecoder) and m.num_iter == 20
    s = make_decoder(enc, "sionna")
    assert isinstance(s, LDPC5GDecoder) and s._num_iter == 20 and s._hard_out
    assert make_decoder(enc, "fast", 7, schedule="layered").schedule == "layered"


def test_argument_errors_name_the_argument():
    enc = LDPC5GEncoder(100, 300)
    with pytest.raises(ValueError, match=r"^cn_update must be one of \['boxplus', 'boxplus-phi', 'minsum', "
                                         r"'normalized-minsum', 'offset-minsum'\], got 'sum'$"):
        FastLDPC5GDecoder(enc, cn_update="sum")
    with pytest.raises(ValueError, match=r"^schedule must be one of \['flooding', 'layered'\], got 'serial'$"):
        FastLDPC5GDecoder(enc, schedule="serial")
    for bad in (-1, 1.5):
        with pytest.raises(ValueError, match="^num_iter must be a non-negative int$"):
            FastLDPC5GDecoder(enc, num_iter=bad)
    assert FastLDPC5GDecoder(enc, num_iter=0).num_iter == 0
    assert FastLDPC5GDecoder(enc, num_iter=3.0).num_iter == 3
    with pytest.raises(TypeError, match=r"^encoder must be a sionna\.phy\.fec\.ldpc\.LDPC5GEncoder$"):
        FastLDPC5GDecoder("LDPC5GEncoder(100, 300)")
    with pytest.raises(ValueError, match=r"^impl must be 'sionna' or 'fast', got 'ldpc'$"):
        make_decoder(enc, "ldpc")
    dec = FastLDPC5GDecoder(enc)
    with pytest.raises(ValueError, match=r"^last dimension of llr must be n=300, got shape \(4, 299\)$"):
        dec(torch.zeros(4, 299))
    with pytest.raises(ValueError, match=r"^last dimension of llr must be n=300, got shape \(\)$"):
        dec(np.float32(1.0))


def test_inputs_and_outputs_keep_type_shape_and_device():
    enc = LDPC5GEncoder(100, 300)
    u, llr = _bpsk_logits(enc, 6, sigma=0.6, seed=12)
    dec = FastLDPC5GDecoder(enc)
    arr, lead, dev = fl._as_numpy_2d(llr.double().reshape(3, 2, 300), 300)
    assert arr.dtype == np.float32 and arr.shape == (6, 300) and arr.flags.c_contiguous
    assert lead == (3, 2) and dev == torch.device("cpu")
    assert np.array_equal(arr, llr.numpy())
    arr, lead, dev = fl._as_numpy_2d(llr.numpy().astype(np.float64)[:, ::-1][:, ::-1], 300)
    assert arr.dtype == np.float32 and lead == (6,) and dev is None and arr.flags.c_contiguous
    out = dec(llr.double())  # float64 in: float32 0/1 out, as Sionna
    assert out.dtype == torch.float32 and torch.equal(out, u)
    out = dec(llr.numpy().astype(np.float64).tolist())
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and np.array_equal(out, u.numpy())
    assert fl._to_output(np.zeros((6, 100), np.float32), (2, 3), 100, None).shape == (2, 3, 100)


def test_decode_numpy_edge_cases_and_iteration_counts():
    enc = LDPC5GEncoder(100, 300)
    dec = FastLDPC5GDecoder(enc, num_iter=20)
    bits, iters = dec.decode_numpy(np.zeros((0, 300), np.float32))
    assert bits.shape == (0, 100) and iters.shape == (0,) and iters.dtype == np.int32
    u, llr = _bpsk_logits(enc, 40, sigma=1.05, seed=13)
    x = llr.numpy()
    bits0, it0 = dec.decode_numpy(x, num_iter=0)  # hard decision of the channel LLRs, no iteration
    z = enc.z  # the first 2Z info bits are punctured (LLR 0: decided 1, as Sionna); the rest sent first
    assert np.all(bits0[:, :2 * z] == 1) and not it0.any()
    assert np.array_equal(bits0[:, 2 * z:], (x[:, :100 - 2 * z] > 0).astype(np.float32))
    bits, iters = dec.decode_numpy(x)
    assert iters.dtype == np.int32 and iters.min() >= 1 and iters.max() <= 20
    assert len(set(iters.tolist())) > 2  # each codeword stops on its own syndrome
    full = FastLDPC5GDecoder(enc, num_iter=20, early_stop=False)
    _, it_full = full.decode_numpy(x)
    assert np.all(it_full == 20)
    dec(llr)
    assert np.array_equal(dec.last_iterations, iters)
    # 1, 2, 3 and 8 threads, with 1, 4 or many chunks per thread: the same decisions and iteration counts
    for t in (1, 2, 3, 8):
        b, i = FastLDPC5GDecoder(enc, num_iter=20, num_threads=t).decode_numpy(x)
        assert np.array_equal(b, bits) and np.array_equal(i, iters), t
        b, i = FastLDPC5GDecoder(enc, num_iter=20, num_threads=t).decode_numpy(x[:3])
        assert np.array_equal(b, bits[:3]) and np.array_equal(i, iters[:3]), t
    assert np.array_equal(bits, u.numpy()) is False  # a waterfall point: errors remain to be decided alike


def test_thread_pools_are_shared_per_size_and_reset_in_a_forked_child():
    import os

    assert available_cores() == len(os.sched_getaffinity(0))  # the decoder's default thread count
    p2 = fl._pool(2)
    assert fl._pool(2) is p2 and fl._pool(3) is not p2
    assert p2._max_workers == 2 and fl._pool(3)._max_workers == 3
    assert p2._thread_name_prefix.startswith("fast-ldpc")
    lock = fl._POOL_LOCK
    saved = dict(fl._POOLS)
    try:
        fl._forget_pools_in_child()
        assert fl._POOLS == {} and fl._POOL_LOCK is not lock
        assert fl._pool(2) is not p2
    finally:
        fl._POOLS.clear()
        fl._POOLS.update(saved)


def test_one_frame_and_one_iteration_are_decoded_as_sionna():
    enc = LDPC5GEncoder(100, 300)
    u, llr = _bpsk_logits(enc, 24, sigma=1.05, seed=14)
    dec = FastLDPC5GDecoder(enc, num_iter=20, early_stop=False)
    for f in range(3):  # a batch of one codeword
        assert torch.equal(dec(llr[f:f + 1]), LDPC5GDecoder(enc, hard_out=True, num_iter=20)(llr[f:f + 1]))
    ref1 = LDPC5GDecoder(enc, hard_out=True, num_iter=1)(llr)
    ref0 = LDPC5GDecoder(enc, hard_out=True, num_iter=0)(llr)
    assert not torch.equal(ref1, ref0)  # one iteration changes decisions here
    assert int((dec(llr, num_iter=1) != ref1).any(dim=1).sum()) <= 1


def test_layered_schedule_converges_in_fewer_iterations():
    enc = LDPC5GEncoder(512, 1024)
    u, llr = _bpsk_logits(enc, 48, sigma=0.8, seed=15)
    flood = FastLDPC5GDecoder(enc, num_iter=20)
    layer = FastLDPC5GDecoder(enc, num_iter=20, schedule="layered")
    assert _bler(layer(llr), u) <= _bler(flood(llr), u)
    # about half as many iterations (row blocks update in turn, each using the last ones' messages)
    assert layer.last_iterations.mean() < 0.75 * flood.last_iterations.mean()


def test_minsum_scaling_and_llr_max_reach_the_kernel():
    enc = LDPC5GEncoder(100, 300)
    u, llr = _bpsk_logits(enc, 64, sigma=0.95, seed=16)
    kw = {"num_iter": 10, "early_stop": False}
    plain = FastLDPC5GDecoder(enc, cn_update="minsum", **kw)
    unit = FastLDPC5GDecoder(enc, cn_update="normalized-minsum", alpha=1.0, **kw)
    scaled = FastLDPC5GDecoder(enc, cn_update="normalized-minsum", alpha=0.5, **kw)
    assert torch.equal(unit(llr), plain(llr))  # alpha = 1 is plain min-sum
    assert not torch.equal(scaled(llr), plain(llr))
    # llr_max clips the channel LLRs and, in min-sum, the v2c messages, as Sionna's llr_max
    ref = make_decoder(enc, "sionna", 10, cn_update="minsum", llr_max=3.0)(llr)
    out = FastLDPC5GDecoder(enc, cn_update="minsum", llr_max=3.0, **kw)(llr)
    assert int((ref != out).any(dim=1).sum()) <= 1
    assert int((out != plain(llr)).any(dim=1).sum()) >= 3


def test_without_numba_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(fl, "HAVE_NUMBA", False)
    with pytest.raises(ImportError, match=r"^FastLDPC5GDecoder needs numba, a core dependency of linksim "
                                          r"\(pip install numba\)$"):
        FastLDPC5GDecoder(LDPC5GEncoder(100, 300))
