"""Contract tests of the SSCC blocks (image codec encoder / decoder, codec statistics) on Fashion-MNIST
images with the JPEG codec (Pillow)."""
import numpy as np
import pytest
import torch

from linksim.testing.harness import fit, fwd, make, sink, spec


@pytest.fixture(scope="module")
def images():
    from linksim.data.datasets import load_split

    x, _ = load_split("fashion_mnist", "test", None)
    return torch.from_numpy(x[:8]).float() / 255.0


def _psnr(a, b):
    return 10 * torch.log10(1 / (a - b).pow(2).flatten(1).mean(1).clamp_min(1e-10))


def _pair(images, budget=3000, codec="jpeg"):
    enc = make("image_codec_encoder", {"codec": codec, "budget_bits": budget}, {"image": spec("image", 1, 28, 28)})
    fit(enc, image=images)
    dec = make("image_codec_decoder", {}, {"bits": enc.out_specs["bits"], "ok": spec("real", 1)})
    return enc, dec


@pytest.mark.block("image_codec_encoder")
def test_codec_encoder_payload_fits_the_budget_and_decodes_with_the_codec(images):
    from baselines.sscc import strip_padding

    enc, _ = _pair(images)
    out = fwd(enc, image=images)
    bits, ok, pb, q = out["bits"], out["ok"], out["payload_bits"], out["quality"]
    assert bits.shape == (8, 3000) and torch.equal(ok, torch.ones(8, 1))
    assert bool((pb > 0).all() and (pb <= 3000).all()) and bool((q >= 0).all())
    assert len(set(pb.reshape(-1).tolist())) > 1  # image-dependent stream lengths
    link = enc.out_specs["bits"].meta["sscc"]
    for i in range(8):
        row = bits[i].numpy().astype(np.uint8)
        data = strip_padding(np.packbits(row).tobytes())
        assert 8 * len(data) <= pb[i].item() <= 8 * len(data) + 8
        img = link.to_image(link.codec.decode(data, link.hwc))
        assert float(_psnr(img[None], images[i:i + 1])) > 18  # the stream is this image, at a usable quality
    # a tiny budget fits nothing: ok 0, quality -1
    small = make("image_codec_encoder", {"codec": "jpeg", "budget_bits": 64}, {"image": spec("image", 1, 28, 28)})
    fit(small, image=images)
    o = fwd(small, image=images[:3])
    assert torch.equal(o["ok"], torch.zeros(3, 1)) and torch.equal(o["quality"], -torch.ones(3, 1))


@pytest.mark.block("image_codec_decoder", "image_codec_encoder")
def test_codec_decoder_reconstructs_and_falls_back_to_the_mean_image(images):
    enc, dec = _pair(images)
    bits = fwd(enc, image=images)["bits"]
    ok = torch.tensor([[1.0], [1], [0], [1], [1], [1], [1], [0]])
    bad = bits.clone()
    bad[5] = 1.0  # an all-ones payload: not a JPEG stream
    out = fwd(dec, bits=bad, ok=ok)
    assert out["fallback"].reshape(-1).tolist() == [0, 0, 1, 0, 0, 1, 0, 1]
    mean = images.double().mean(0).float()
    for i in (2, 5, 7):
        assert torch.allclose(out["image"][i], mean)
    good = [0, 1, 3, 4, 6]
    p = _psnr(out["image"][good], images[good])
    assert float(p.min()) > 18
    # each output is its own image: better than the neighbour's
    assert bool((p > _psnr(out["image"][good], images[[7, 0, 2, 3, 5]])).all())


@pytest.mark.block("codec_stats")
def test_codec_stats_rates_and_means():
    blk = make("codec_stats", {}, {k: spec("real", 1) for k in ("fallback", "fit", "payload_bits", "quality")})
    fb = torch.tensor([[0.0], [1], [0], [1]])
    fitted = torch.tensor([[1.0], [1], [1], [0]])
    pb = torch.tensor([[1000.0], [2000], [1500], [0]])
    q = torch.tensor([[40.0], [60], [50], [-1]])
    r = sink(blk, {"fallback": fb[:2], "fit": fitted[:2], "payload_bits": pb[:2], "quality": q[:2]},
             {"fallback": fb[2:], "fit": fitted[2:], "payload_bits": pb[2:], "quality": q[2:]})
    assert r["fallback_rate"].value == pytest.approx(0.5)
    assert r["codec_fit_rate"].value == pytest.approx(0.75)
    assert r["payload_bits"].value == pytest.approx(1500)  # over fitted images only
    assert r["codec_quality"].value == pytest.approx(50)
