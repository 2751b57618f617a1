"""Contract tests of the link blocks (bit source, QAM, LDPC, CRC, power normalisation) on small known inputs.

Each test is marked with the block types it pins, so ``python -m linksim.testing.mutants`` can break one
block at a time (outputs zeroed, rolled by one sample along the batch) and check that its tests fail.
"""
import math

import pytest
import torch

from linksim.testing.harness import fwd, graph, make, run, spec

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
