"""Contract tests of the channel blocks (AWGN, Rayleigh, Rician, BSC, BEC, pixel noise); statistical bounds
are about 4 sigma of the estimate, with fixed seeds."""
import math

import pytest
import torch

from linksim.context import reseed
from linksim.testing.harness import fwd, make, spec


def qpsk(n, L, seed=0):
    g = torch.Generator().manual_seed(seed)
    b = torch.randint(0, 2, (n, L, 2), generator=g).float()
    return torch.complex(1 - 2 * b[..., 0], 1 - 2 * b[..., 1]) / math.sqrt(2)


@pytest.mark.block("awgn")
@pytest.mark.parametrize("snr_db", [0.0, 10.0])
def test_awgn_noise_variance_and_per_sample_signal(snr_db):
    blk = make("awgn", {"snr_db": snr_db}, {"x": spec("complex", 100)})
    x = qpsk(100, 100)
    reseed(0)
    out = fwd(blk, x=x)
    n0 = 10 ** (-snr_db / 10)
    assert torch.allclose(out["nvar"], torch.full(x.shape, n0))
    e = out["y"] - x
    # 10^4 complex noise samples: var(|e|^2) = N0^2 -> sd of the mean N0/100; 4 sigma
    assert abs(float(e.abs().pow(2).mean()) / n0 - 1) < 0.04
    assert abs(float(e.real.pow(2).mean()) / (n0 / 2) - 1) < 0.06  # circular: half in each component
    assert abs(float((e * x.conj()).real.mean())) < 4 * math.sqrt(n0 / 2 / 1e4)  # independent of the signal
    # per sample: each y is its own x plus noise (not another sample's)
    assert float((out["y"] - x).abs().pow(2).mean(1).max()) < 1.6 * n0


@pytest.mark.block("awgn")
def test_awgn_bypassed_on_the_training_split():
    blk = make("awgn", {"snr_db": 0.0}, {"x": spec("complex", 4)})
    x = qpsk(3, 4)
    assert torch.equal(fwd(blk, split="train", x=x)["y"], x)
    blk = make("awgn", {"snr_db": 0.0, "in_training": True}, {"x": spec("complex", 4)})
    assert not torch.equal(fwd(blk, split="train", x=x)["y"], x)


@pytest.mark.block("rayleigh")
@pytest.mark.parametrize("coherence", ["sample", "symbol", "block"])
def test_rayleigh_gain_statistics_and_equalisation(coherence):
    n, L = 400, 12
    blk = make("rayleigh", {"snr_db": 50.0, "coherence": coherence, "block_symbols": 4}, {"x": spec("complex", L)})
    x = qpsk(n, L, 1)
    reseed(1)
    out = fwd(blk, x=x)
    h2 = 1e-5 / out["nvar"]  # |h|^2 from the effective noise variance N0/|h|^2
    # E|h|^2 = 1 and |h|^2 ~ Exp(1): sd of the mean over the independent taps
    taps = {"sample": h2[:, 0], "symbol": h2.reshape(-1), "block": h2[:, ::4].reshape(-1)}[coherence]
    assert abs(float(taps.mean()) - 1) < 4 / math.sqrt(taps.numel())
    assert abs(float((taps > 1).float().mean()) - math.exp(-1)) < 4 * math.sqrt(0.23 / taps.numel())
    if coherence == "sample":
        assert torch.allclose(h2, h2[:, :1].expand_as(h2), rtol=1e-4)
    if coherence == "block":
        assert torch.allclose(h2[:, 0:4], h2[:, :1].expand(n, 4), rtol=1e-4)
        assert float((h2[:, 0] - h2[:, 4]).abs().mean()) > 0.1
    ok = h2 > 0.1  # away from deep fades the equalised y is x
    assert torch.allclose(out["y"][ok], x[ok], atol=0.05)


