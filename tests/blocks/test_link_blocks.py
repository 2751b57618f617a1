"""Contract tests of the link blocks (bit source, QAM, LDPC, CRC, power normalisation) on small known inputs.

Each test is marked with the block types it pins, so ``python -m linksim.testing.mutants`` can break one
block at a time (outputs zeroed, rolled by one sample along the batch) and check that its tests fail.
"""
import math

import pytest
import torch

from linksim.link import mapping
from linksim.testing.harness import fwd, graph, make, run, spec


@pytest.fixture(autouse=True)
def _fresh_sionna_mappers():
    """Build the Sionna Mapper/Demapper anew in every test: the blocks share them per process (lru_cache), and
    a test must exercise the construction (the constellation choice), not an object an earlier test made."""
    mapping._mapper.cache_clear()
    mapping._demapper.cache_clear()

G = torch.Generator().manual_seed(1234)


def rbits(n, L, seed=0):
    return torch.randint(0, 2, (n, L), generator=torch.Generator().manual_seed(seed)).float()


@pytest.mark.block("bit_source")
@pytest.mark.parametrize("packed", [False, True])
def test_bit_source_uniform_and_seeded(packed):
    blk = make("bit_source", {"bits_per_sample": 200, "packed": packed})
    torch.manual_seed(3)
    b = fwd(blk, n=100)["bits"]
    torch.manual_seed(3)
    assert torch.equal(b, fwd(blk, n=100)["bits"])
    assert b.shape == (100, 200) and set(b.unique().tolist()) == {0.0, 1.0}
    # 20000 fair bits: sd of the mean 0.0035; 4 sigma = 0.014
    assert abs(float(b.mean()) - 0.5) < 0.014
    # frames differ from each other (a constant frame would pass the mean test)
    assert (b[1:] != b[:-1]).float().mean() > 0.45


