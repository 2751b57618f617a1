"""Semantic encoder building blocks: networks, losses (paper Eqs. 2, 6-8), training loops and statistics."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as Fn

from linksim.semantic.losses import feature_l1, mask_l1, sparsity_loss, supcon_loss, weighted_l1
from linksim.semantic.models import MaskNet, SemanticEncoder, SmallCNN, resnet_backbone
from linksim.semantic.training import (
    EarlyStopper, activation_order, augment, compactness, extract_features, make_classifier, train_classifier,
    train_encoder,
)

torch.set_num_threads(1)


# ---------------------------------------------------------------- losses
def _supcon_naive(z, labels, t):
    n = z.shape[0]
    lab = labels.repeat(n // labels.shape[0])
    total, anchors = 0.0, 0
    for i in range(n):
        pos = [p for p in range(n) if p != i and lab[p] == lab[i]]
        if not pos:
            continue
        denom = sum(math.exp(float(z[i] @ z[a]) / t) for a in range(n) if a != i)
        total += -sum(math.log(math.exp(float(z[i] @ z[p]) / t) / denom) for p in pos) / len(pos)
        anchors += 1
    return total / anchors


@pytest.mark.parametrize("t", [0.07, 0.5])
def test_supcon_matches_naive_loop(t):
    g = torch.Generator().manual_seed(0)
    z = Fn.normalize(torch.randn(12, 5, generator=g, dtype=torch.float64), dim=1)
    labels = torch.tensor([0, 1, 2, 0, 1, 3])  # class 3 has a single image: its positive is the other view
    got = supcon_loss(z, labels, t)
    assert got.item() == pytest.approx(_supcon_naive(z, labels, t), rel=1e-9)


def test_supcon_gradient_finite_and_aligned_views_lower_loss():
    g = torch.Generator().manual_seed(1)
    base = Fn.normalize(torch.randn(8, 16, generator=g), dim=1)
    labels = torch.arange(8)
    noisy = Fn.normalize(base + 0.8 * torch.randn(8, 16, generator=g), dim=1)
    z = torch.cat([base, noisy]).requires_grad_(True)
    loss = supcon_loss(z, labels)
    loss.backward()
    assert torch.isfinite(z.grad).all()
    assert supcon_loss(torch.cat([base, base]), labels) < loss
    with pytest.raises(ValueError):
        supcon_loss(z, torch.arange(5))


def test_sparsity_losses():
    F = torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]])
    M = torch.tensor([[0.5, 1.0, 0.0], [2.0, 0.0, 1.0]])
    assert feature_l1(F).item() == pytest.approx(3.0)       # (3 + 3) / 2
    assert mask_l1(M).item() == pytest.approx(2.25)         # (1.5 + 3) / 2
    assert weighted_l1(M, F).item() == pytest.approx(0.25)  # (0.5 + 0) / 2
    assert sparsity_loss("none", F, M).item() == 0.0
    assert sparsity_loss("fs", F, None).item() == pytest.approx(3.0)
    assert sparsity_loss("ms", F, M).item() == pytest.approx(2.25)
    assert sparsity_loss("ws", F, M).item() == pytest.approx(0.25)
    with pytest.raises(ValueError):
        sparsity_loss("ms", F, None)
    with pytest.raises(ValueError):
        sparsity_loss("xx", F, M)


# ---------------------------------------------------------------- networks
def test_masknet_shape_nonnegative_shared_mlp():
    torch.manual_seed(0)
    net = MaskNet(64, hidden=16)
    fmap = torch.randn(3, 64, 4, 4)
    m = net(fmap)
    assert m.shape == (3, 64) and (m >= 0).all() and (m == 0).any()
    # shared MLP: a single C -> hidden -> C/2 MLP
    assert sum(p.numel() for p in net.parameters()) == 64 * 16 + 16 + 16 * 32 + 32
    flat = fmap.flatten(2)
    expect = torch.relu(torch.cat([net.mlp(flat.amax(2)), net.mlp(flat.mean(2))], dim=1))
    torch.testing.assert_close(m, expect)
    with torch.no_grad():
        net.mlp[2].bias.fill_(-1e3)
    assert (net(fmap) == 0).all()  # the mask can be exactly zero


def test_small_cnn_feature_map_sizes():
    torch.manual_seed(0)
    for (c, h), out_hw in [((1, 28), 4), ((3, 32), 4), ((1, 8), 1)]:
        net = SmallCNN(c, nf=32).eval()
        y = net(torch.rand(2, c, h, h))
        assert y.shape == (2, 32, out_hw, out_hw) and (y >= 0).all()


@pytest.mark.parametrize("mask", [True, False])
def test_semantic_encoder_small_cnn_28(mask):
    torch.manual_seed(0)
    enc = SemanticEncoder("small_cnn", in_ch=1, nf=64, mask=mask).eval()
    x = torch.rand(4, 1, 28, 28)
    out = enc(x)
    assert out["F"].shape == (4, 64) and out["X"].shape == (4, 64)
    assert (out["F"] >= 0).all() and (out["X"] >= 0).all()
    if mask:
        assert out["mask"].shape == (4, 64) and (out["mask"] >= 0).all()
        torch.testing.assert_close(out["X"], out["F"] * out["mask"])
    else:
        assert out["mask"] is None and out["X"] is out["F"]
    torch.testing.assert_close(enc.features(x), out["X"])


def test_semantic_encoder_resnet18_32():
    torch.manual_seed(0)
    enc = SemanticEncoder("resnet18", in_ch=3, nf=512, mask=True).eval()
    assert isinstance(enc.backbone.proj, torch.nn.Identity)  # native width, no extra 1x1 conv
    assert enc.backbone.stem[0].kernel_size == (3, 3) and enc.backbone.stem[0].stride == (1, 1)
    with torch.no_grad():
        out = enc(torch.rand(2, 3, 32, 32))
        fmap = enc.backbone(torch.rand(2, 3, 32, 32))
    assert fmap.shape == (2, 512, 4, 4)
    assert out["X"].shape == (2, 512) and (out["X"] >= 0).all()


def test_resnet_backbone_custom_width_and_errors():
    torch.manual_seed(0)
    net = resnet_backbone("resnet18", in_ch=1, nf=96).eval()
    with torch.no_grad():
        y = net(torch.rand(1, 1, 8, 8))
    assert y.shape == (1, 96, 1, 1) and (y >= 0).all()
    with pytest.raises(ValueError):
        resnet_backbone("vgg", 3, 10)
    with pytest.raises(ValueError):
        SemanticEncoder("nope")


# ---------------------------------------------------------------- augmentation / early stopping
def test_augment_deterministic_range_and_identity():
    x = (torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 255).to(torch.uint8)
    a1 = augment(x, torch.Generator().manual_seed(5))
    a2 = augment(x, torch.Generator().manual_seed(5))
    a3 = augment(x, torch.Generator().manual_seed(6))
    assert a1.shape == x.shape and a1.dtype == torch.float32
    assert a1.min() >= 0 and a1.max() <= 1
    assert torch.equal(a1, a2) and not torch.equal(a1, a3)
    ident = augment(x, torch.Generator().manual_seed(0), scale=(1, 1), ratio=(1, 1), flip_p=0.0,
                    brightness=0.0, contrast=0.0)
    torch.testing.assert_close(ident, x.float() / 255, atol=1e-5, rtol=0)
    flipped = augment(x, torch.Generator().manual_seed(0), scale=(1, 1), ratio=(1, 1), flip_p=1.0,
                      brightness=0.0, contrast=0.0)
    torch.testing.assert_close(flipped, x.float().flip(3) / 255, atol=1e-5, rtol=0)


def test_early_stopper():
    s = EarlyStopper(patience=2)
    assert [s.step(v) for v in [5.0, 4.0, 4.5, 3.0, 3.0, 3.5]] == [False, False, False, False, False, True]
    assert s.best == 3.0 and s.best_step == 3
    s = EarlyStopper(patience=1, min_delta=0.5)
    assert s.step(1.0) is False and s.step(0.7) is True


# ---------------------------------------------------------------- statistics
def test_compactness_and_activation_order():
    X = torch.tensor([
        [1.0, 0.0, 0.0, 2.0, 0.0],
        [0.5, 0.0, 3.0, 1.0, 0.0],
        [2.0, 0.0, 0.0, 0.0, 0.0],
        [1.0, 0.0, 1.0, 0.0, 0.0],
    ])
    n1, n2, p = compactness(X, threshold=0.3)
    torch.testing.assert_close(p, torch.tensor([1.0, 0.0, 0.5, 0.5, 0.0]))
    assert n1 == 3 and n2 == pytest.approx(8 / 4)
    assert compactness(X, threshold=0.5)[0] == 1  # strictly greater than the threshold
    assert activation_order(X).tolist() == [0, 2, 3, 1, 4]  # ties broken by index
    big = torch.zeros(1000, 3)
    big[:50, 0] = 1.0   # 5 %   > 4.55 %
    big[:45, 1] = 1.0   # 4.5 % < 4.55 %
    assert compactness(big)[0] == 1


# ---------------------------------------------------------------- training loops
def _digits(n=256):
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.from_numpy((d.images[:n] * (255 / 16)).round().astype(np.uint8))[:, None]
    return x, torch.from_numpy(d.target[:n]).long()


@pytest.mark.parametrize("method,sparsity,optimizer", [("cl", "ms", "adam"), ("ce", "ws", "sgd")])
def test_train_encoder_loss_decreases(method, sparsity, optimizer):
    x, y = _digits()
    torch.manual_seed(0)
    enc = SemanticEncoder("small_cnn", in_ch=1, nf=32, mask=True, widths=(8, 16, 32))
    seen = []
    res = train_encoder(enc, x, y, method=method, sparsity=sparsity, lam=1e-3, epochs_max=3, patience=5,
                        batch_size=64, seed=0, optimizer=optimizer, progress=seen.append)
    assert res["epochs"] == 3 and len(res["losses"]) == 3 and [s["epoch"] for s in seen] == [1, 2, 3]
    assert res["losses"][-1] < res["losses"][0]
    assert all(math.isfinite(v) for v in res["losses"] + res["sparse_losses"])
    assert not enc.training
    if method == "ce":
        head = torch.nn.Linear(32, 10)
        head.load_state_dict(res["head"])
    else:
        assert res["head"] is None


def test_train_encoder_reproducible_and_early_stop():
    x, y = _digits(128)
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        enc = SemanticEncoder("small_cnn", in_ch=1, nf=16, mask=False, widths=(8, 8, 16))
        runs.append(train_encoder(enc, x, y, method="cl", epochs_max=2, batch_size=64, seed=3)["losses"])
    assert runs[0] == runs[1]
    torch.manual_seed(1)
    enc = SemanticEncoder("small_cnn", in_ch=1, nf=16, mask=False, widths=(8, 8, 16))
    res = train_encoder(enc, x, y, method="ce", epochs_max=50, patience=1, lr=0.0, batch_size=64, seed=0)
    assert res["stopped"] == "patience" and res["epochs"] < 50


def test_train_classifier_and_extract_features():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 8, generator=g) * 3
    labels = torch.randint(0, 4, (400,), generator=g)
    feats = centers[labels] + 0.3 * torch.randn(400, 8, generator=g)
    for hidden, std in [(0, False), (16, True)]:
        clf = train_classifier(feats, labels, 4, hidden=hidden, epochs=60, lr=1e-2, seed=0, standardize=std)
        acc = (clf(feats).argmax(1) == labels).float().mean().item()
        assert acc > 0.95 and not clf.training
        clone = make_classifier(8, 4, hidden, std)
        clone.load_state_dict(clf.state_dict())
        torch.testing.assert_close(clone(feats), clf(feats))
    torch.manual_seed(0)
    enc = SemanticEncoder("small_cnn", in_ch=1, nf=16, mask=True, widths=(8, 8, 16))
    x, _ = _digits(40)
    X = extract_features(enc, x, batch_size=16)
    assert X.shape == (40, 16) and (X >= 0).all()


def test_train_encoder_reports_mask_collapse():
    x, y = _digits(64)
    torch.manual_seed(0)
    enc = SemanticEncoder("small_cnn", in_ch=1, nf=16, mask=True, widths=(8, 8, 16))
    with torch.no_grad():
        enc.mask_net.mlp[2].bias.fill_(-1e3)  # mask switched off everywhere -> X == 0, no gradient
    res = train_encoder(enc, x, y, method="cl", sparsity="ms", lam=1.0, epochs_max=10, batch_size=32, seed=0)
    assert res["collapsed"] and res["stopped"] == "collapsed" and res["epochs"] == 1
    assert res["n_active"] == [0.0]