@pytest.mark.block("rayleigh")
def test_rayleigh_without_csi_passes_faded_symbols():
    blk = make("rayleigh", {"snr_db": 60.0, "perfect_csi": False}, {"x": spec("complex", 8)})
    x = qpsk(300, 8, 2)
    reseed(2)
    out = fwd(blk, x=x)
    assert torch.allclose(out["nvar"], torch.full(x.shape, 1e-6))
    h = out["y"] / x  # one tap per sample
    assert torch.allclose(h, h[:, :1].expand_as(h), atol=1e-2)
    assert abs(float(h[:, 0].abs().pow(2).mean()) - 1) < 4 / math.sqrt(300)


@pytest.mark.block("rician")
@pytest.mark.parametrize("k_db", [0.0, 10.0])
def test_rician_k_factor(k_db):
    n = 2000
    blk = make("rician", {"snr_db": 60.0, "k_factor_db": k_db, "perfect_csi": False}, {"x": spec("complex", 2)})
    x = qpsk(n, 2, 3)
    reseed(3)
    out = fwd(blk, x=x)
    h = (out["y"] / x)[:, 0]
    k = 10 ** (k_db / 10)
    los = math.sqrt(k / (k + 1))
    # mean tap = LOS amplitude (phase 0); diffuse power 1/(K+1); E|h|^2 = 1
    sd = math.sqrt(1 / (k + 1) / 2 / n)
    assert abs(float(h.real.mean()) - los) < 4 * sd and abs(float(h.imag.mean())) < 4 * sd
    assert abs(float((h - los).abs().pow(2).mean()) * (k + 1) - 1) < 4 / math.sqrt(n)
    # per sample: y is this sample's x times its tap (a wrong sample would not divide to a smooth tap)
    hh = out["y"] / x
    assert torch.allclose(hh[:, 0], hh[:, 1], atol=1e-2)


@pytest.mark.block("bsc")
@pytest.mark.parametrize("p", [0.05, 0.3])
def test_bsc_flip_rate_and_llr(p):
    blk = make("bsc", {"p": p}, {"bits": spec("bits", 500)})
    x = torch.randint(0, 2, (40, 500), generator=torch.Generator().manual_seed(4)).float()
    reseed(4)
    out = fwd(blk, bits=x)
    flips = (out["bits"] != x).float()
    sd = math.sqrt(p * (1 - p) / x.numel())
    assert abs(float(flips.mean()) - p) < 4 * sd
    assert float(flips.mean(1).max()) < p + 4 * math.sqrt(p * (1 - p) / 500)  # every frame: its own bits
    mag = math.log((1 - p) / p)
    assert torch.allclose(out["llr"], (2 * out["bits"] - 1) * mag)


@pytest.mark.block("bec")
def test_bec_erasure_rate_and_llr():
    p = 0.25
    blk = make("bec", {"p": p}, {"bits": spec("bits", 500)})
    x = torch.randint(0, 2, (40, 500), generator=torch.Generator().manual_seed(5)).float()
    reseed(5)
    out = fwd(blk, bits=x)
    erased = out["llr"] == 0
    assert abs(float(erased.float().mean()) - p) < 4 * math.sqrt(p * (1 - p) / x.numel())
    assert torch.equal(out["bits"][~erased], x[~erased]) and torch.all(out["bits"][erased] == 0)
    assert torch.equal(out["llr"][~erased], (2 * x[~erased] - 1) * 20.0)


@pytest.mark.block("pixel_noise")
@pytest.mark.parametrize("snr_db", [0.0, 10.0])
def test_pixel_noise_image_snr(snr_db):
    g = torch.Generator().manual_seed(6)
    img = 0.2 + 0.6 * torch.rand(50, 1, 16, 16, generator=g)
    blk = make("pixel_noise", {"snr_db": snr_db, "clip": False}, {"image": spec("image", 1, 16, 16)})
    noisy = fwd(blk, image=img)["image"]
    snr = img.pow(2).flatten(1).mean(1) / (noisy - img).pow(2).flatten(1).mean(1)
    # per image 256 Gaussian samples: sd of the noise power ~ sqrt(2/256) = 9 %; 4 sigma per image
    assert float((10 * torch.log10(snr) - snr_db).abs().max()) < 10 * math.log10(1 / (1 - 0.36))
    assert abs(float(10 * torch.log10(snr).mean()) - snr_db) < 0.15
    # seeded per batch: the same batch gives the same noise; clipping keeps [0, 1]
    assert torch.equal(noisy, fwd(blk, image=img)["image"])
    clip = make("pixel_noise", {"snr_db": snr_db}, {"image": spec("image", 1, 16, 16)})
    c = fwd(clip, image=img)["image"]
    assert float(c.min()) >= 0 and float(c.max()) <= 1 and torch.equal(c, noisy.clamp(0, 1))
    # no noise: identity; training split bypassed by default
    assert torch.equal(fwd(make("pixel_noise", {"snr_db": None}, {"image": spec("image", 1, 16, 16)}),
                           image=img)["image"], img)
    assert torch.equal(fwd(blk, split="train", image=img)["image"], img)


