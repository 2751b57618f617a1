"""quantizers/codec.py (issue 17): bit layouts of every scheme by hand, fitting, invalid index words, state."""
import struct

import numpy as np
import pytest
import torch

from linksim.quantizers.codec import (FeatureCodec, SCHEMES, _bits_float, _bits_int, _float_bits, _int_bits, _np,
                                      _torch)


def f32_bits(v: float) -> list[float]:
    return [float(c) for c in format(struct.unpack(">I", struct.pack(">f", v))[0], "032b")]


def bitstr(s: str) -> list[float]:
    return [float(c) for c in s]


def test_int_and_float_bit_helpers():
    b = _int_bits(torch.tensor([[5, 2], [0, 7]]), 3)
    assert b.dtype == torch.float32 and b.tolist() == [bitstr("101010"), bitstr("000111")]
    assert _int_bits(torch.tensor([[-1]]), 32).tolist() == [[1.0] * 32]  # two's complement
    back = _bits_int(torch.tensor([[1.0, 0.5, 0.51, 0.0, 0.2, 0.9]]), 3)
    assert back.dtype == torch.int32 and back.tolist() == [[5, 1]]  # 0.5 is a zero
    x = torch.tensor([[1.0, -2.0], [0.15625, 3.0e38]])
    fb = _float_bits(x)
    assert fb.dtype == torch.float32 and fb.shape == (2, 64)
    assert fb[0].tolist() == f32_bits(1.0) + f32_bits(-2.0) and fb[1, :32].tolist() == f32_bits(0.15625)
    assert torch.equal(_bits_float(fb), x)
    soft = fb * 0.4 + 0.3  # ones -> 0.7, zeros -> 0.3; exactly 0.5 is a zero
    assert torch.equal(_bits_float(soft), x)
    assert _bits_float(torch.full((1, 32), 0.5)).tolist() == [[0.0]]
    assert _bits_float(fb).dtype == torch.float32


def test_state_conversion_helpers():
    st = _torch({"a": np.array([1, 2]), "b": 3, "c": [True]})
    assert isinstance(st["a"], torch.Tensor) and st["a"].tolist() == [1, 2] and st["b"] == 3 and st["c"] == [True]
    back = _np(st)
    assert isinstance(back["a"], np.ndarray) and back["a"].tolist() == [1, 2] and back["b"] == 3


def test_unknown_scheme_and_payload_sizes():
    with pytest.raises(ValueError) as e:
        FeatureCodec("maxmin", 8, 2, 1, None)
    assert str(e.value) == f"scheme must be one of {SCHEMES}"
    assert FeatureCodec("float", 10, None, 32, None).payload_bits() == 320
    assert FeatureCodec("scalar", 10, None, 3, None).payload_bits() == 30
    assert FeatureCodec("maxpro", 10, 4, 3, None).payload_bits() == 12
    c = FeatureCodec("maxamp", 10, 3, 2, None)  # C(10, 3) = 120 -> 7 bits
    assert (c.index_bits, c.payload_bits()) == (7, 13)
    c = FeatureCodec("maxproamp", 64, 2, 1, 6)  # C(6, 2) = 15 -> 4 bits
    assert (c.index_bits, c.payload_bits()) == (4, 6)
    assert FeatureCodec("maxpro", 10, 4, 3, None).index_bits == 0 and FeatureCodec("float", 3, None, 32, None).index_bits == 0


def test_scalar_levels_by_hand():
    X = torch.zeros(1001, 2)
    X[:, 0] = torch.arange(1001.0)  # 99.9th percentile = 999; column 1 never active -> vmax 1e-6
    c = FeatureCodec("scalar", 2, None, 2, None)
    c.fit(X)
    assert c.vmax.dtype == np.float32 and c.vmax.tolist() == [999.0, np.float32(1e-6)]
    x = torch.tensor([[0.0, 0.0], [333.0, 1.0], [999.0, -1.0], [2000.0, 0.0], [-5.0, 0.0], [500.0, 0.0]])
    b = c.encode(x)
    # L = 3: codes round(x / 999 * 3) clamped to [0, 3]; 500 -> 1.5015 -> 2
    assert b.tolist() == [bitstr("0000"), bitstr("0111"), bitstr("1100"), bitstr("1100"), bitstr("0000"),
                          bitstr("1000")]
    xh, valid = c.decode(b)
    assert torch.allclose(xh[:, 0], torch.tensor([0.0, 333.0, 999.0, 999.0, 0.0, 666.0]))
    assert valid.dtype == torch.bool and valid.tolist() == [True] * 6
    assert c.S is None and c.vq is None and c.coder is None


