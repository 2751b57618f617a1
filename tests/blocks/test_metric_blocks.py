"""Contract tests of the metric sinks: values against direct computations on small known inputs."""
import math

import numpy as np
import pytest
import torch

from linksim.testing.harness import make, sink, spec


def _ssim_by_hand(x, y):
    """Wang et al. (2004) SSIM of two [H, W] float64 arrays: 11 x 11 Gaussian window (sigma 1.5, normalised),
    C1 = 0.01^2, C2 = 0.03^2 (data range 1), averaged over every pixel, the image reflect-padded by 5 (as
    torchmetrics 1.9 does: it does not crop the padded border from the SSIM map)."""
    x, y = np.pad(x, 5, mode="reflect"), np.pad(y, 5, mode="reflect")
    t = np.arange(-5, 6)
    g = np.exp(-t**2 / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    vals = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            a, b = x[i:i + 11, j:j + 11], y[i:i + 11, j:j + 11]
            ma, mb = (w * a).sum(), (w * b).sum()
            va, vb = (w * a * a).sum() - ma**2, (w * b * b).sum() - mb**2
            cab = (w * a * b).sum() - ma * mb
            vals.append((2 * ma * mb + 1e-4) * (2 * cab + 9e-4) / ((ma**2 + mb**2 + 1e-4) * (va + vb + 9e-4)))
    return float(np.mean(vals))


@pytest.mark.block("ssim")
def test_ssim_is_the_standard_gaussian_window_one_by_hand():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(3, 1, 20, 17, generator=g)
    y = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    blk = make("ssim", {}, {"image": spec("image", 1, 20, 17), "image_hat": spec("image", 1, 20, 17)})
    want = np.mean([_ssim_by_hand(x[i, 0].double().numpy(), y[i, 0].double().numpy()) for i in range(3)])
    assert sink(blk, {"image": x, "image_hat": y})["ssim"].value == pytest.approx(want, abs=2e-5)
    with pytest.raises(PortError, match=r"needs images of at least 6 x 6 pixels"):
        make("ssim", {}, {"image": spec("image", 1, 5, 16), "image_hat": spec("image", 1, 5, 16)})
    make("ssim", {}, {"image": spec("image", 1, 6, 6), "image_hat": spec("image", 1, 6, 6)})  # the smallest


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


# ------------------------------------------------------------ issue 17: wiring errors and exact counters
from linksim.errors import PortError  # noqa: E402


@pytest.mark.block("ber", "bler")
def test_bit_error_rates_reject_differently_shaped_ports():
    for t in ("ber", "bler"):
        with pytest.raises(PortError) as e:
            make(t, {}, {"bits": spec("bits", 10), "bits_hat": spec("bits", 2, 5)})
        assert str(e.value) == "bits bits[10] and bits_hat bits[2, 5] differ in shape"
    with pytest.raises(PortError) as e:
        make("bler", {"block_bits": 4}, {"bits": spec("bits", 10), "bits_hat": spec("bits", 10)})
    assert str(e.value) == "10 bits per sample is not a multiple of block_bits=4"
    assert make("bler", {"block_bits": 5}, {"bits": spec("bits", 2, 5), "bits_hat": spec("bits", 2, 5)}).bb == 5
    assert make("bler", {}, {"bits": spec("bits", 2, 5), "bits_hat": spec("bits", 2, 5)}).bb == 10
    assert make("ber", {}, {"bits": spec("bits", 2, 5), "bits_hat": spec("bits", 2, 5)}).out_specs == {}


@pytest.mark.block("bler")
def test_bler_frames_and_squares_per_sample_and_reset():
    blk = make("bler", {"block_bits": 2}, {"bits": spec("bits", 2, 3), "bits_hat": spec("bits", 2, 3)})
    b = torch.zeros(3, 2, 3)
    bh = b.clone()
    bh[0, 0, 0] = bh[0, 1, 2] = 1  # sample 0: blocks 0 and 2 (of 3 two-bit blocks) wrong
    bh[2, 0, 1] = bh[2, 0, 2] = 1  # sample 2: blocks 0 and 1 wrong
    bh[1, 1, 1] = 1                 # sample 1: block 2 wrong
    r = sink(blk, {"bits": b, "bits_hat": bh}, {"bits": b[:1], "bits_hat": bh[:1]})["bler"]
    st = r.stat
    # per-sample block errors 2, 1, 2 then 2: 7 of 12 blocks, 4 frames, 4 + 1 + 4 + 4 = 13
    assert (st.errors, st.trials, st.frames, st.frame_sq) == (7, 12, 4, 13)
    assert r.value == pytest.approx(7 / 12) and r.n == 12 and blk.error_counts() == {"bler": 7}
    blk.reset()
    assert (blk.err, blk.tot, blk.frames, blk.sq) == (0, 0, 0, 0)
    st = sink(blk, {"bits": b[1:2], "bits_hat": bh[1:2]})["bler"].stat
    assert (st.errors, st.trials, st.frames, st.frame_sq) == (1, 3, 1, 1)


@pytest.mark.block("ber")
def test_ber_of_multi_dimensional_samples_counts_every_bit():
    blk = make("ber", {}, {"bits": spec("bits", 2, 2), "bits_hat": spec("bits", 2, 2)})
    b = torch.tensor([[[1.0, 0.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 1.0]]])
    bh = torch.tensor([[[0.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]])
    st = sink(blk, {"bits": b, "bits_hat": bh})["ber"].stat
    assert (st.errors, st.trials, st.frames, st.frame_sq) == (5, 8, 2, 4 + 9)
    assert blk.error_counts() == {"ber": 5}


@pytest.mark.block("accuracy")
def test_accuracy_wiring_errors_and_class_count():
    with pytest.raises(PortError) as e:
        make("accuracy", {}, {"label": spec("label", num_classes=3), "pred": spec("real", 2, 3)})
    assert str(e.value) == "class scores must be a vector, got real[2, 3]"
    with pytest.raises(PortError) as e:
        make("accuracy", {}, {"label": spec("label"), "pred": spec("label")})
    assert str(e.value) == "number of classes unknown"
    assert make("accuracy", {}, {"label": spec("label"), "pred": spec("real", 4)}).C == 4  # from the scores
    assert make("accuracy", {}, {"label": spec("label", num_classes=5), "pred": spec("real", 4)}).C == 5
    assert make("accuracy", {}, {"label": spec("label", num_classes=5), "pred": spec("label")}).out_specs == {}


@pytest.mark.block("accuracy")
def test_accuracy_counts_out_of_range_predictions_and_names_the_scheme():
    blk = make("accuracy", {"name": "fused"}, {"label": spec("label", num_classes=3), "pred": spec("label")})
    y = torch.tensor([0, 2, 2, 1, 0])
    yh = torch.tensor([0, -1, 5, 1, 0])  # -1 (no vote) -> class 0, 5 -> class 2
    r = sink(blk, {"label": y.reshape(5, 1), "pred": yh})
    assert list(r) == ["accuracy"]
    acc = r["accuracy"]
    assert acc.value == pytest.approx(4 / 5) and acc.n == 5 and acc.labels == {"scheme": "fused"}
    assert (acc.stat.errors, acc.stat.trials, acc.stat.success) == (1, 5, True)
    assert blk.error_counts() == {"accuracy": 1}
    blk.reset()
    assert blk.y == [] and blk.yh == [] and blk.wrong == 0


@pytest.mark.block("accuracy")
def test_macro_terms_and_rows():
    from linksim.metrics.classification import macro_terms

    hit = torch.tensor([True, False, True, True])
    group = torch.tensor([0, 0, 1, 2])
    # N * hit / (C * n_group): 4 / (3 * 2), 0, 4 / 3, 4 / 3 -> mean (2/3 + 4/3 + 4/3) / 4 = 5/6 = (1/2 + 1 + 1) / 3
    t = macro_terms(hit, group, 3)
    assert t.dtype == torch.float64 and torch.allclose(t, torch.tensor([2 / 3, 0.0, 4 / 3, 4 / 3], dtype=torch.float64))
    assert float(t.mean()) == pytest.approx(5 / 6)
    assert macro_terms(torch.tensor([True]), torch.tensor([0]), 4).tolist() == [0.25]  # absent classes count
    blk = make("accuracy", {"macro": True}, {"label": spec("label", num_classes=3), "pred": spec("real", 3)})
    y = torch.tensor([0, 0, 1, 2])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 2]), 3).float()
    r = sink(blk, {"label": y, "pred": logits})
    assert list(r) == ["accuracy", "recall_macro", "precision_macro"]
    assert r["recall_macro"].value == pytest.approx((1 / 2 + 1 + 1) / 3)
    assert r["precision_macro"].value == pytest.approx((1 + 1 / 2 + 1) / 3)
    assert r["recall_macro"].n == 4 and r["recall_macro"].stat.count == 4
    assert r["recall_macro"].stat.total == pytest.approx(4 * (1 / 2 + 1 + 1) / 3)
    assert r["precision_macro"].stat.total == pytest.approx(4 * (1 + 1 / 2 + 1) / 3)


