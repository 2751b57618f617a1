"""Contract tests of the learned JSCC pairs (deep JSCC, SMRC) on tiny digits graphs: a few epochs of
training, then reconstructions that beat the mean image and belong to their own sample."""
import pytest
import torch

from linksim.testing.harness import data_cfg, graph, run

DATA = data_cfg("digits", train_samples=300, test_samples=150)


def _psnr(a, b):
    return 10 * torch.log10(1 / (a - b).pow(2).flatten(1).mean(1).clamp_min(1e-10))


def _train(g, n=300, bs=50):
    from linksim.context import reseed

    reseed(0)
    g.train(None, "test", n, bs, 0)
    return g


def _mean_image():
    from linksim.data.datasets import load_split

    x, _ = load_split("digits", "train", None)
    return torch.from_numpy(x).float().div(255).mean(0)


@pytest.fixture(scope="module")
def mean_image():
    return _mean_image()


@pytest.mark.block("jscc_encoder", "jscc_decoder")
def test_deep_jscc_pair_reconstructs_its_own_sample(mean_image):
    g = _train(graph({
        "data": {"type": "dataset", "params": {"dataset": "digits"}},
        "enc": {"type": "jscc_encoder", "params": {"bandwidth_ratio": 0.25, "width": 16, "epochs": 6, "batch_size": 10,
                                                   "lr": 0.003, "train_snr_db": 10}, "inputs": {"image": "data.image"}},
        "chan": {"type": "awgn", "params": {"snr_db": 20.0}, "inputs": {"x": "enc.symbols"}},
        "dec": {"type": "jscc_decoder", "inputs": {"y": "chan.y"}}}, data=DATA))
    v = run(g, 100)
    x, s, xh = v[("data", "image")], v[("enc", "symbols")], v[("dec", "image")]
    assert s.shape == (100, 16) and torch.allclose(s.abs().pow(2).mean(1), torch.ones(100), atol=1e-4)
    p = _psnr(xh, x)
    base = _psnr(mean_image.expand_as(x), x)
    assert float(p.mean()) > float(base.mean()) + 1.0, (float(p.mean()), float(base.mean()))
    # each reconstruction is of its own image: closer to it than to the neighbouring sample's image
    assert float((p > _psnr(xh, torch.roll(x, 1, 0))).float().mean()) > 0.8
    assert float(xh.min()) >= 0 and float(xh.max()) <= 1


@pytest.mark.block("smrc_encoder", "smrc_decoder")
def test_smrc_layers_refine_and_classify(mean_image):
    g = _train(graph({
        "data": {"type": "dataset", "params": {"dataset": "digits"}},
        "enc": {"type": "smrc_encoder", "params": {"symbols": [2, 30], "width": 16, "epochs": 8, "batch_size": 10,
                                                   "lr": 0.003, "train_snr_db": 15, "alpha": [0.3, 1.0],
                                                   "beta": [0.01, {"important_classes": [0, 1], "weight": 0.02,
                                                                   "other_weight": 0.01}]},
                "inputs": {"image": "data.image", "label": "data.label"}},
        "chan": {"type": "awgn", "params": {"snr_db": 20.0}, "inputs": {"x": "enc.symbols"}},
        "dec1": {"type": "smrc_decoder", "params": {"layer": 1}, "inputs": {"y": "chan.y", "label": "data.label"}},
        "dec2": {"type": "smrc_decoder", "params": {"layer": 2}, "inputs": {"y": "chan.y", "label": "data.label"}}}, data=DATA))
    v = run(g, 150)
    x, y = v[("data", "image")], v[("data", "label")]
    s = v[("enc", "symbols")]
    assert s.shape == (150, 32)
    for lo, hi in ((0, 2), (2, 32)):  # every sub-block has unit average energy
        assert torch.allclose(s[:, lo:hi].abs().pow(2).mean(1), torch.ones(150), atol=1e-4)
    p1, p2 = _psnr(v[("dec1", "image")], x), _psnr(v[("dec2", "image")], x)
    base = float(_psnr(mean_image.expand_as(x), x).mean())
    assert float(p2.mean()) > float(p1.mean()) + 0.5 and float(p2.mean()) > base + 1.0
    assert float((p2 > _psnr(v[("dec2", "image")], torch.roll(x, 1, 0))).float().mean()) > 0.8
    # layer 1: all 10 classes; layer 2: classes 0, 1 and 'other' (2)
    assert torch.equal(v[("dec1", "label")], y)
    assert torch.equal(v[("dec2", "label")], torch.where(y < 2, y, torch.full_like(y, 2)))
    acc1 = float((v[("dec1", "logits")].argmax(1) == y).float().mean())
    lab2 = v[("dec2", "label")]
    acc2 = float((v[("dec2", "logits")].argmax(1) == lab2).float().mean())
    assert acc1 > 0.3, acc1  # chance 0.1
    assert acc2 > float((lab2 == 2).float().mean()) + 0.03, acc2  # beats always answering 'other'


@pytest.mark.block("jscc_decoder")
def test_jscc_decoder_fine_tuning_adapts_to_its_channel(mean_image):
    """An encoder trained at 20 dB, received at 0 dB: the decoder fine-tuned on the 0 dB training symbols
    (channel with in_training) reconstructs the same received symbols better than the companion decoder."""
    g = _train(graph({
        "data": {"type": "dataset", "params": {"dataset": "digits"}},
        "enc": {"type": "jscc_encoder", "params": {"bandwidth_ratio": 0.25, "width": 16, "epochs": 4, "batch_size": 10,
                                                   "lr": 0.003, "train_snr_db": 20}, "inputs": {"image": "data.image"}},
        "chan": {"type": "awgn", "params": {"snr_db": 0.0, "in_training": True}, "inputs": {"x": "enc.symbols"}},
        "dec": {"type": "jscc_decoder", "inputs": {"y": "chan.y"}},
        "ft": {"type": "jscc_decoder", "params": {"finetune_epochs": 3, "lr": 0.001, "batch_size": 10},
               "inputs": {"y": "chan.y", "image": "data.image"}}}, data=DATA))
    v = run(g, 150)
    x = v[("data", "image")]
    p0, p1 = float(_psnr(v[("dec", "image")], x).mean()), float(_psnr(v[("ft", "image")], x).mean())
    assert p1 > p0 + 0.3, (p1, p0)
