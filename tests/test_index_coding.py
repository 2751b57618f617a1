"""Exact index coding, value quantization and the paper's bandwidth formula (Eq. 15, Table III)."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from linksim.quantizers.index_coding import (
    CombinationCoder, ValueQuantizer, index_bits, payload_bits, scatter_dense, select_fixed, select_maxamp,
)

FAST = settings(max_examples=25, deadline=None, derandomize=True)


# ---------------------------------------------------------------- index_bits / payload_bits
@pytest.mark.parametrize("N,K,bits", [
    (2048, 3, 31), (48, 3, 15), (48, 48, 0), (10, 0, 0), (1, 1, 0), (2, 1, 1), (4, 1, 2), (5, 1, 3),
    (4, 2, 3),  # C = 6
    (2048, 1, 11), (2048, 2048, 0),
])
def test_index_bits_known(N, K, bits):
    assert index_bits(N, K) == bits


def test_paper_table3_bandwidths():
    assert payload_bits(2048, 3, 1) == 34      # MaxAmp(K=3), n=1
    assert payload_bits(48, 3, 1) == 18        # MaxProAmp(K=3) within N1 = 48
    assert payload_bits(48, 48, 32) == 1536    # MaxPro(K=48), float32 values


@given(st.integers(0, 3000), st.data())
@FAST
def test_index_bits_is_exact_ceil_log2(N, data):
    K = data.draw(st.integers(0, min(N, 80)))
    c = math.comb(N, K)
    b = index_bits(N, K)
    assert 2 ** b >= c and (b == 0 or 2 ** (b - 1) < c)


def test_index_bits_rejects_bad_args():
    with pytest.raises(ValueError):
        index_bits(3, 4)
    with pytest.raises(ValueError):
        index_bits(3, -1)


# ---------------------------------------------------------------- CombinationCoder
def _random_sets(rng, N, K, B):
    return np.stack([rng.permutation(N)[:K] for _ in range(B)]) if K else np.zeros((B, 0), np.int64)


@pytest.mark.parametrize("N,K", [(2048, 3), (512, 48), (2048, 48), (48, 3), (7, 7), (9, 0), (100, 99), (64, 32)])
def test_combination_round_trip(N, K):
    rng = np.random.default_rng(N * 1000 + K)
    coder = CombinationCoder(N, K)
    idx = _random_sets(rng, N, K, 200)
    bits = coder.encode(idx)
    assert bits.shape == (200, index_bits(N, K)) and bits.dtype == np.uint8
    assert set(np.unique(bits)) <= {0, 1}
    dec, valid = coder.decode(bits)
    assert valid.all()
    np.testing.assert_array_equal(dec, np.sort(idx, axis=1))


@given(st.integers(1, 70), st.data())
@FAST
def test_combination_round_trip_property(N, data):
    K = data.draw(st.integers(0, N))
    rows = data.draw(st.lists(st.permutations(range(N)), min_size=1, max_size=4))
    idx = np.array([r[:K] for r in rows], dtype=np.int64).reshape(len(rows), K)
    coder = CombinationCoder(N, K)
    dec, valid = coder.decode(coder.encode(idx))
    assert valid.all()
    np.testing.assert_array_equal(dec, np.sort(idx, axis=1))


def test_combination_ranks_are_a_bijection_small():
    """All C(7, 3) subsets get distinct ranks 0..34 and every rank decodes to its subset."""
    from itertools import combinations
    coder = CombinationCoder(7, 3)
    subsets = np.array(list(combinations(range(7), 3)))
    bits = coder.encode(subsets)
    ranks = bits @ (1 << np.arange(coder.nbits - 1, -1, -1))
    assert sorted(ranks.tolist()) == list(range(35))
    dec, valid = coder.decode(bits)
    assert valid.all() and (dec == subsets).all()


def test_combination_order_invariant_and_known_rank():
    coder = CombinationCoder(2048, 3)
    a = coder.encode(np.array([[5, 1, 2000]]))
    b = coder.encode(np.array([[2000, 5, 1]]))
    np.testing.assert_array_equal(a, b)
    rank = int("".join(map(str, a[0])), 2)
    assert rank == math.comb(1, 1) + math.comb(5, 2) + math.comb(2000, 3)


@pytest.mark.parametrize("N,K", [(48, 3), (512, 48), (2048, 3), (2048, 48), (6, 3)])
def test_invalid_ranks_detected(N, K):
    coder = CombinationCoder(N, K)
    nb = coder.nbits
    total = math.comb(N, K)
    assert 2 ** nb > total  # there are unused words for these sizes
    ranks = [total, 2 ** nb - 1, total - 1, 0]
    bits = np.array([[int(c) for c in format(r, f"0{nb}b")] for r in ranks], dtype=np.uint8)
    dec, valid = coder.decode(bits)
    assert valid.tolist() == [False, False, True, True]
    assert (dec[:2] == -1).all()
    np.testing.assert_array_equal(dec[2], np.arange(N - K, N))
    np.testing.assert_array_equal(dec[3], np.arange(K))


def test_random_bit_words_decode_to_valid_sets_or_flag():
    rng = np.random.default_rng(1)
    for N, K in [(48, 3), (512, 48)]:
        coder = CombinationCoder(N, K)
        bits = rng.integers(0, 2, (300, coder.nbits)).astype(np.uint8)
        dec, valid = coder.decode(bits)
        assert 0 < valid.sum() < 300 or N == 48
        good = dec[valid]
        assert ((good >= 0) & (good < N)).all() and (np.diff(good, axis=1) > 0).all()
        np.testing.assert_array_equal(coder.encode(good), bits[valid])  # unique decodability
        assert (dec[~valid] == -1).all()


def test_float_bits_accepted_and_bad_input_rejected():
    coder = CombinationCoder(48, 3)
    bits = coder.encode(np.array([[1, 2, 3]]))
    dec, valid = coder.decode(bits.astype(np.float32))
    assert valid.all() and dec.tolist() == [[1, 2, 3]]
    with pytest.raises(ValueError):
        coder.encode(np.array([[1, 1, 2]]))
    with pytest.raises(ValueError):
        coder.encode(np.array([[1, 2, 48]]))
    with pytest.raises(ValueError):
        coder.decode(np.zeros((1, coder.nbits + 1)))


# ---------------------------------------------------------------- ValueQuantizer
def _sparse_features(rng, N=3000, d=6):
    X = rng.gamma(2.0, 1.0, (N, d)) * (rng.random((N, d)) < 0.6)
    X[:, 5] = 0.0
    X[:3, 5] = [1.0, 2.0, 3.0]  # too few active values -> global fallback
    return X


@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_value_quantizer_levels_and_round_trip(n):
    rng = np.random.default_rng(n)
    X = _sparse_features(rng)
    q = ValueQuantizer(n).fit(X)
    assert q.levels.shape == (6, 2 ** n)
    assert q.fallback.tolist() == [False] * 5 + [True]
    B, K = 50, 4
    feat = rng.integers(0, 6, (B, K))
    vals = rng.gamma(2.0, 1.0, (B, K))
    bits = q.encode(vals, feat)
    assert bits.shape == (B, K * n) and set(np.unique(bits)) <= {0, 1}
    rec = q.decode(bits, feat)
    assert rec.dtype == np.float32 and rec.shape == (B, K)
    # reconstruction is one of the feature's levels, and the level of the bin the value fell in
    for b in range(B):
        for k in range(K):
            f = feat[b, k]
            code = np.searchsorted(q.edges[f], vals[b, k], side="right")
            assert rec[b, k] == pytest.approx(q.levels[f, code], rel=1e-6)
    # distortion shrinks with more bits (on the training distribution)
    act = X[:, 0][X[:, 0] > 0][:, None]
    err = np.mean((q.decode(q.encode(act, np.zeros_like(act, int)), np.zeros_like(act, int)) - act[:, :]) ** 2)
    assert err < np.var(act) * (0.5 if n == 1 else 0.2)


def test_value_quantizer_conditional_means_one_bit():
    X = np.array([[1.0], [2.0], [3.0], [4.0], [0.0]] * 10)
    q = ValueQuantizer(1, min_count=4).fit(X)
    np.testing.assert_allclose(q.edges[0], [2.5])
    np.testing.assert_allclose(q.levels[0], [1.5, 3.5])


def test_value_quantizer_include_zero():
    X = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]] * 10)
    q = ValueQuantizer(2, include_zero=True, min_count=4).fit(X)
    vals = np.array([[0.0, 1.0, 4.0]])
    feat = np.zeros((1, 3), int)
    rec = q.decode(q.encode(vals, feat), feat)
    # code 0 = exact zero; 3 quantile bins on {1,2,3,4}: edges 2, 3 -> levels 1, 2, 3.5
    np.testing.assert_allclose(q.levels[0], [0.0, 1.0, 2.0, 3.5])
    np.testing.assert_allclose(rec, [[0.0, 1.0, 3.5]])


def test_value_quantizer_float32_bit_exact():
    rng = np.random.default_rng(3)
    vals = rng.standard_normal((20, 48)).astype(np.float32)
    vals[0, :4] = [0.0, -0.0, np.inf, 1e-40]
    feat = np.tile(np.arange(48), (20, 1))
    q = ValueQuantizer(32)
    bits = q.encode(vals, feat)
    assert bits.shape == (20, 48 * 32)
    rec = q.decode(bits, feat)
    np.testing.assert_array_equal(rec.view(np.uint32), vals.view(np.uint32))
    # first value's bits are its IEEE-754 word, MSB first
    assert "".join(map(str, bits[1, :32])) == format(int(vals[1, 0].view(np.uint32)), "032b")


def test_value_quantizer_zero_bits_and_invalid_index():
    X = np.array([[2.0, 0.0], [4.0, 1.0]] * 20)
    q = ValueQuantizer(0, min_count=2).fit(X)
    feat = np.array([[0, 1], [-1, 1]])
    bits = q.encode(np.ones((2, 2)), np.maximum(feat, 0))
    assert bits.shape == (2, 0)
    rec = q.decode(bits, feat)
    np.testing.assert_allclose(rec, [[3.0, 1.0], [0.0, 1.0]])


def test_value_quantizer_state_round_trip():
    rng = np.random.default_rng(4)
    X = _sparse_features(rng)
    q = ValueQuantizer(3, include_zero=True).fit(X)
    st_ = q.state()
    for v in st_.values():
        assert isinstance(v, (int, bool, list, np.ndarray))
    q2 = ValueQuantizer.from_state(st_)
    feat = rng.integers(0, 6, (10, 3))
    vals = X[:10, :3]
    np.testing.assert_array_equal(q.encode(vals, feat), q2.encode(vals, feat))
    np.testing.assert_array_equal(q.decode(q.encode(vals, feat), feat), q2.decode(q.encode(vals, feat), feat))
    with pytest.raises(RuntimeError):
        ValueQuantizer(2).encode(vals, feat)


# ---------------------------------------------------------------- selection helpers, end to end
def test_maxamp_maxpro_end_to_end():
    rng = np.random.default_rng(5)
    N, K, n = 64, 3, 32
    X = (rng.random((40, N)) * (rng.random((40, N)) < 0.3)).astype(np.float32)
    idx, vals = select_maxamp(X, K)
    assert (np.diff(idx, axis=1) > 0).all()
    np.testing.assert_array_equal(np.sort(vals, axis=1)[:, ::-1], -np.sort(-X, axis=1)[:, :K])
    coder, q = CombinationCoder(N, K), ValueQuantizer(n)
    bits = np.concatenate([coder.encode(idx), q.encode(vals, idx)], axis=1)
    assert bits.shape[1] == payload_bits(N, K, n)
    idx2, valid = coder.decode(bits[:, :coder.nbits])
    vals2 = q.decode(bits[:, coder.nbits:], idx2)
    dense = scatter_dense(idx2, vals2, N)
    top = scatter_dense(idx, vals, N)
    assert valid.all() and np.array_equal(dense, top)

    S = np.array([9, 3, 40])
    sidx, svals = select_fixed(X, S)
    assert sidx.tolist()[0] == [3, 9, 40] and np.array_equal(svals, X[:, [3, 9, 40]])


# ---------------------------------------------------------------- issue 17: exact edges, messages, dtypes
from linksim.quantizers.index_coding import _bits_to_ints, _check_bits, _ints_to_bits  # noqa: E402


def test_argument_errors_have_exact_messages():
    with pytest.raises(ValueError, match=r"^need 0 <= K <= N, got N=3, K=4$"):
        index_bits(3, 4)
    with pytest.raises(ValueError, match=r"^need 0 <= K <= N, got N=-1, K=0$"):
        index_bits(-1, 0)
    assert payload_bits(48, 3, 0) == 15  # n = 0 is allowed: the index word only
    with pytest.raises(ValueError, match=r"^n must be >= 0$"):
        payload_bits(48, 3, -1)


def test_int_bit_packing_helpers():
    assert _ints_to_bits([5, 0, 511], 9).tolist() == [[0, 0, 0, 0, 0, 0, 1, 0, 1], [0] * 9, [1] * 9]
    assert _ints_to_bits([1, 0], 1).tolist() == [[1], [0]]
    assert _ints_to_bits([200], 8).tolist() == [[1, 1, 0, 0, 1, 0, 0, 0]]
    z = _ints_to_bits([3, 4], 0)
    assert z.shape == (2, 0) and z.dtype == np.uint8
    assert _ints_to_bits([2 ** 70 + 1], 71)[0, [0, 70]].tolist() == [1, 1]  # beyond int64
    assert _bits_to_ints(np.zeros((3, 0), np.uint8)) == [0, 0, 0]
    assert _bits_to_ints(np.array([[1], [0]])) == [1, 0]
    assert _bits_to_ints(np.array([[0, 0, 0, 0, 0, 0, 1, 0, 1]])) == [5]
    big = _bits_to_ints(_ints_to_bits([2 ** 70 + 5], 71))
    assert big == [2 ** 70 + 5] and type(big[0]) is int


def test_check_bits_shape_threshold_and_dtype():
    with pytest.raises(ValueError, match=r"^bits must be \[B, 3\], got \(2, 4\)$"):
        _check_bits(np.zeros((2, 4)), 3)
    with pytest.raises(ValueError, match=r"^bits must be \[B, 3\], got \(2, 3, 1\)$"):
        _check_bits(np.zeros((2, 3, 1)), 3)
    out = _check_bits(np.array([[0.5, 0.51, 0.7, 0.2]], np.float32), 4)
    assert out.tolist() == [[0, 1, 1, 0]] and out.dtype == np.uint8  # 0.5 is a zero
    ints = _check_bits(np.array([[1, 0, 1]], np.int64), 3)
    assert ints.tolist() == [[1, 0, 1]] and ints.dtype == np.uint8


def test_combination_coder_uses_int64_below_2_62_and_python_ints_above():
    c = CombinationCoder(64, 32)  # C(64, 32) ~ 0.40 * 2**62
    assert c.fast and c._tab.dtype == np.int64 and c._tab.shape == (33, 64)
    slow = CombinationCoder(66, 33)  # every C(65, j) < 2**62 but C(66, 33) ~ 1.57 * 2**62
    assert not slow.fast and slow._tab.dtype == object and slow._tab.shape == (34, 66)
    assert slow.nbits == 63 and slow.total == math.comb(66, 33)
    assert not CombinationCoder(2048, 48).fast and CombinationCoder(2048, 3).fast
    top = np.arange(33, 66)[None, :]  # the largest subset has rank C(66, 33) - 1
    bits = slow.encode(top)
    assert int("".join(map(str, bits[0])), 2) == slow.total - 1
    over = np.array([[int(ch) for ch in format(r, "063b")] for r in (slow.total, slow.total - 1, 0)])
    dec, valid = slow.decode(over)
    assert valid.tolist() == [False, True, True] and dec.dtype == np.int64
    assert dec.tolist() == [[-1] * 33, list(range(33, 66)), list(range(33))]
    assert repr(slow) == "CombinationCoder(N=66, K=33, nbits=63)"


def test_combination_coder_degenerate_sizes():
    empty = CombinationCoder(0, 0)
    assert empty.nbits == 0 and empty.total == 1 and empty.fast
    idx, valid = empty.decode(np.zeros((2, 0)))
    assert idx.shape == (2, 0) and valid.tolist() == [True, True] and valid.dtype == bool
    one = CombinationCoder(2, 1)  # one bit: the index itself
    assert one.encode(np.array([[1], [0]])).tolist() == [[1], [0]]
    assert one.decode(np.array([[1], [0]]))[0].tolist() == [[1], [0]]
    full = CombinationCoder(5, 5)  # nothing to send
    assert full.encode(np.array([[4, 3, 2, 1, 0]])).shape == (1, 0)
    assert full.decode(np.zeros((1, 0)))[0].tolist() == [[0, 1, 2, 3, 4]]
    none = CombinationCoder(9, 0)
    assert none.encode(np.zeros((3, 0), int)).shape == (3, 0)
    idx, valid = none.decode(np.zeros((3, none.nbits)))
    assert idx.shape == (3, 0) and valid.dtype == bool and valid.all()


def test_combination_coder_rejects_bad_indices_with_exact_messages():
    coder = CombinationCoder(48, 3)
    with pytest.raises(ValueError, match=r"^idx must be \[B, 3\], got \(1, 2\)$"):
        coder.encode(np.array([[1, 2]]))
    with pytest.raises(ValueError, match=r"^idx must be \[B, 3\], got \(1, 3, 1\)$"):
        coder.encode(np.zeros((1, 3, 1), int))
    with pytest.raises(ValueError, match=r"^indices must lie in \[0, 48\)$"):
        coder.encode(np.array([[-1, 2, 3]]))
    with pytest.raises(ValueError, match=r"^indices must lie in \[0, 48\)$"):
        coder.encode(np.array([[0, 2, 48]]))
    with pytest.raises(ValueError, match=r"^indices within a row must be distinct$"):
        CombinationCoder(10, 2).encode(np.array([[1, 2], [3, 3]]))
    assert coder.encode(np.array([[0, 1, 47]])).shape == (1, 15)


def test_value_quantizer_parameter_range_and_defaults():
    assert ValueQuantizer(16).n_bits == 16 and ValueQuantizer(32).n_bits == 32
    for bad in (17, 31, -1, 33):
        with pytest.raises(ValueError, match=r"^n_bits must be in 0\.\.16 or 32$"):
            ValueQuantizer(bad)
    with pytest.raises(ValueError, match=r"^include_zero needs n_bits >= 1$"):
        ValueQuantizer(0, include_zero=True)
    assert ValueQuantizer(1, include_zero=True).include_zero is True
    assert ValueQuantizer(32, include_zero=True).include_zero is False  # float32 values: no reserved code
    assert [ValueQuantizer(n).min_count for n in (0, 1, 2, 3, 4)] == [16, 16, 16, 32, 64]
    assert ValueQuantizer(3, min_count=5).min_count == 5
    q = ValueQuantizer(3)
    assert not q.fitted and ValueQuantizer(32).fitted
    assert q.state() == {"n_bits": 3, "include_zero": False, "min_count": 32, "edges": None, "levels": None,
                         "fallback": None}


def test_value_quantizer_fit_of_bins_by_hand():
    # one bin per value: edges at the quartiles 1.75, 2.5, 3.25, levels = the values themselves
    q = ValueQuantizer(2, min_count=4).fit(np.array([[1.0], [2.0], [3.0], [4.0]]))
    np.testing.assert_allclose(q.edges[0], [1.75, 2.5, 3.25])
    np.testing.assert_allclose(q.levels[0], [1.0, 2.0, 3.0, 4.0])
    # every value at the lower edges: empty bins take their left edge, the last bin the mean
    q = ValueQuantizer(2, min_count=4).fit(np.array([[1.0], [1.0], [1.0], [1.0], [2.0]]))
    np.testing.assert_allclose(q.edges[0], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(q.levels[0], [1.0, 1.0, 1.0, 1.2])
    # one bit, empty lower bin: its level is the edge (1.0), not the mean of the values (1.25)
    q = ValueQuantizer(1, min_count=4).fit(np.array([[1.0], [1.0], [1.0], [2.0]]))
    np.testing.assert_allclose(q.edges[0], [1.0])
    np.testing.assert_allclose(q.levels[0], [1.0, 1.25])
    # zero bits: one level, the mean active value
    q = ValueQuantizer(0, min_count=1).fit(np.array([[1.0, 0.0], [2.0, 3.0], [0.0, 0.0]]))
    assert q.edges.shape == (2, 0) and q.levels.tolist() == [[1.5], [3.0]]


def test_value_quantizer_fit_fallback_threshold_dtypes_and_errors():
    X = np.zeros((6, 2))
    X[:4, 0] = [1.0, 2.0, 3.0, 4.0]  # exactly min_count active values: own levels
    X[:3, 1] = [10.0, 20.0, 30.0]    # one fewer: the pooled levels
    q = ValueQuantizer(1, min_count=4).fit(X)
    assert q.fallback.dtype == bool and q.fallback.tolist() == [False, True]
    np.testing.assert_allclose(q.levels[0], [1.5, 3.5])
    pooled = ValueQuantizer(1, min_count=1).fit(X[X != 0][:, None])
    np.testing.assert_allclose(q.levels[1], pooled.levels[0])
    np.testing.assert_allclose(q.edges[1], pooled.edges[0])
    allzero = ValueQuantizer(2, min_count=1).fit(np.zeros((5, 2)))  # no active value at all
    assert allzero.edges.tolist() == [[0.0] * 3] * 2 and allzero.levels.tolist() == [[0.0] * 4] * 2
    assert allzero.fallback.tolist() == [True, True]
    f32 = ValueQuantizer(1, min_count=1).fit(np.array([[0.1], [0.2]], np.float32))  # computed in float64
    assert f32.edges[0, 0] == (np.float64(np.float32(0.1)) + np.float64(np.float32(0.2))) / 2
    with pytest.raises(ValueError, match=r"^X must be \[N, d\]$"):
        ValueQuantizer(1).fit(np.zeros(4))
    q32 = ValueQuantizer(32).fit(np.zeros((3, 0)))
    assert q32.levels is None and q32.edges is None


def test_value_quantizer_encode_decode_checks_and_edges():
    q = ValueQuantizer(1, min_count=4).fit(np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]]))
    with pytest.raises(ValueError, match=r"^feat_idx must be \[B, K\]$"):
        q.encode(np.zeros(2), np.zeros(2, int))
    with pytest.raises(ValueError, match=r"^feature index beyond the fitted dimension$"):
        q.encode(np.zeros((1, 1)), np.array([[2]]))
    assert q.encode(np.zeros((1, 1)), np.array([[1]])).shape == (1, 1)
    with pytest.raises(ValueError, match=r"^values and feat_idx must have the same shape \[B, K\]$"):
        q.encode(np.zeros((1, 2)), np.array([[0]]))
    with pytest.raises(RuntimeError, match=r"^ValueQuantizer is not fitted$"):
        ValueQuantizer(2).decode(np.zeros((1, 2)), np.array([[0]]))
    with pytest.raises(ValueError, match=r"^bits and feat_idx differ in batch size$"):
        q.decode(np.zeros((2, 1)), np.array([[0]]))
    # a value on an edge (2.5) falls in the upper bin; float feature indices are converted
    bits = q.encode(np.array([[2.5, 2.49]]), np.array([[0.0, 1.0]]))
    assert bits.tolist() == [[1, 0]] and bits.dtype == np.uint8
    np.testing.assert_allclose(q.decode(bits, np.array([[0.0, 1.0]])), [[3.5, 1.5]])
    # empty batches and K = 0
    assert q.encode(np.zeros((0, 2)), np.zeros((0, 2), int)).shape == (0, 2)
    assert q.encode(np.zeros((3, 0)), np.zeros((3, 0), int)).shape == (3, 0)
    z = ValueQuantizer(0, min_count=1).fit(np.ones((2, 1))).encode(np.ones((2, 1)), np.zeros((2, 1), int))
    assert z.shape == (2, 0) and z.dtype == np.uint8


def test_value_quantizer_float32_from_float64_input():
    q = ValueQuantizer(32)
    v = np.array([[1.5, -0.1]])  # float64 in: the float32 words are sent
    bits = q.encode(v, np.zeros((1, 2), int))
    assert bits.shape == (1, 64)
    assert "".join(map(str, bits[0, :32])) == format(int(np.float32(1.5).view(np.uint32)), "032b")
    np.testing.assert_array_equal(q.decode(bits, np.array([[0, -1]])), np.array([[1.5, 0.0]], np.float32))


def test_value_quantizer_state_keeps_min_count_and_include_zero():
    X = np.array([[1.0], [2.0], [3.0], [4.0], [0.0]])
    q = ValueQuantizer(1, include_zero=False, min_count=5).fit(X)
    assert q.fallback.tolist() == [True]
    q2 = ValueQuantizer.from_state(q.state())
    assert (q2.n_bits, q2.include_zero, q2.min_count) == (1, False, 5)
    assert q2.fallback.dtype == bool and q2.fallback.tolist() == [True]
    np.testing.assert_array_equal(q2.levels, q.levels)
    np.testing.assert_array_equal(q2.edges, q.edges)
    assert ValueQuantizer.from_state(ValueQuantizer(2, True, 7).state()).levels is None


def test_select_maxamp_ties_bounds_and_messages():
    X = np.ones((2, 40))
    X[1, 30] = 2.0
    idx, vals = select_maxamp(X, 3)  # ties -> smaller index, also in long rows
    assert idx.tolist() == [[0, 1, 2], [0, 1, 30]] and idx.dtype == np.int64
    assert vals.tolist() == [[1.0, 1.0, 1.0], [1.0, 1.0, 2.0]]
    X = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    assert select_maxamp(X, 0)[0].shape == (2, 0)
    idx, vals = select_maxamp(X, 3)
    assert idx.tolist() == [[0, 1, 2]] * 2 and vals.tolist() == X.tolist()
    for bad in (-1, 4):
        with pytest.raises(ValueError, match=r"^need 0 <= K <= N$"):
            select_maxamp(X, bad)


def test_select_fixed_and_scatter_dense():
    X = np.arange(10.0).reshape(2, 5)
    idx, vals = select_fixed(X, [4, 0, 2])
    assert idx.tolist() == [[0, 2, 4]] * 2 and idx.dtype == np.int64 and vals.tolist() == [[0, 2, 4], [5, 7, 9]]
    d = scatter_dense(np.array([[0, -1, 3], [-1, -1, 1]]), np.array([[1.5, 9.0, 2.0], [7.0, 8.0, 3.0]]), 4)
    assert d.dtype == np.float32 and d.tolist() == [[1.5, 0.0, 0.0, 2.0], [0.0, 3.0, 0.0, 0.0]]