@pytest.mark.block("psnr", "ssim")
def test_image_metrics_wiring_labels_and_limits():
    for t in ("psnr", "ssim"):
        with pytest.raises(PortError) as e:
            make(t, {}, {"image": spec("image", 1, 4, 4), "image_hat": spec("image", 1, 4, 5)})
        assert str(e.value) == "image image[1, 4, 4] and image_hat image[1, 4, 5] differ in shape"
    x = torch.full((2, 1, 4, 4), 0.25)
    blk = make("psnr", {"name": "jpeg"}, {"image": spec("image", 1, 4, 4), "image_hat": spec("image", 1, 4, 4)})
    r = sink(blk, {"image": x, "image_hat": x})["psnr_db"]
    assert r.value == pytest.approx(100.0) and r.labels == {"scheme": "jpeg"} and r.n == 2  # mse floored at 1e-10
    blk = make("psnr", {}, {"image": spec("image", 1, 4, 4), "image_hat": spec("image", 1, 4, 4)})
    r = sink(blk, {"image": x[:1], "image_hat": x[:1] + 0.5})["psnr_db"]  # error 0.5 everywhere
    assert r.value == pytest.approx(10 * math.log10(4), abs=1e-5) and r.labels == {}
    s = make("ssim", {"name": "a"}, {"image": spec("image", 1, 6, 6), "image_hat": spec("image", 1, 6, 6)})
    r = sink(s, {"image": torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(0)).double(),
                 "image_hat": torch.full((2, 1, 6, 6), 2.0)})  # clamped to 1; 6 < 7: 3x3 window
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    x6 = torch.rand(2, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    ref = ssim(torch.ones(2, 1, 6, 6), x6, data_range=1.0, reduction="none", kernel_size=3)
    assert r["ssim"].value == pytest.approx(float(ref.mean()), abs=1e-6) and r["ssim"].labels == {"scheme": "a"}
    assert r["ssim"].n == 2


@pytest.mark.block("accuracy")
def test_accuracy_accumulates_batches_clamps_no_votes_and_keeps_the_float32_value():
    blk = make("accuracy", {}, {"label": spec("label", num_classes=3), "pred": spec("label", num_classes=3)})
    y1, yh1 = torch.tensor([0, 1, 2]), torch.tensor([-1, 1, 1])  # no vote (-1) counts as class 0: a hit
    y2, yh2 = torch.tensor([2, 2, 0]), torch.tensor([2, 0, 0])
    r = sink(blk, {"label": y1, "pred": yh1}, {"label": y2, "pred": yh2})["accuracy"]
    assert blk.error_counts() == {"accuracy": 2}  # one error in each batch
    assert r.labels == {} and (r.stat.errors, r.stat.trials) == (2, 6)
    assert r.value == float(torch.tensor(4 / 6, dtype=torch.float32))  # float32 mean, as earlier runs printed
    assert r.value != 1 - 2 / 6
    named = make("accuracy", {"macro": True, "name": "s1"},
                 {"label": spec("label", num_classes=3), "pred": spec("label", num_classes=3)})
    rows = sink(named, {"label": y1, "pred": yh1})
    assert [m.labels for m in rows.values()] == [{"scheme": "s1"}] * 3


@pytest.mark.block("ssim")
def test_ssim_clamps_negative_reconstructions_to_zero():
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    blk = make("ssim", {}, {"image": spec("image", 1, 8, 8), "image_hat": spec("image", 1, 8, 8)})
    neg = sink(blk, {"image": x, "image_hat": torch.full((1, 1, 8, 8), -3.0)})["ssim"].value
    zero = sink(blk, {"image": x, "image_hat": torch.zeros(1, 1, 8, 8)})["ssim"].value
    assert neg == zero