def test_float_scheme_passes_words_and_clears_non_finite_values():
    c = FeatureCodec("float", 3, None, 32, None)
    c.fit(torch.ones(4, 3))  # nothing to fit
    assert c.vq is None and c.vmax is None
    x = torch.tensor([[1.0, -2.5, 1e7], [float("nan"), float("inf"), -1e7]])
    b = c.encode(x)
    assert b[0].tolist() == f32_bits(1.0) + f32_bits(-2.5) + f32_bits(1e7)
    xh, valid = c.decode(b)
    assert xh.tolist() == [[1.0, -2.5, 1e6], [0.0, 0.0, -1e6]] and valid.tolist() == [True, True]
    ninf = c.decode(c.encode(torch.tensor([[-float("inf"), 3.0, 0.5]])))[0]
    assert ninf.tolist() == [[0.0, 3.0, 0.5]]


def _train():
    """Columns 0, 2, 3, 5 are active in every sample, 1 and 4 in one: activation order 0 2 3 5 1 4."""
    X = torch.zeros(8, 6)
    X[:, [0, 2, 3, 5]] = torch.arange(1.0, 9.0)[:, None]
    X[0, 1] = X[1, 4] = 1.0
    return X


def test_maxamp_layout_by_hand():
    c = FeatureCodec("maxamp", 6, 2, 32, None)
    c.fit(_train())
    assert c.S is None and c.coder.N == 6 and c.coder.K == 2 and c.vq.n_bits == 32 and not c.vq.include_zero
    b = c.encode(torch.tensor([[0.0, 5.0, 0.0, 7.0, 1.0, 0.0]]))
    # indices {1, 3}: rank C(1, 1) + C(3, 2) = 4 in ceil(log2 15) = 4 bits, then 5.0 and 7.0 as float32
    assert b[0].tolist() == bitstr("0100") + f32_bits(5.0) + f32_bits(7.0)
    xh, valid = c.decode(b)
    assert xh.tolist() == [[0.0, 5.0, 0.0, 7.0, 0.0, 0.0]] and valid.tolist() == [True]
    bad = b.clone()
    bad[0, :4] = 1.0  # rank 15 >= C(6, 2): invalid, all zeros
    xh, valid = c.decode(torch.cat([b, bad]))
    assert valid.dtype == torch.bool and valid.tolist() == [True, False] and xh[1].tolist() == [0.0] * 6


def test_maxproamp_positions_inside_the_maxpro_set():
    c = FeatureCodec("maxproamp", 6, 2, 32, 4)
    c.fit(_train())
    assert c.S.tolist() == [0, 2, 3, 5] and c.coder.N == 4 and c.coder.K == 2 and not c.vq.include_zero
    x = torch.tensor([[9.0, 8.0, 1.0, 7.0, 6.0, 2.0]])
    b = c.encode(x)
    # inside S the values are 9, 1, 7, 2: positions {0, 2}, rank C(0, 1) + C(2, 2) = 1 in 3 bits
    assert b[0].tolist() == bitstr("001") + f32_bits(9.0) + f32_bits(7.0)
    xh, valid = c.decode(b)
    assert xh.tolist() == [[9.0, 0.0, 0.0, 7.0, 0.0, 0.0]] and valid.tolist() == [True]
    bad = b.clone()
    bad[0, :3] = torch.tensor([1.0, 1.0, 0.0])  # rank 6 = C(4, 2): invalid
    xh, valid = c.decode(bad)
    assert valid.tolist() == [False] and xh.tolist() == [[0.0] * 6]
    soft = b * 0.8 + 0.1  # soft bits: thresholded at 0.5
    assert c.decode(soft)[0].tolist() == [[9.0, 0.0, 0.0, 7.0, 0.0, 0.0]]


