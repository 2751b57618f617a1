"""Channel, mapping and LDPC blocks through tiny graphs."""

import pytest
import torch

from linksim.context import RunContext, reseed
from linksim.graph import BatchInfo, Graph, NodeCfg


def graph(blocks: dict) -> Graph:
    nodes = [NodeCfg(n, b["type"], b.get("params", {}), b.get("inputs", {}), f"blocks.{n}", b.get("repeat"))
             for n, b in blocks.items()]
    return Graph(nodes, RunContext(), "t: ")


def run(g: Graph, n: int) -> dict:
    reseed(0)
    with torch.no_grad():
        return g.run_batch(BatchInfo("test", torch.arange(n)), sinks=False)


def test_power_normalize_unit_energy_and_channel_uses():
    g = graph({"src": {"type": "bit_source", "params": {"bits_per_sample": 7}},
               "pn": {"type": "power_normalize", "inputs": {"x": "src.bits"}}})
    v = run(g, 5)
    s = v[("pn", "symbols")]
    assert s.shape == (5, 4) and torch.is_complex(s)
    assert torch.allclose(s.abs().pow(2).mean(1), torch.ones(5), atol=1e-5)


@pytest.mark.parametrize("chan,params", [("rayleigh", {"coherence": "sample"}),
                                         ("rayleigh", {"coherence": "block", "block_symbols": 3}),
                                         ("rician", {"k_factor_db": 30.0})])
def test_fading_coherence_and_csi(chan, params):
    g = graph({"src": {"type": "bit_source", "params": {"bits_per_sample": 12}},
               "map": {"type": "qam_mapper", "params": {"bits_per_symbol": 2}, "inputs": {"bits": "src.bits"}},
               "ch": {"type": chan, "params": {"snr_db": 60.0, **params}, "inputs": {"x": "map.symbols"}}})
    v = run(g, 2000)
    x, y, nv = v[("map", "symbols")], v[("ch", "y")], v[("ch", "nvar")]
    hinv2 = nv / 1e-6  # = 1/|h|^2
    ok = hinv2 < 10  # perfect CSI equalisation at 60 dB, away from deep fades (|h|^2 < 0.1)
    assert ok.float().mean() > 0.85 and torch.allclose(x[ok], y[ok], atol=0.05)
    if params.get("coherence") == "sample":
        assert torch.allclose(hinv2, hinv2[:, :1].expand_as(hinv2))
    if params.get("coherence") == "block":
        assert torch.allclose(hinv2[:, 0], hinv2[:, 2]) and not torch.allclose(hinv2[:, 0], hinv2[:, 3])
    h2 = 1 / hinv2[:, 0]
    if chan == "rayleigh":
        assert abs(float(h2.mean()) - 1) < 4 / 2000 ** 0.5  # E|h|^2 = 1; |h|^2 ~ Exp(1): sd 1/sqrt(n), 4 sigma
    else:  # K = 30 dB: nearly constant unit gain
        assert float((h2 - 1).abs().max()) < 0.2


@pytest.mark.parametrize("chan,p", [("bsc", 0.1), ("bec", 0.25)])
def test_bit_channels(chan, p):
    g = graph({"src": {"type": "bit_source", "params": {"bits_per_sample": 1000}},
               "ch": {"type": chan, "params": {"p": p}, "inputs": {"bits": "src.bits"}}})
    v = run(g, 100)
    x, y, llr = v[("src", "bits")], v[("ch", "bits")], v[("ch", "llr")]
    tol = 4 * (p * (1 - p) / x.numel()) ** 0.5  # 4 sigma of the rate over 10^5 bits
    if chan == "bsc":
        assert abs(float((x != y).float().mean()) - p) < tol
        assert torch.equal(llr > 0, y > 0)
    else:
        erased = llr == 0
        assert abs(float(erased.float().mean()) - p) < tol
        assert torch.equal(y[~erased], x[~erased])


@pytest.mark.parametrize("chan", ["bsc", "bec"])
def test_bit_channels_bypassed_in_training(chan):
    """In the training split a channel without in_training passes the bits through, with saturated LLRs when a
    block reads them and none when nothing does (a float payload is 16k bits per sample)."""
    g = graph({"src": {"type": "bit_source", "params": {"bits_per_sample": 300}},
               "ch": {"type": chan, "params": {"p": 0.3}, "inputs": {"bits": "src.bits"}}})
    reseed(0)
    with torch.no_grad():
        v = g.run_batch(BatchInfo("train", torch.arange(20)), sinks=False)
    x, y, llr = v[("src", "bits")], v[("ch", "bits")], v[("ch", "llr")]
    assert torch.equal(y, x.float()) and torch.equal(llr, (2 * x.float() - 1) * 20.0)
    ch = g.blocks["ch"]
    g.ctx.batch = BatchInfo("train", torch.arange(20))
    ch.wanted = {"bits"}
    assert set(ch.forward(bits=x)) == {"bits"}
    ch.wanted = {"llr"}
    assert torch.equal(ch.forward(bits=x)["llr"], llr)


def test_ldpc_qam_chain_decodes_and_pads():
    # 50 payload bits -> 2 codewords of k=40 (last padded), n=80; 16-QAM (80*2=160 bits -> 40 symbols)
    g = graph({"src": {"type": "bit_source", "params": {"bits_per_sample": 50}},
               "enc": {"type": "ldpc5g_encoder", "params": {"k": 40, "n": 80}, "inputs": {"bits": "src.bits"}},
               "map": {"type": "qam_mapper", "params": {"bits_per_symbol": 4}, "inputs": {"bits": "enc.bits"}},
               "ch": {"type": "awgn", "params": {"snr_db": 20.0}, "inputs": {"x": "map.symbols"}},
               "dm": {"type": "qam_demapper", "params": {"bits_per_symbol": 4},
                      "inputs": {"y": "ch.y", "nvar": "ch.nvar"}},
               "dec": {"type": "ldpc5g_decoder", "params": {"k": 40, "n": 80}, "inputs": {"llr": "dm.llr"}}})
    assert g.blocks["map"].out_specs["symbols"].shape == (40,)
    assert g.blocks["dec"].out_specs["bits"].shape == (50,)
    assert g.reports()["channel_uses_per_sample"] == 40
    v = run(g, 64)
    assert torch.equal(v[("dec", "bits")], v[("src", "bits")])