# ------------------------------------------------------------ issue 17: base symbol channel, exact figures
from linksim.channels.base import noise_variance  # noqa: E402
from linksim.errors import PortError  # noqa: E402


def test_noise_variance_of_es_n0():
    assert noise_variance(0.0) == 1.0 and noise_variance(10.0) == pytest.approx(0.1, rel=1e-15)
    assert noise_variance(-3.0) == pytest.approx(10 ** 0.3, rel=1e-15) and noise_variance(20) == pytest.approx(0.01)


@pytest.mark.block("awgn")
def test_awgn_specs_report_and_wrong_kind():
    with pytest.raises(PortError) as e:
        make("awgn", {"snr_db": 0.0}, {"x": spec("real", 4)})
    assert str(e.value) == "x expects complex, got real[4]"
    x_spec = spec("complex", 2, 3, real_dims=12)
    blk = make("awgn", {"snr_db": 3.0}, {"x": x_spec})
    assert blk.uses == 6 and blk.out_specs["y"] is x_spec
    nv = blk.out_specs["nvar"]
    assert (nv.kind, nv.shape) == ("real", (2, 3))
    assert blk.report() == {"channel_uses_per_sample": 6.0}
    lab = make("awgn", {"snr_db": 3.0, "label": "up"}, {"x": spec("complex", 5)})
    assert lab.report() == {"channel_uses_per_sample|up": 5.0}


@pytest.mark.block("awgn")
def test_awgn_outputs_shapes_dtypes_and_the_bypass_variance():
    blk = make("awgn", {"snr_db": 10.0}, {"x": spec("complex", 2, 2)})
    x = torch.ones(3, 2, 2, dtype=torch.complex128)
    reseed(1)
    out = fwd(blk, x=x)
    assert out["y"].dtype == torch.complex64 and out["y"].shape == (3, 2, 2)
    assert out["nvar"].shape == (3, 2, 2) and out["nvar"].dtype == torch.float32
    assert torch.equal(out["nvar"], torch.full((3, 2, 2), 0.1))
    tr = fwd(blk, split="train", x=x)
    assert torch.equal(tr["y"], x) and torch.equal(tr["nvar"], torch.full((3, 2, 2), 1e-6))