def test_maxpro_fixed_set_with_an_exact_zero_code():
    c = FeatureCodec("maxpro", 6, 3, 2, None)
    X = _train()
    c.fit(X)
    assert c.S.tolist() == [0, 2, 3] and c.coder is None and c.vq.include_zero and c.vq.n_bits == 2
    b = c.encode(torch.tensor([[0.0, 4.0, 8.0, 1.0, 5.0, 6.0]]))
    assert b.shape == (1, 6) and b[0, :2].tolist() == [0.0, 0.0]  # feature 0 is exactly 0: code 0
    xh, valid = c.decode(b)
    assert xh[0, [1, 4, 5]].tolist() == [0.0, 0.0, 0.0] and xh[0, 0] == 0.0 and valid.tolist() == [True]
    assert xh[0, 2] > xh[0, 3] > 0  # 8 and 1 fall in different bins
    c32 = FeatureCodec("maxpro", 6, 3, 32, None)
    c32.fit(X)
    assert not c32.vq.include_zero  # float32 values: no reserved code
    x = torch.tensor([[0.0, 4.0, 8.5, 1.25, 5.0, 6.0]])
    assert c32.encode(x)[0].tolist() == f32_bits(0.0) + f32_bits(8.5) + f32_bits(1.25)
    assert c32.decode(c32.encode(x))[0].tolist() == [[0.0, 0.0, 8.5, 1.25, 0.0, 0.0]]


@pytest.mark.parametrize("scheme,K,n,size", [("scalar", None, 3, None), ("maxpro", 3, 2, None),
                                             ("maxamp", 2, 3, None), ("maxproamp", 2, 4, 4), ("float", None, 32, None)])
def test_state_round_trip_through_weights_only_torch_save(scheme, K, n, size, tmp_path):
    c = FeatureCodec(scheme, 6, K, n, size)
    X = _train() + 0.1 * torch.arange(6.0)
    c.fit(X)
    st = c.state()
    assert set(st) == {"scheme", "K", "n", "maxpro_size", "S", "vmax"} | ({"vq"} if c.vq is not None else set())
    assert (st["scheme"], st["K"], st["n"], st["maxpro_size"]) == (scheme, K, n, size)
    if c.S is not None:
        assert st["S"].dtype == torch.int64 and st["S"].tolist() == c.S.tolist()
    torch.save(st, tmp_path / "c.pt")
    c2 = FeatureCodec(scheme, 6, None, n, None)
    c2.load_state(torch.load(tmp_path / "c.pt", weights_only=True))
    assert (c2.K, c2.maxpro_size) == (K, size)
    b = c.encode(X)
    assert torch.equal(c2.encode(X), b) and torch.equal(c2.decode(b)[0], c.decode(b)[0])
    if scheme == "scalar":
        assert c2.vmax.tolist() == c.vmax.tolist()
    if c.coder is not None:
        assert (c2.coder.N, c2.coder.K) == (c.coder.N, c.coder.K)
    else:
        assert c2.coder is None


def test_reserved_zero_code_for_every_maxpro_width_and_output_dtypes():
    X = _train()
    for n, zero in ((1, True), (16, True), (32, False)):
        c = FeatureCodec("maxpro", 6, 3, n, None)
        c.fit(X)
        assert c.vq.include_zero is zero, n
    for scheme, size in (("maxamp", None), ("maxproamp", 4)):
        c = FeatureCodec(scheme, 6, 2, 3, size)
        c.fit(X)
        assert c.vq.include_zero is False
    c = FeatureCodec("maxpro", 6, 3, 1, None)
    c.fit(X)
    b = c.encode(torch.tensor([[0.0, 4.0, 8.0, 1.0, 5.0, 6.0]]))
    assert b.dtype == torch.float32 and b.tolist() == [[0.0, 1.0, 1.0]]  # exact 0 -> code 0, others code 1
    xh, valid = c.decode(torch.full((2, 3), 0.5))  # 0.5 is a zero bit: every value decodes to exactly 0
    assert valid.dtype == torch.bool and valid.tolist() == [True, True] and xh.tolist() == [[0.0] * 6] * 2
    m = FeatureCodec("maxamp", 6, 2, 32, None)
    m.fit(X)
    assert m.encode(torch.tensor([[0.0, 5.0, 0.0, 7.0, 1.0, 0.0]])).dtype == torch.float32


def test_scalar_codes_of_negative_values_clamp_to_zero():
    X = torch.zeros(1001, 1)
    X[:, 0] = torch.arange(1001.0)
    c = FeatureCodec("scalar", 1, None, 2, None)
    c.fit(X)
    b = c.encode(torch.tensor([[-999.0], [-2000.0], [999.0]]))
    assert b.tolist() == [[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]]