@pytest.mark.block("qam_mapper")
@pytest.mark.parametrize("m", [1, 2, 4, 6])
def test_qam_mapper_gives_sionnas_symbols(m):
    from sionna.phy.mapping import Mapper

    L = 6 * m + (1 if m > 1 else 0)  # not a multiple of m when m > 1: the last symbol is zero-padded
    blk = make("qam_mapper", {"bits_per_symbol": m}, {"bits": spec("bits", L)})
    b = rbits(8, L, seed=m)
    s = fwd(blk, bits=b)["symbols"]
    pad = (-L) % m
    ref = Mapper("pam" if m == 1 else "qam", m)(torch.cat([b, torch.zeros(8, pad)], 1))
    assert s.shape == (8, (L + pad) // m) and torch.allclose(s, ref, atol=1e-6)
    assert abs(float(ref.abs().pow(2).mean()) - 1) < 0.35  # unit average energy (few symbols)


@pytest.mark.block("qam_mapper")
def test_qpsk_gray_mapping_by_hand():
    blk = make("qam_mapper", {"bits_per_symbol": 2}, {"bits": spec("bits", 8)})
    b = torch.tensor([[0, 0, 0, 1, 1, 0, 1, 1], [1, 1, 1, 0, 0, 1, 0, 0.]])
    a = 1 / math.sqrt(2)
    s = fwd(blk, bits=b)["symbols"]
    exp = torch.tensor([[a + 1j * a, a - 1j * a, -a + 1j * a, -a - 1j * a],
                        [-a - 1j * a, -a + 1j * a, a - 1j * a, a + 1j * a]], dtype=torch.complex64)
    assert torch.allclose(s, exp, atol=1e-6)


@pytest.mark.block("qam_demapper")
@pytest.mark.parametrize("m,closed", [(1, False), (2, False), (2, True), (4, False)])
def test_qam_demapper_llrs_equal_sionnas_and_decide_noise_free_symbols(m, closed):
    from sionna.phy.mapping import Demapper, Mapper

    kind = "pam" if m == 1 else "qam"
    L = 12 * m
    b = rbits(6, L, seed=10 + m)
    x = Mapper(kind, m)(b)
    blk = make("qam_demapper", {"bits_per_symbol": m, "closed_form": closed},
               {"y": spec("complex", L // m, num_bits=L), "nvar": spec("real", L // m)})
    out = fwd(blk, y=x, nvar=torch.full(x.shape, 0.01))
    assert torch.equal(out["bits"], b)
    # noisy symbols: LLRs equal Sionna's demapper on the same input
    y = x + 0.5 * torch.randn(x.shape, dtype=torch.complex64, generator=torch.Generator().manual_seed(m))
    nv = 0.3 + torch.rand(x.shape, generator=torch.Generator().manual_seed(m + 1))
    out = fwd(blk, y=y, nvar=nv)
    ref = Demapper("app", kind, m)(y, nv)
    assert torch.allclose(out["llr"], ref, rtol=1e-4, atol=1e-4)
    assert torch.equal(out["bits"], (ref > 0).float())


@pytest.mark.block("qam_demapper")
def test_qam_demapper_snr_param_without_nvar():
    from sionna.phy.mapping import Demapper

    blk = make("qam_demapper", {"bits_per_symbol": 2, "snr_db": 3.0}, {"y": spec("complex", 5)})
    y = torch.randn(4, 5, dtype=torch.complex64, generator=torch.Generator().manual_seed(2))
    ref = Demapper("app", "qam", 2)(y, torch.full(y.shape, 10 ** -0.3))
    assert torch.allclose(fwd(blk, y=y)["llr"], ref, rtol=1e-4, atol=1e-4)


@pytest.mark.block("ldpc5g_encoder")
@pytest.mark.parametrize("impl", ["sionna", "generator"])
def test_ldpc_encoder_codewords_and_padding(impl):
    from sionna.phy.fec.ldpc import LDPC5GEncoder

    blk = make("ldpc5g_encoder", {"k": 40, "n": 80, "impl": impl}, {"bits": spec("bits", 70)})
    b = rbits(5, 70, seed=7)
    c = fwd(blk, bits=b)["bits"]
    enc = LDPC5GEncoder(40, 80)
    padded = torch.cat([b, torch.zeros(5, 10)], 1).reshape(5, 2, 40)
    assert c.shape == (5, 160) and torch.equal(c, enc(padded).reshape(5, 160))
    # systematic part: the first info bits of each codeword are the payload (5G NR after puncturing 2Z)
    assert blk.out_specs["bits"].meta["codewords"] == 2


def _coded_link(k, n, snr_db, num_iter, impl, frames, seed=0):
    g = graph({"src": {"type": "bit_source", "params": {"bits_per_sample": k}},
               "enc": {"type": "ldpc5g_encoder", "params": {"k": k, "n": n}, "inputs": {"bits": "src.bits"}},
               "map": {"type": "qam_mapper", "params": {"bits_per_symbol": 2}, "inputs": {"bits": "enc.bits"}},
               "ch": {"type": "awgn", "params": {"snr_db": snr_db}, "inputs": {"x": "map.symbols"}},
               "dm": {"type": "qam_demapper", "params": {"bits_per_symbol": 2},
                      "inputs": {"y": "ch.y", "nvar": "ch.nvar"}},
               "dec": {"type": "ldpc5g_decoder", "params": {"k": k, "n": n, "num_iter": num_iter, "impl": impl},
                       "inputs": {"llr": "dm.llr"}}})
    v = run(g, frames, seed=seed)
    return v[("src", "bits")], v[("dec", "bits")], (v[("dm", "bits")] != v[("enc", "bits")])


@pytest.mark.block("ldpc5g_decoder", "ldpc5g_encoder", "qam_mapper", "qam_demapper", "awgn")
@pytest.mark.parametrize("impl", ["sionna", "fast"])
def test_ldpc_decoder_corrects_errors_at_the_waterfall(impl):
    """Rate 1/2, n = 512, QPSK at Es/N0 = 2.5 dB (the waterfall; ~9 % of the channel bits are wrong):
    20 BP iterations decode almost every frame, one iteration leaves most frames in error."""
    u, uh, wrong = _coded_link(256, 512, 2.5, 20, impl, 60)
    ch_ber = float(wrong.float().mean())  # Q(sqrt(Es/N0)) = 0.091 for QPSK at 2.5 dB
    bler20 = float((uh != u).any(1).float().mean())
    assert 0.07 < ch_ber < 0.11  # there is something to correct
    assert bler20 <= 0.1
    _, uh1, _ = _coded_link(256, 512, 2.5, 1, impl, 60)
    bler1 = float((uh1 != u).any(1).float().mean())
    assert bler1 >= 0.5


@pytest.mark.block("ldpc5g_decoder")
def test_ldpc_decoder_noise_free_llrs_and_training_iterations():
    from sionna.phy.fec.ldpc import LDPC5GEncoder

    blk = make("ldpc5g_decoder", {"k": 40, "n": 80}, {"llr": spec("llr", 160, info_bits=70, codewords=2)})
    b = rbits(4, 70, seed=9)
    c = LDPC5GEncoder(40, 80)(torch.cat([b, torch.zeros(4, 10)], 1).reshape(4, 2, 40)).reshape(4, 160)
    llr = 8.0 * (2 * c - 1)  # log p(1)/p(0)
    assert torch.equal(fwd(blk, llr=llr)["bits"], b)
    assert torch.equal(fwd(blk, split="train", llr=llr)["bits"], b)


def _crc_bits(payload: list[int], poly: int, r: int) -> list[int]:
    """CRC parity by long division over GF(2) (3GPP 38.212 5.1: zero initial state, MSB first)."""
    reg = 0
    for bit in payload + [0] * r:
        top = (reg >> (r - 1)) & 1
        reg = ((reg << 1) & ((1 << r) - 1)) | bit
        if top:
            reg ^= poly & ((1 << r) - 1)
    return [(reg >> (r - 1 - i)) & 1 for i in range(r)]


@pytest.mark.block("crc_encoder")
@pytest.mark.parametrize("crc,poly,r", [("CRC24A", 0x1864CFB, 24), ("CRC16", 0x11021, 16), ("CRC6", 0x61, 6)])
def test_crc_encoder_appends_the_hand_computed_parity(crc, poly, r):
    blk = make("crc_encoder", {"crc": crc}, {"bits": spec("bits", 30)})
    b = rbits(4, 30, seed=r)
    out = fwd(blk, bits=b)["bits"]
    assert out.shape == (4, 30 + r) and torch.equal(out[:, :30], b)
    for i in range(4):
        assert out[i, 30:].int().tolist() == _crc_bits(b[i].int().tolist(), poly, r)


@pytest.mark.block("crc_decoder", "crc_encoder")
def test_crc_decoder_flags_corrupted_frames_and_strips_parity():
    enc = make("crc_encoder", {"crc": "CRC24A"}, {"bits": spec("bits", 40)})
    dec = make("crc_decoder", {"crc": "CRC24A"}, {"bits": spec("bits", 64)})
    b = rbits(6, 40, seed=5)
    c = fwd(enc, bits=b)["bits"]
    c[1, 3] = 1 - c[1, 3]
    c[4, 50] = 1 - c[4, 50]
    out = fwd(dec, bits=c)
    assert out["ok"].reshape(-1).tolist() == [1, 0, 1, 1, 0, 1]
    keep = [0, 2, 3, 5]
    assert torch.equal(out["bits"][keep], b[keep])
    assert torch.equal(out["bits"][4], b[4])  # parity bit hit: payload intact, frame still flagged


@pytest.mark.block("power_normalize")
def test_power_normalize_packs_pairs_and_scales_each_sample():
    blk = make("power_normalize", {}, {"x": spec("real", 5)})
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0], [0.0, -1.0, 0.5, 0.0, 2.0], [3.0, 0.0, 0.0, 0.0, 0.0]])
    s = fwd(blk, x=x)["symbols"]
    for i in range(3):
        v = torch.complex(torch.cat([x[i, 0::2]]), torch.cat([x[i, 1::2], torch.zeros(1)]))
        exp = v / v.abs().pow(2).mean().sqrt()
        assert torch.allclose(s[i], exp.to(torch.complex64), atol=1e-6)
    assert blk.out_specs["symbols"].shape == (3,)
    # complex input: scaled only
    blk = make("power_normalize", {}, {"x": spec("complex", 2)})
    z = torch.tensor([[3 + 4j, 0j], [1 + 0j, 1j]], dtype=torch.complex64)
    assert torch.allclose(fwd(blk, x=z)["symbols"], z / torch.tensor([[12.5 ** 0.5], [1.0]]), atol=1e-6)


@pytest.mark.block("complex_to_real", "power_normalize")
def test_complex_to_real_unpacks_to_the_original_length():
    pn = make("power_normalize", {}, {"x": spec("real", 5)})
    c2r = make("complex_to_real", {}, {"y": pn.out_specs["symbols"]})
    assert c2r.out_specs["x"].shape == (5,)
    y = torch.tensor([[1 + 2j, 3 - 4j, 5 + 6j], [-1j, 2 + 0j, 0.5 + 0.5j]], dtype=torch.complex64)
    exp = torch.tensor([[1.0, 2.0, 3.0, -4.0, 5.0], [0.0, -1.0, 2.0, 0.0, 0.5]])
    assert torch.equal(fwd(c2r, y=y)["x"], exp)
    # a round trip through power_normalize keeps the direction of every sample
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    back = fwd(c2r, y=fwd(pn, x=x)["symbols"])["x"]
    assert torch.allclose(back * (x.norm(dim=1, keepdim=True) / back.norm(dim=1, keepdim=True)), x, atol=1e-5)


# ------------------------------------------------------------ issue 17: wiring, pairing and shapes of the blocks
from linksim.errors import ParamError, PortError  # noqa: E402


@pytest.mark.block("crc_encoder")
def test_crc_encoder_specs_report_and_wrong_kind():
    with pytest.raises(PortError) as e:
        make("crc_encoder", {"crc": "CRC16"}, {"bits": spec("real", 30)})
    assert str(e.value) == "bits expects bits, got real[30]"
    enc = make("crc_encoder", {}, {"bits": spec("bits", 2, 15, note="kept")})  # CRC24A by default
    out = enc.out_specs["bits"]
    assert (out.kind, out.shape, enc.L) == ("bits", (54,), 30)
    assert out.meta["note"] == "kept" and out.meta["pair:crc_encoder"] is enc
    assert enc.report() == {"crc_bits_per_sample": 24.0}
    assert make("crc_encoder", {"crc": "CRC11"}, {"bits": spec("bits", 4)}).report() == {"crc_bits_per_sample": 11.0}
    b = rbits(3, 30, seed=2)
    flat = fwd(enc, bits=b)["bits"]
    assert torch.equal(fwd(enc, bits=b.reshape(3, 2, 15).int())["bits"], flat)  # any shape, any dtype


@pytest.mark.block("crc_decoder", "crc_encoder")
def test_crc_decoder_pairs_with_its_encoder_and_checks_lengths():
    enc = make("crc_encoder", {"crc": "CRC16"}, {"bits": spec("bits", 20, note="kept")})
    dec = make("crc_decoder", {}, {"bits": enc.out_specs["bits"]})  # takes CRC16 from its encoder
    assert dec.p.crc == "CRC16" and dec.r == 16
    out, ok = dec.out_specs["bits"], dec.out_specs["ok"]
    assert (out.kind, out.shape, ok.kind, ok.shape) == ("bits", (20,), "real", (1,))
    assert "pair:crc_encoder" not in out.meta and out.meta["note"] == "kept"
    b = rbits(3, 20, seed=4)
    got = fwd(dec, bits=fwd(enc, bits=b)["bits"].reshape(3, 6, 6))  # any per-sample shape
    assert torch.equal(got["bits"], b) and got["ok"].dtype == torch.float32 and got["ok"].tolist() == [[1.0]] * 3
    same = make("crc_decoder", {"crc": "CRC16"}, {"bits": enc.out_specs["bits"]})
    assert same.p.crc == "CRC16"
    with pytest.raises(ParamError) as e:
        make("crc_decoder", {"crc": "CRC24A"}, {"bits": enc.out_specs["bits"]})
    assert e.value.param == "crc"
    assert str(e.value) == ("crc = 'CRC24A' differs from 'CRC16' of 'b', the block it is paired with; write it "
                            "once, there")
    alone = make("crc_decoder", {}, {"bits": spec("bits", 30)})  # unpaired: 5G's CRC24A
    assert alone.p.crc == "CRC24A" and alone.r == 24 and alone.out_specs["bits"].shape == (6,)
    assert make("crc_decoder", {"crc": "CRC6"}, {"bits": spec("bits", 7)}).out_specs["bits"].shape == (1,)
    with pytest.raises(PortError) as e:
        make("crc_decoder", {"crc": "CRC6"}, {"bits": spec("bits", 6)})
    assert str(e.value) == "bits[6] is not longer than the 6 bits of CRC6"
    with pytest.raises(PortError) as e:
        make("crc_decoder", {}, {"bits": spec("llr", 40)})
    assert str(e.value) == "bits expects bits, got llr[40]"


@pytest.mark.block("crc_encoder", "crc_decoder")
def test_nested_crc_pairs_restore_the_outer_encoder():
    outer = make("crc_encoder", {"crc": "CRC16"}, {"bits": spec("bits", 10)})
    inner = make("crc_encoder", {"crc": "CRC6"}, {"bits": outer.out_specs["bits"]})
    d_in = make("crc_decoder", {}, {"bits": inner.out_specs["bits"]})
    d_out = make("crc_decoder", {}, {"bits": d_in.out_specs["bits"]})
    assert (d_in.p.crc, d_out.p.crc) == ("CRC6", "CRC16")
    assert d_out.out_specs["bits"].shape == (10,) and "pair:crc_encoder" not in d_out.out_specs["bits"].meta


@pytest.mark.block("power_normalize")
def test_power_normalize_specs_of_each_input_kind():
    s = make("power_normalize", {}, {"x": spec("real", 5, num_classes=3)}).out_specs["symbols"]
    assert (s.kind, s.shape, s.meta) == ("complex", (3,), {"num_classes": 3, "real_dims": 5})
    s = make("power_normalize", {}, {"x": spec("real", 2, 3)}).out_specs["symbols"]
    assert (s.shape, s.meta["real_dims"]) == ((3,), 6)
    s = make("power_normalize", {}, {"x": spec("complex", 4)}).out_specs["symbols"]
    assert (s.shape, s.meta["real_dims"]) == ((4,), None)
    blk = make("power_normalize", {}, {"x": spec("bits", 7)})
    s = blk.out_specs["symbols"]
    assert (s.shape, s.meta["real_dims"], blk.in_shape) == ((4,), None, (7,))


@pytest.mark.block("power_normalize")
def test_power_normalize_values_dtypes_and_an_all_zero_sample():
    blk = make("power_normalize", {}, {"x": spec("bits", 3)})
    out = fwd(blk, x=torch.tensor([[1, 0, 1], [0, 0, 0]], dtype=torch.int64))["symbols"]
    # (1 + 0j, 1 + 0j): mean energy 1 already; the zero sample stays zero (no division by 0)
    assert out.dtype == torch.complex64 and out.tolist() == [[1 + 0j, 1 + 0j], [0j, 0j]]
    blk = make("power_normalize", {}, {"x": spec("real", 2, 2)})
    out = fwd(blk, x=torch.tensor([[[3.0, 4.0], [0.0, 0.0]]], dtype=torch.float64))["symbols"]
    # symbols 3 + 4j and 0: mean energy 12.5
    assert out.dtype == torch.complex64
    assert torch.allclose(out, torch.tensor([[(3 + 4j) / 12.5 ** 0.5, 0j]], dtype=torch.complex64))
    tiny = fwd(blk, x=torch.full((1, 2, 2), 1e-8))["symbols"]
    # |s|^2 = 2e-16 < 1e-12: divided by sqrt(1e-12) = 1e-6, not normalised to 1
    assert torch.allclose(tiny.abs(), torch.full((1, 2), 2 ** 0.5 * 1e-8 / 1e-6))


@pytest.mark.block("complex_to_real")
def test_complex_to_real_without_real_dims_and_meta():
    blk = make("complex_to_real", {}, {"y": spec("complex", 3, real_dims=None, num_classes=4)})
    assert blk.d == 6
    x = blk.out_specs["x"]
    assert (x.kind, x.shape, x.meta) == ("real", (6,), {"num_classes": 4})
    y = torch.tensor([[1 + 2j, 3 - 4j, 5 + 6j]], dtype=torch.complex128)
    assert fwd(blk, y=y)["x"].tolist() == [[1.0, 2.0, 3.0, -4.0, 5.0, 6.0]]
    assert fwd(blk, y=y)["x"].dtype == torch.float32
    blk = make("complex_to_real", {}, {"y": spec("complex", 3, real_dims=4)})
    assert blk.out_specs["x"].shape == (4,) and blk.out_specs["x"].meta == {}
    assert fwd(blk, y=y.reshape(1, 3, 1))["x"].tolist() == [[1.0, 2.0, 3.0, -4.0]]


@pytest.mark.block("qam_mapper")
def test_qam_mapper_specs_padding_and_bad_orders():
    with pytest.raises(ParamError) as e:
        make("qam_mapper", {"bits_per_symbol": 3}, {"bits": spec("bits", 6)})
    assert e.value.param == "bits_per_symbol"
    assert str(e.value) == "bits_per_symbol must be one of [1, 2, 4, 6, 8] (BPSK, QPSK, 16/64/256-QAM), got 3"
    with pytest.raises(PortError) as e:
        make("qam_mapper", {"bits_per_symbol": 2}, {"bits": spec("real", 6)})
    assert str(e.value) == "bits expects bits, got real[6]"
    blk = make("qam_mapper", {"bits_per_symbol": 4}, {"bits": spec("bits", 2, 5, note="kept")})
    s = blk.out_specs["symbols"]
    assert (blk.L, blk.pad, s.kind, s.shape) == (10, 2, "complex", (3,))
    assert s.meta["num_bits"] == 10 and s.meta["note"] == "kept" and s.meta["pair:qam_mapper"] is blk
    assert make("qam_mapper", {"bits_per_symbol": 2}, {"bits": spec("bits", 8)}).pad == 0


@pytest.mark.block("qam_mapper")
def test_bpsk_mapping_by_hand_and_padded_qpsk():
    blk = make("qam_mapper", {"bits_per_symbol": 1}, {"bits": spec("bits", 3)})
    s = fwd(blk, bits=torch.tensor([[0, 1, 1], [1, 0, 0]]))["symbols"]  # bit 0 -> +1, bit 1 -> -1
    assert s.dtype == torch.complex64 and s.tolist() == [[1 + 0j, -1 + 0j, -1 + 0j], [-1 + 0j, 1 + 0j, 1 + 0j]]
    blk = make("qam_mapper", {"bits_per_symbol": 2}, {"bits": spec("bits", 3)})
    a = 1 / math.sqrt(2)
    s = fwd(blk, bits=torch.tensor([[1.0, 0.0, 1.0]]))["symbols"]  # padded with a 0: (1, 0), (1, 0)
    assert torch.allclose(s, torch.tensor([[-a + 1j * a, -a + 1j * a]], dtype=torch.complex64), atol=1e-7)


@pytest.mark.block("qam_demapper", "qam_mapper")
def test_qam_demapper_pairing_and_wiring_errors():
    mp = make("qam_mapper", {"bits_per_symbol": 4}, {"bits": spec("bits", 10, note="kept")})
    dm = make("qam_demapper", {}, {"y": mp.out_specs["symbols"], "nvar": spec("real", 3)})
    assert dm.p.bits_per_symbol == 4 and dm.L == 10
    assert dm.demapper.constellation is mp.mapper.constellation  # Sionna's pairing: one constellation
    for k in ("llr", "bits"):
        o = dm.out_specs[k]
        assert (o.kind, o.shape) == (k, (10,)) and o.meta == {"note": "kept"}
    with pytest.raises(ParamError) as e:
        make("qam_demapper", {"bits_per_symbol": 2}, {"y": mp.out_specs["symbols"], "nvar": spec("real", 3)})
    assert str(e.value) == ("bits_per_symbol = 2 differs from 4 of 'b', the block it is paired with; write it once, "
                            "there")
    with pytest.raises(ParamError) as e:
        make("qam_demapper", {}, {"y": spec("complex", 3), "nvar": spec("real", 3)})
    assert str(e.value) == ("set bits_per_symbol, or connect this block (through any channel) to its transmitter, "
                            "from which it takes bits_per_symbol")
    with pytest.raises(PortError) as e:
        make("qam_demapper", {"bits_per_symbol": 2}, {"y": spec("complex", 3)})
    assert str(e.value) == "connect 'nvar' (noise variance from the channel) or set params.snr_db"
    with pytest.raises(PortError) as e:
        make("qam_demapper", {"bits_per_symbol": 2}, {"y": spec("complex", 3, num_bits=7), "nvar": spec("real", 3)})
    assert str(e.value) == "complex[3] carries at most 6 bits but the mapper sent 7: bits_per_symbol differs?"
    ok = make("qam_demapper", {"bits_per_symbol": 2}, {"y": spec("complex", 3, num_bits=6), "nvar": spec("real", 3)})
    assert ok.L == 6
    unpaired = make("qam_demapper", {"bits_per_symbol": 2, "snr_db": 0.0}, {"y": spec("complex", 2, 3)})
    assert unpaired.L == 12 and unpaired.out_specs["bits"].shape == (12,)


@pytest.mark.block("qam_demapper")
@pytest.mark.parametrize("m", [1, 2])
def test_closed_form_llrs_by_hand(m):
    # BPSK: LLR = -4 a Re(y) / N0 with a = 1; QPSK: a = 1/sqrt(2) on each axis
    blk = make("qam_demapper", {"bits_per_symbol": m, "closed_form": True, "snr_db": 0.0},
               {"y": spec("complex", 2)})
    y = torch.tensor([[0.5 + 0.25j, -1.0 - 2.0j]], dtype=torch.complex64)
    a = 1.0 if m == 1 else 1 / math.sqrt(2)
    out = fwd(blk, y=y, nvar=torch.tensor([[0.5, 2.0]]))
    exp = ([-4 * a * 0.5 / 0.5, 4 * a * 1.0 / 2.0] if m == 1 else
           [-4 * a * 0.5 / 0.5, -4 * a * 0.25 / 0.5, 4 * a * 1.0 / 2.0, 4 * a * 2.0 / 2.0])
    assert torch.allclose(out["llr"], torch.tensor([exp]), atol=1e-6)
    assert out["bits"].dtype == torch.float32 and out["bits"].tolist() == [[float(v > 0) for v in exp]]
    no_nvar = fwd(blk, y=y)["llr"]  # snr_db = 0 dB: N0 = 1
    assert torch.allclose(no_nvar, torch.tensor([[-4 * a * 0.5, 4 * a * 1.0]] if m == 1 else
                                                [[-4 * a * 0.5, -4 * a * 0.25, 4 * a, 8 * a]]), atol=1e-6)


@pytest.mark.block("qam_demapper")
def test_demapper_trims_the_mappers_padding():
    mp = make("qam_mapper", {"bits_per_symbol": 2}, {"bits": spec("bits", 3)})
    dm = make("qam_demapper", {"closed_form": True}, {"y": mp.out_specs["symbols"], "nvar": spec("real", 2)})
    b = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    out = fwd(dm, y=fwd(mp, bits=b)["symbols"], nvar=torch.full((2, 2), 0.1))
    assert out["llr"].shape == (2, 3) and torch.equal(out["bits"], b)
    dm2 = make("qam_demapper", {"method": "maxlog"}, {"y": mp.out_specs["symbols"], "nvar": spec("real", 2)})
    assert torch.equal(fwd(dm2, y=fwd(mp, bits=b)["symbols"], nvar=torch.full((2, 2), 0.1))["bits"], b)


@pytest.mark.block("ldpc5g_encoder")
def test_ldpc_encoder_specs_report_and_errors():
    import pydantic

    with pytest.raises(pydantic.ValidationError) as e:
        make("ldpc5g_encoder", {"k": 40, "n": 40}, {"bits": spec("bits", 40)})
    assert e.value.errors()[0]["msg"] == "Value error, n (40) must be larger than k (40)"
    with pytest.raises(ValueError) as e:
        make("ldpc5g_encoder", {"k": 12000, "n": 24000}, {"bits": spec("bits", 10)})
    assert str(e.value).startswith("5G LDPC cannot make (k=12000, n=24000): ")
    with pytest.raises(PortError) as e:
        make("ldpc5g_encoder", {"k": 40, "n": 80}, {"bits": spec("llr", 40)})
    assert str(e.value) == "bits expects bits, got llr[40]"
    blk = make("ldpc5g_encoder", {"k": 40, "n": 100}, {"bits": spec("bits", 2, 41, note="kept")})
    out = blk.out_specs["bits"]
    assert (blk.L, blk.C, out.kind, out.shape) == (82, 3, "bits", (300,))
    assert out.meta["info_bits"] == 82 and out.meta["codewords"] == 3 and out.meta["note"] == "kept"
    assert out.meta["pair:ldpc5g_encoder"] is blk
    assert blk.report() == {"coded_bits_per_sample": 300.0}
    exact = make("ldpc5g_encoder", {"k": 40, "n": 80}, {"bits": spec("bits", 80)})
    assert exact.C == 2 and exact.out_specs["bits"].shape == (160,)


@pytest.mark.block("ldpc5g_decoder", "ldpc5g_encoder")
def test_ldpc_decoder_pairing_lengths_and_errors():
    enc = make("ldpc5g_encoder", {"k": 40, "n": 80}, {"bits": spec("bits", 70, note="kept")})
    dec = make("ldpc5g_decoder", {"impl": "fast"}, {"llr": spec("llr", 160, **enc.out_specs["bits"].meta)})
    assert (dec.p.k, dec.p.n, dec.C, dec.L) == (40, 80, 2, 70)
    out = dec.out_specs["bits"]
    assert (out.kind, out.shape, out.meta) == ("bits", (70,), {"note": "kept"})
    b = rbits(3, 70, seed=11)
    c = fwd(enc, bits=b)["bits"]
    assert torch.equal(fwd(dec, llr=(8.0 * (2 * c - 1)).double())["bits"], b)
    with pytest.raises(ParamError) as e:
        make("ldpc5g_decoder", {"k": 30}, {"llr": spec("llr", 160, **enc.out_specs["bits"].meta)})
    assert str(e.value) == "k = 30 differs from 40 of 'b', the block it is paired with; write it once, there"
    with pytest.raises(ParamError) as e:
        make("ldpc5g_decoder", {"n": 90}, {"llr": spec("llr", 160, **enc.out_specs["bits"].meta)})
    assert e.value.param == "n"
    with pytest.raises(ParamError) as e:
        make("ldpc5g_decoder", {"k": 40}, {"llr": spec("llr", 160)})
    assert e.value.param == "n"
    with pytest.raises(ValueError) as e:
        make("ldpc5g_decoder", {"k": 80, "n": 80}, {"llr": spec("llr", 160)})
    assert str(e.value) == "n (80) must be larger than k (80)"
    unpaired = make("ldpc5g_decoder", {"k": 40, "n": 80}, {"llr": spec("llr", 2, 80)})
    assert (unpaired.C, unpaired.L) == (2, 80) and unpaired.out_specs["bits"].shape == (80,)
    with pytest.raises(PortError) as e:
        make("ldpc5g_decoder", {"k": 40, "n": 80}, {"llr": spec("llr", 150)})
    assert str(e.value) == "expects 1 codewords of n=80 LLRs, got llr[150]: k/n differ from the encoder?"
    with pytest.raises(PortError) as e:
        make("ldpc5g_decoder", {"k": 40, "n": 80}, {"llr": spec("llr", 240, codewords=2)})
    assert str(e.value) == "expects 2 codewords of n=80 LLRs, got llr[240]: k/n differ from the encoder?"
    two = make("ldpc5g_decoder", {"k": 40, "n": 80, "num_iter": 7, "train_iter": 3}, {"llr": spec("llr", 80)})
    assert (two.dec.num_iter, two.train_dec.num_iter) == (7, 3)


@pytest.mark.block("power_normalize")
def test_power_normalize_of_double_precision_complex_input_gives_complex64():
    blk = make("power_normalize", {}, {"x": spec("complex", 2)})
    out = fwd(blk, x=torch.tensor([[3 + 4j, 0j]], dtype=torch.complex128))["symbols"]
    assert out.dtype == torch.complex64 and torch.allclose(out, torch.tensor([[(3 + 4j) / 12.5 ** 0.5, 0j]],
                                                                              dtype=torch.complex64))


@pytest.mark.block("qam_mapper")
def test_qam_mapper_symbol_count_is_an_int():
    s = make("qam_mapper", {"bits_per_symbol": 4}, {"bits": spec("bits", 10)}).out_specs["symbols"]
    assert s.shape == (3,) and type(s.shape[0]) is int


@pytest.mark.block("ldpc5g_encoder", "ldpc5g_decoder")
def test_ldpc_impl_parameters_select_the_implementation():
    from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder

    assert isinstance(make("ldpc5g_encoder", {"k": 40, "n": 80}, {"bits": spec("bits", 40)}).enc, LDPC5GEncoder)
    gen = make("ldpc5g_encoder", {"k": 40, "n": 80, "impl": "generator"}, {"bits": spec("bits", 40)})
    assert not isinstance(gen.enc, LDPC5GEncoder)
    assert isinstance(make("ldpc5g_decoder", {"k": 40, "n": 80}, {"llr": spec("llr", 80)}).dec, LDPC5GDecoder)
    fast = make("ldpc5g_decoder", {"k": 40, "n": 80, "impl": "fast"}, {"llr": spec("llr", 80)})
    assert not isinstance(fast.dec, LDPC5GDecoder) and not isinstance(fast.train_dec, LDPC5GDecoder)


@pytest.mark.block("ldpc5g_decoder")
def test_ldpc_decoder_uses_the_training_decoder_on_the_training_split_only():
    blk = make("ldpc5g_decoder", {"k": 40, "n": 80}, {"llr": spec("llr", 160, info_bits=70, codewords=2)})
    blk.dec = lambda llr: torch.zeros(llr.shape[0], llr.shape[1], 40)
    blk.train_dec = lambda llr: torch.ones(llr.shape[0], llr.shape[1], 40)
    llr = torch.zeros(3, 160)
    assert torch.equal(fwd(blk, split="train", llr=llr)["bits"], torch.ones(3, 70))
    assert torch.equal(fwd(blk, split="test", llr=llr)["bits"], torch.zeros(3, 70))
    blk.ctx.batch = None  # outside a graph pass: the evaluation decoder
    assert torch.equal(blk.forward(llr=llr)["bits"], torch.zeros(3, 70))