@pytest.mark.block("bsc", "bec")
def test_bit_channels_specs_bypass_and_extreme_probabilities():
    from linksim.channels.bit import LLR_MAX

    assert LLR_MAX == 20.0
    for t in ("bsc", "bec"):
        with pytest.raises(PortError) as e:
            make(t, {"p": 0.1}, {"bits": spec("llr", 4)})
        assert str(e.value) == "bits expects bits, got llr[4]"
        s = spec("bits", 2, 3, note="kept")
        blk = make(t, {"p": 0.1, "label": "l"}, {"bits": s})
        assert blk.out_specs["bits"] is s and blk.uses == 6
        llr = blk.out_specs["llr"]
        assert (llr.kind, llr.shape, llr.meta) == ("llr", (2, 3), {"note": "kept"})
        assert blk.report() == {"channel_uses_per_sample|l": 6.0}
        assert blk.train_signature() == {"bypassed": True}
        tr = make(t, {"p": 0.1, "in_training": True}, {"bits": s})
        assert tr.train_signature() == {"p": 0.1, "differentiable": False, "in_training": True, "label": None,
                                        "name": "b"}
        assert not blk.random_in_eval() and not tr.random_in_training()
        x = torch.tensor([[[1, 0, 1], [0, 0, 1]]])
        out = fwd(blk, split="train", bits=x)
        assert out["bits"].dtype == torch.float32 and torch.equal(out["bits"], x.float())
        assert torch.equal(out["llr"], (2 * x.float() - 1) * 20.0)
        zero = make(t, {"p": 0.0}, {"bits": s})
        out = fwd(zero, bits=x)
        assert torch.equal(out["bits"], x.float()) and zero.strikes(x.float()) is None
    # BSC at p = 0: LLR magnitude capped at 20; at p = 0.5: no information
    assert torch.equal(fwd(make("bsc", {"p": 0.0}, {"bits": spec("bits", 3)}), bits=torch.tensor([[1.0, 0.0, 1.0]]))["llr"],
                       torch.tensor([[20.0, -20.0, 20.0]]))
    half = fwd(make("bsc", {"p": 0.5}, {"bits": spec("bits", 3)}), bits=torch.tensor([[1.0, 0.0, 1.0]]))["llr"]
    assert torch.equal(half.abs(), torch.zeros(1, 3))
    # p = 1: every bit flipped (BSC) or erased (BEC)
    x = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    out = fwd(make("bsc", {"p": 1.0}, {"bits": spec("bits", 4)}), bits=x)
    assert torch.equal(out["bits"], 1 - x) and torch.equal(out["llr"], (2 * (1 - x) - 1) * 20.0)
    out = fwd(make("bec", {"p": 1.0}, {"bits": spec("bits", 4)}), bits=x)
    assert torch.equal(out["bits"], torch.zeros(1, 4)) and torch.equal(out["llr"], torch.zeros(1, 4))
    out = fwd(make("bec", {"p": 0.0}, {"bits": spec("bits", 4)}), bits=x)
    assert torch.equal(out["llr"], (2 * x - 1) * 20.0)


def test_bernoulli_positions_edges_and_the_sparse_sampler():
    from linksim.channels.bit import bernoulli_positions

    assert bernoulli_positions(10, 1.0).tolist() == list(range(10))
    for n, p in ((10, 0.0), (0, 0.1), (0, 0.5)):  # no success possible: empty, and nothing drawn
        g = torch.Generator().manual_seed(4)
        state = g.get_state()
        out = bernoulli_positions(n, p, g)
        assert out.dtype == torch.int64 and out.numel() == 0
        if p < 0.2:
            assert torch.equal(g.get_state(), state)
    g = torch.Generator().manual_seed(3)
    dense = bernoulli_positions(12, 0.5, g)
    ref = (torch.rand(12, generator=torch.Generator().manual_seed(3)) < 0.5).nonzero().squeeze(1)
    assert torch.equal(dense, ref) and dense.dtype == torch.int64
    # sparse path: cumulative Geometric(p) gaps, minus 1 (the first success at gap - 1)
    p, n = 0.1, 50
    pos = bernoulli_positions(n, p, torch.Generator().manual_seed(9))
    m = int((n - 1 + 1) * p + 6 * math.sqrt(n * p * (1 - p)) + 16)
    gaps = torch.empty(m, dtype=torch.float64).geometric_(p, generator=torch.Generator().manual_seed(9))
    want = gaps.cumsum(0) - 1
    assert pos.dtype == torch.int64 and pos.tolist() == want[want < n].long().tolist()
    assert pos.tolist() == sorted(set(pos.tolist())) and all(0 <= v < n for v in pos.tolist())
    # a long sequence needs several rounds of gaps; each position once, the rate close to p
    big = bernoulli_positions(200000, 0.01, torch.Generator().manual_seed(1))
    assert len(set(big.tolist())) == len(big) and big.max() < 200000
    assert abs(len(big) / 200000 - 0.01) < 4 * math.sqrt(0.01 * 0.99 / 200000)


