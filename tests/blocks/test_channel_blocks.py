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