@pytest.mark.parametrize("chan", ["bsc", "bec"])
def test_bit_channels_sionna_sampler_same_statistics(chan):
    g = graph({"src": {"type": "bit_source", "params": {"bits_per_sample": 1000}},
               "ch": {"type": chan, "params": {"p": 0.2, "differentiable": True}, "inputs": {"bits": "src.bits"}}})
    v = run(g, 50)
    x, llr = v[("src", "bits")], v[("ch", "llr")]
    hit = (llr == 0) if chan == "bec" else ((llr > 0).float() != x)
    assert abs(float(hit.float().mean()) - 0.2) < 4 * (0.2 * 0.8 / hit.numel()) ** 0.5  # 4 sigma


def test_closed_form_bpsk_qpsk_paths_match_sionna():
    """The BPSK/QPSK mapper and APP demapper in closed form give Sionna's symbols and LLRs."""
    from sionna.phy.mapping import Demapper, Mapper

    from linksim.link.mapping import _llr_bpsk_qpsk, _map_bpsk_qpsk

    g = torch.Generator().manual_seed(0)
    for kind, m in (("pam", 1), ("qam", 2)):
        mp, dm = Mapper(kind, m), Demapper("app", kind, m)
        b = torch.randint(0, 2, (7, 24), generator=g).float()
        x = _map_bpsk_qpsk(b, mp.constellation.points, m)
        assert torch.equal(x, mp(b))
        y = x + 0.6 * torch.randn(x.shape, dtype=torch.complex64, generator=g)
        nv = torch.rand(y.shape, generator=g) + 0.2
        assert torch.allclose(_llr_bpsk_qpsk(y, nv, dm.constellation.points, m), dm(y, nv), rtol=1e-5, atol=1e-5)


def test_generator_matrix_encoder_gives_sionnas_codewords():
    from linksim.link.ldpc import _encoder, _generator

    g = torch.Generator().manual_seed(1)
    for k, n in ((40, 80), (100, 300), (128, 256)):
        u = torch.randint(0, 2, (50, k), generator=g).float()
        assert torch.equal(torch.remainder(u @ _generator(k, n, "cpu"), 2.0), _encoder(k, n, "cpu")(u))


def test_packed_bit_source_is_uniform_independent_and_seeded():
    from linksim.data.source import BitSource

    ctx = RunContext()
    blk = BitSource("src", BitSource.Params(bits_per_sample=100, packed=True), ctx)
    blk.setup({})

    def draw(seed):
        torch.manual_seed(seed)
        ctx.batch = BatchInfo("test", torch.arange(2000))
        return blk.forward()["bits"]

    b = draw(5)
    assert b.shape == (2000, 100) and b.dtype == torch.float32 and set(b.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(b, draw(5)) and not torch.equal(b, draw(6))
    p = b.mean(0)  # every bit position (including the 31-bit word boundaries) unbiased: sd 0.0112, the
    assert (p - 0.5).abs().max() < 0.05  # largest of 100 positions within 4.5 sigma (family-wise ~1e-3)
    s = 2 * b - 1  # neighbouring positions uncorrelated
    assert (s[:, 1:] * s[:, :-1]).mean(0).abs().max() < 0.1  # sd 0.0224: 4.5 sigma over 99 pairs


@pytest.mark.parametrize("chan", ["bsc", "bec"])
def test_engine_passes_skip_outputs_nothing_reads(chan):
    """On the engine's own passes (prune=True) a bit channel leaves out the LLRs no block reads; the bits it
    does deliver are the same draws as on a full pass."""
    g = graph({"src": {"type": "bit_source", "params": {"bits_per_sample": 64}},
               "ch": {"type": chan, "params": {"p": 0.05}, "inputs": {"bits": "src.bits"}},
               "rx": {"type": "ber", "inputs": {"bits": "src.bits", "bits_hat": "ch.bits"}}})
    full = run(g, 300)
    reseed(0)
    with torch.no_grad():
        lean = g.run_batch(BatchInfo("test", torch.arange(300)), sinks=False, prune=True)
    assert ("ch", "llr") in full and ("ch", "llr") not in lean
    assert torch.equal(full[("ch", "bits")], lean[("ch", "bits")])
    assert g.blocks["ch"].wanted is None  # restored after the pass


@pytest.mark.parametrize("p", [0.003, 0.05, 0.19, 0.5])
def test_bernoulli_positions_is_an_iid_bernoulli_sequence(p):
    from linksim.channels.bit import bernoulli_positions

    torch.manual_seed(1)
    n, reps = 40, 4000
    hits = torch.zeros(n)
    for _ in range(reps):
        pos = bernoulli_positions(n, p)
        assert pos.numel() == 0 or (pos.min() >= 0 and pos.max() < n and bool((pos.diff() > 0).all()))
        hits[pos] += 1
    sd = (p * (1 - p) / reps) ** 0.5
    assert float((hits / reps - p).abs().max()) < 4.5 * sd  # every position struck with probability p
    big = bernoulli_positions(2_000_000, p)  # long sequences (more than one batch of gaps)
    assert abs(big.numel() / 2e6 - p) < 5 * (p * (1 - p) / 2e6) ** 0.5