@pytest.mark.block("bsc", "bec")
def test_bit_channel_strikes_are_seeded_by_block_p_and_batch():
    from linksim.channels.bit import bernoulli_positions
    from linksim.context import derive_seed

    # at p = 0.2 exactly the dense sampler (n uniforms) is used
    g = torch.Generator().manual_seed(5)
    ref = (torch.rand(30, generator=torch.Generator().manual_seed(5)) < 0.2).nonzero().squeeze(1)
    assert torch.equal(bernoulli_positions(30, 0.2, g), ref)
    for t, p in (("bsc", 0.1), ("bec", 0.3)):
        blk = make(t, {"p": p}, {"bits": spec("bits", 40)}, name="link7")
        x = torch.zeros(3, 40)
        fwd(blk, bits=x)  # sets the batch
        b = blk.ctx.batch
        seed = derive_seed(blk.ctx.seed, "link7", p, b.split, int(b.indices[0]), b.size, b.epoch)
        want = bernoulli_positions(120, p, torch.Generator().manual_seed(seed))
        torch.manual_seed(123)  # the global generator plays no part
        assert torch.equal(blk.strikes(x), want)
        out = fwd(blk, bits=x)
        struck = out["bits"].reshape(-1) != 0 if t == "bsc" else out["llr"].reshape(-1) == 0
        assert struck.nonzero().squeeze(1).tolist() == want.tolist()


@pytest.mark.block("bsc", "bec")
def test_bit_channels_leave_out_llrs_nobody_reads():
    for t in ("bsc", "bec"):
        blk = make(t, {"p": 0.1}, {"bits": spec("bits", 8)})
        blk.wanted = {"bits", "llr"}
        assert set(fwd(blk, bits=torch.zeros(2, 8))) == {"bits", "llr"}
        blk.wanted = {"bits"}
        assert set(fwd(blk, bits=torch.zeros(2, 8))) == {"bits"}
        diff = make(t, {"p": 0.1, "differentiable": True, "in_training": True}, {"bits": spec("bits", 8)})
        assert diff.random_in_training() and diff.random_in_eval() and diff.ch is not None


@pytest.mark.block("rayleigh", "rician")
def test_fading_taps_layout_with_known_coefficients():
    blk = make("rayleigh", {"snr_db": 0.0, "coherence": "block", "block_symbols": 2}, {"x": spec("complex", 5)},
               name="fade")
    assert blk.name == "fade" and make("awgn", {"snr_db": 0.0}, {"x": spec("complex", 2)}, name="a1").name == "a1"
    blk._rayleigh = lambda n: torch.arange(n, dtype=torch.float32).to(torch.complex64)
    assert blk.taps(2, 5).real.tolist() == [[0, 0, 1, 1, 2], [3, 3, 4, 4, 5]]
    blk.p = blk.p.model_copy(update={"coherence": "symbol"})
    assert blk.taps(2, 3).real.tolist() == [[0, 1, 2], [3, 4, 5]]
    blk.p = blk.p.model_copy(update={"coherence": "sample"})
    assert blk.taps(2, 3).real.tolist() == [[0, 0, 0], [1, 1, 1]]


@pytest.mark.block("rician")
def test_rician_taps_by_hand():
    blk = make("rician", {"snr_db": 0.0, "k_factor_db": 10.0}, {"x": spec("complex", 4)})
    n = 3
    blk.fading = lambda m, t: (torch.full((m,), 1j, dtype=torch.complex64), None)  # diffuse taps = j
    h = blk._rayleigh(n)
    los, diffuse = math.sqrt(10 / 11), math.sqrt(1 / 11)
    assert h.dtype == torch.complex64
    assert torch.allclose(h, torch.full((n,), complex(los, diffuse), dtype=torch.complex64))
    blk.p = blk.p.model_copy(update={"random_los_phase": True})
    torch.manual_seed(7)
    phase = 2 * math.pi * torch.rand(n)
    torch.manual_seed(7)
    h = blk._rayleigh(n)
    want = los * torch.exp(1j * phase).to(torch.complex64) + diffuse * 1j
    assert torch.allclose(h, want.to(torch.complex64), atol=1e-6)
