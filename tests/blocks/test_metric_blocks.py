"""Contract tests of the metric sinks: values against direct computations on small known inputs."""
import math

import pytest
import torch

from linksim.testing.harness import make, sink, spec


@pytest.mark.block("ber")
def test_ber_counts_errors_per_bit():
    blk = make("ber", {}, {"bits": spec("bits", 10), "bits_hat": spec("bits", 10)})
    b = torch.zeros(3, 10)
    bh = b.clone()
    bh[0, :3] = 1
    bh[2, 9] = 1
    r = sink(blk, {"bits": b, "bits_hat": bh}, {"bits": b[:1], "bits_hat": b[:1]})["ber"]
    assert r.value == pytest.approx(4 / 40) and r.n == 40
    assert blk.error_counts() == {"ber": 4}


@pytest.mark.block("bler")
def test_bler_counts_blocks_with_any_error():
    blk = make("bler", {}, {"bits": spec("bits", 8), "bits_hat": spec("bits", 8)})
    b = torch.zeros(4, 8)
    bh = b.clone()
    bh[0, :5] = 1
    bh[3, 7] = 1
    r = sink(blk, {"bits": b, "bits_hat": bh})["bler"]
    assert r.value == pytest.approx(0.5) and r.n == 4
    blk = make("bler", {"block_bits": 4}, {"bits": spec("bits", 8), "bits_hat": spec("bits", 8)})
    r = sink(blk, {"bits": b, "bits_hat": bh})["bler"]
    assert r.value == pytest.approx(3 / 8) and r.n == 8  # blocks [0,0:4], [0,4:8], [3,4:8]


@pytest.mark.block("accuracy")
def test_accuracy_and_macro_figures():
    blk = make("accuracy", {"macro": True}, {"label": spec("label", num_classes=3), "pred": spec("real", 3)})
    y = torch.tensor([0, 0, 1, 1, 2, 2, 2, 0])
    yh = torch.tensor([0, 1, 1, 1, 2, 0, 2, 0])
    logits = torch.nn.functional.one_hot(yh, 3).float() * 2 - 0.5
    r = sink(blk, {"label": y[:5], "pred": logits[:5]}, {"label": y[5:], "pred": logits[5:]})
    assert r["accuracy"].value == pytest.approx(6 / 8)
    # recall per class: 2/3, 2/2, 2/3; precision per predicted class: 2/3, 2/3, 2/2
    assert r["recall_macro"].value == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    assert r["precision_macro"].value == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    lab = make("accuracy", {}, {"label": spec("label", num_classes=3), "pred": spec("label", num_classes=3)})
    assert sink(lab, {"label": y, "pred": yh})["accuracy"].value == pytest.approx(0.75)


@pytest.mark.block("psnr")
def test_psnr_is_the_mean_of_per_image_psnr():
    x = torch.full((2, 1, 4, 4), 0.5)
    xh = x.clone()
    xh[0] += 0.1  # mse 0.01 -> 20 dB
    xh[1, 0, 0, 0] += 0.4  # mse 0.16 / 16 = 0.01 -> 20 dB ... make it different:
    xh[1, 0, 0, 1] += 0.4  # mse 0.02 -> 16.99 dB
    blk = make("psnr", {}, {"image": spec("image", 1, 4, 4), "image_hat": spec("image", 1, 4, 4)})
    r = sink(blk, {"image": x, "image_hat": xh})["psnr_db"]
    assert r.value == pytest.approx((20 + 10 * math.log10(1 / 0.02)) / 2, abs=1e-4)


@pytest.mark.block("ssim")
def test_ssim_identity_inversion_and_noise_order():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 1, 16, 16, generator=g)
    blk = make("ssim", {}, {"image": spec("image", 1, 16, 16), "image_hat": spec("image", 1, 16, 16)})
    assert sink(blk, {"image": x, "image_hat": x})["ssim"].value == pytest.approx(1.0, abs=1e-5)
    inv = sink(blk, {"image": x, "image_hat": 1 - x})["ssim"].value
    assert inv < -0.5  # anti-correlated structure
    small = sink(blk, {"image": x, "image_hat": x + 0.05 * torch.randn(x.shape, generator=g)})["ssim"].value
    big = sink(blk, {"image": x, "image_hat": x + 0.3 * torch.randn(x.shape, generator=g)})["ssim"].value
    assert 1 > small > big + 0.2 > 0.2
    # the mean of per-image values: a batch of identical and inverted images averages them
    both = sink(blk, {"image": x[:2], "image_hat": torch.stack([x[0], 1 - x[1]])})["ssim"].value
    one = sink(blk, {"image": x[1:2], "image_hat": 1 - x[1:2]})["ssim"].value
    assert both == pytest.approx((1 + one) / 2, abs=1e-5)


@pytest.mark.block("ber")
def test_ber_interval_counts_frames():
    """The interval's unit is the frame: frames and the sum of squared per-frame errors are counted."""
    blk = make("ber", {}, {"bits": spec("bits", 10), "bits_hat": spec("bits", 10)})
    b = torch.zeros(3, 10)
    bh = b.clone()
    bh[0, :3] = 1
    bh[2, 9] = 1
    st = sink(blk, {"bits": b, "bits_hat": bh}, {"bits": b[:2], "bits_hat": bh[:2]})["ber"].stat
    # per-frame errors 3, 0, 1 then 3, 0: 7 errors in 50 bits, 5 frames, 9 + 1 + 9 = 19
    assert (st.errors, st.trials, st.frames, st.frame_sq) == (7, 50, 5, 19)


@pytest.mark.block("psnr")
def test_psnr_clamps_the_reconstruction_to_the_pixel_range():
    x = torch.full((2, 1, 2, 2), 0.5)
    xh = torch.stack([torch.full((1, 2, 2), 1.5), torch.full((1, 2, 2), -0.5)])  # clamped: errors of 0.5
    blk = make("psnr", {}, {"image": spec("image", 1, 2, 2), "image_hat": spec("image", 1, 2, 2)})
    assert sink(blk, {"image": x, "image_hat": xh})["psnr_db"].value == pytest.approx(10 * math.log10(4), abs=1e-4)
