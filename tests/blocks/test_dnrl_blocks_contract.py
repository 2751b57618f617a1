"""Contract tests of the DNRL path (paper 000): dataset source, semantic encoder, feature quantizer and
dequantizer, decision bits, classifier, fusion centres, and the representation analyses."""
import pytest
import torch

from linksim.context import RunContext
from linksim.testing.harness import fit, fwd, make, sink, spec

C = 10


def blobs(n, d=16, seed=0, noise=0.35):
    """Non-negative features whose first C dimensions carry the class: x = relu(onehot + noise)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, C, (n,), generator=g)
    x = torch.zeros(n, d)
    x[torch.arange(n), y] = 1.0
    return (x + noise * torch.randn(n, d, generator=g)).clamp_min(0), y


LABEL = spec("label", num_classes=C, class_names=[str(c) for c in range(C)])


@pytest.mark.block("dataset")
def test_dataset_source_emits_the_split_at_the_batch_indices():
    from linksim.data.datasets import load_split

    blk = make("dataset", {"dataset": "digits"})
    assert blk.out_specs["image"].shape == (1, 8, 8) and blk.out_specs["label"].meta["num_classes"] == 10
    x, y = load_split("digits", "test", None)
    out = fwd(blk, n=12)
    assert torch.equal(out["image"], torch.from_numpy(x[:12]).float() / 255.0)
    assert torch.equal(out["label"], torch.from_numpy(y[:12]).long())
    blk.ctx.batch.indices = torch.tensor([5, 3, 40])
    assert torch.equal(blk.forward()["label"], torch.from_numpy(y[[5, 3, 40]]).long())


@pytest.mark.block("label_bits")
def test_label_bits_msb_first():
    blk = make("label_bits", {}, {"pred": LABEL})
    assert blk.out_specs["bits"].shape == (4,)
    out = fwd(blk, pred=torch.tensor([0, 1, 6, 9]))["bits"]
    assert out.tolist() == [[0, 0, 0, 0], [0, 0, 0, 1], [0, 1, 1, 0], [1, 0, 0, 1]]


@pytest.mark.block("bits_label", "label_bits")
def test_bits_label_inverts_and_flags_invalid_words():
    tx = make("label_bits", {}, {"pred": LABEL})
    rx = make("bits_label", {}, {"bits": tx.out_specs["bits"]})
    y = torch.tensor([3, 0, 9, 7, 1])
    assert torch.equal(fwd(rx, bits=fwd(tx, pred=y)["bits"])["pred"], y)
    bad = torch.tensor([[1, 1, 1, 1], [1, 0, 1, 0], [0, 1, 0, 1.0]])  # 15, 10 (>= C) -> -1; 5
    assert fwd(rx, bits=bad)["pred"].tolist() == [-1, -1, 5]


@pytest.mark.block("feature_sum")
def test_feature_sum_adds_the_nodes():
    blk = make("feature_sum", {}, {"features": [spec("real", 3)] * 3})
    a = torch.arange(6.0).reshape(2, 3)
    out = fwd(blk, features=[a, 10 * a, -a + 1])["features"]
    assert torch.equal(out, 10 * a + 1)


@pytest.mark.block("majority_vote")
def test_majority_vote_ties_and_invalid():
    blk = make("majority_vote", {}, {"pred": [LABEL] * 3})
    p = [torch.tensor([1, 2, 4, -1, 5]), torch.tensor([1, 3, 5, -1, -1]), torch.tensor([2, 3, 6, -1, 12])]
    # majority 1; majority 3; three-way tie -> first node's 4; no valid vote -> 0; one valid vote 5
    assert fwd(blk, pred=p)["pred"].tolist() == [1, 3, 4, 0, 5]


@pytest.mark.block("feature_quantizer", "feature_dequantizer")
@pytest.mark.parametrize("scheme,K,n", [("float", None, 32), ("scalar", None, 8), ("maxamp", 3, 8),
                                        ("maxpro", 4, 8), ("maxproamp", 2, 8)])
def test_feature_quantizer_round_trip(scheme, K, n):
    x, _ = blobs(300, seed=1)
    params = {"scheme": scheme, "K": K, "n": n, **({"maxpro_size": 6} if scheme == "maxproamp" else {})}
    q = make("feature_quantizer", params, {"features": spec("real", 16)})
    fit(q, features=x)
    dq = make("feature_dequantizer", {}, {"bits": q.out_specs["bits"]})
    xt, _ = blobs(20, seed=2)
    xt = xt + 1e-3 * torch.arange(16)  # no ties among the zeros of a sample
    bits = fwd(q, features=xt)["bits"]
    assert bits.shape == (20, q.codec.payload_bits()) and set(bits.unique().tolist()) <= {0.0, 1.0}
    out = fwd(dq, bits=bits)
    xh = out["features"]
    assert torch.equal(out["valid"], torch.ones(20))
    if scheme == "float":
        assert torch.equal(xh, xt)
    elif scheme == "scalar":  # 8-bit uniform levels on [0, vmax]: error at most half a step (clipped at vmax)
        step = torch.as_tensor(q.codec.vmax) / 255
        assert bool(((xh - xt.clamp(max=torch.as_tensor(q.codec.vmax))).abs() <= step / 2 + 1e-6).all())
    else:
        # the kept positions carry values close to the input (8-bit quantile levels), the others are 0
        kept = xh != 0
        assert bool((kept.sum(1) <= max(K, 6)).all()) and bool(kept.any(1).all())
        assert float((xh[kept] - xt[kept]).abs().max()) < 0.1
        if scheme == "maxamp":  # only the K largest of each sample (a value may quantise to 0), the largest kept
            top = torch.zeros_like(kept).scatter_(1, torch.topk(xt, K, 1).indices, True)
            assert not bool((kept & ~top).any()) and torch.equal(xh.argmax(1), xt.argmax(1))


@pytest.mark.block("feature_dequantizer")
def test_feature_dequantizer_flags_corrupted_index_words():
    from linksim.quantizers.codec import FeatureCodec

    x, _ = blobs(200, d=16, seed=3)
    q = make("feature_quantizer", {"scheme": "maxamp", "K": 2, "n": 4}, {"features": spec("real", 16)})
    fit(q, features=x)
    codec = q.codec
    assert isinstance(codec, FeatureCodec)
    bits = codec.encode(x[:6])
    ib = codec.index_bits  # C(16, 2) = 120 < 128: all-ones index word is invalid
    bits[2, :ib] = 1
    dq = make("feature_dequantizer", {}, {"bits": q.out_specs["bits"]})
    out = fwd(dq, bits=bits)
    assert out["valid"].tolist() == [1, 1, 0, 1, 1, 1]
    assert torch.equal(out["features"][2], torch.zeros(16))
    ref, _ = codec.decode(bits)
    assert torch.equal(out["features"], ref)


@pytest.mark.block("classifier")
def test_classifier_learns_separable_classes():
    x, y = blobs(600, seed=4, noise=0.2)
    blk = make("classifier", {"epochs": 30, "seed": 0, "batch_size": 64, "lr": 0.05}, {"features": spec("real", 16), "label": LABEL})
    fit(blk, features=x, label=y)
    xt, yt = blobs(300, seed=5, noise=0.2)
    out = fwd(blk, features=xt)
    assert torch.equal(out["pred"], out["logits"].argmax(-1))
    acc = float((out["pred"] == yt).float().mean())
    assert acc > 0.9  # chance 0.1


def _digits(n_train=400, n_test=200):
    from linksim.data.datasets import load_split

    x, y = load_split("digits", "train", None)
    xt, yt = load_split("digits", "test", None)
    f = lambda a: torch.from_numpy(a).float() / 255.0  # noqa: E731
    return f(x[:n_train]), torch.from_numpy(y[:n_train]).long(), f(xt[:n_test]), torch.from_numpy(yt[:n_test]).long()


def _centroid_accuracy(ftr, ytr, fte, yte):
    m = torch.stack([ftr[ytr == c].mean(0) for c in range(C)])
    m = m / m.norm(dim=1, keepdim=True).clamp_min(1e-9)
    pred = (fte / fte.norm(dim=1, keepdim=True).clamp_min(1e-9) @ m.T).argmax(1)
    return float((pred == yte).float().mean())


@pytest.mark.block("semantic_encoder")
def test_semantic_encoder_trained_features_separate_classes():
    x, y, xt, yt = _digits()
    params = {"nf": 32, "method": "ce", "sparsity": "ms", "lam": 1e-4, "epochs": 10, "patience": 15,
              "batch_size": 32, "lr": 3e-3, "seed": 0}
    specs = {"image": spec("image", 1, 8, 8), "label": LABEL}
    blk = fit(make("semantic_encoder", params, specs), image=x, label=y)
    ftr, fte = fwd(blk, image=x)["features"], fwd(blk, image=xt)["features"]
    assert fte.shape == (200, 32) and float(fte.min()) >= 0
    acc = _centroid_accuracy(ftr, y, fte, yt)
    untrained = make("semantic_encoder", params, specs)
    untrained._build()
    acc0 = _centroid_accuracy(fwd(untrained, image=x)["features"], y, fwd(untrained, image=xt)["features"], yt)
    assert acc > 0.8 and acc > acc0 + 0.1, (acc, acc0)


@pytest.mark.block("compactness")
def test_compactness_counts_active_features():
    x = torch.zeros(100, 6)
    x[:, 0] = 1.0          # always active
    x[:50, 1] = 2.0        # half of the samples
    x[:4, 2] = 1.0         # 4 % < 4.55 %: not counted by N1
    x[:5, 3] = 1.0         # 5 % > 4.55 %
    blk = make("compactness", {}, {"features": spec("real", 6)})
    r = sink(blk, {"features": x[:30]}, {"features": x[30:]})
    assert r["n1_2sigma"].value == 3
    assert r["n2"].value == pytest.approx((100 + 50 + 4 + 5) / 100)


@pytest.mark.block("maxamp_k_test")
def test_maxamp_k_test_learns_from_the_top_index():
    x, y = blobs(400, seed=6, noise=0.2)
    xt, yt = blobs(200, seed=7, noise=0.2)
    top1 = float((xt.argmax(1) == yt).float().mean())  # the class is (almost always) the largest feature
    clfs = ["naive_bayes", "tree21", "linear"]
    blk = make("maxamp_k_test", {"ks": [1, 2], "classifiers": clfs}, {"features": spec("real", 16), "label": LABEL})
    fit(blk, features=x, label=y)
    rows = sink(blk, {"features": xt, "label": yt})["accuracy"]
    assert len(rows) == 6
    for r in rows:
        assert r.labels["classifier"] in clfs and r.labels["k"] in (1, 2)
        # K = 1: the one-hot top index is the class; K = 2 adds a noise index (naive Bayes suffers most)
        assert r.value >= (top1 - 0.05 if r.labels["k"] == 1 else 0.6), (r.labels, r.value, top1)


@pytest.mark.block("dissection")
def test_dissection_removal_and_consistency():
    x, y = blobs(2000, d=12, seed=8, noise=0.15)
    xt, yt = blobs(300, d=12, seed=9, noise=0.15)
    specs = {"features": spec("real", 12), "label": LABEL, "features_b": spec("real", 12)}
    blk = make("dissection", {"max_features": 12}, specs)
    fit(blk, features=x, label=y, features_b=x)
    r = sink(blk, {"features": xt, "label": yt, "features_b": xt})
    acc = {(m.labels["model"], m.labels["removed"]): m.value for m in r["accuracy"]}
    assert acc[("a", 0)] > 0.9
    # effective features: the 10 class features (active ~ 10 % each) and the 2 noise-only ones (~ 16 %)
    assert r["effective_features"][0].value == 12
    last = max(k for (_, k) in acc)
    assert acc[("a", last)] < 0.2  # every effective feature removed: near chance
    # removing feature c hurts class c, not the others
    ca = {(m.labels["feature"], m.labels["class"]): m.value for m in r["class_accuracy"] if m.labels["model"] == "a"}
    for c in range(C):
        assert ca[(c, c)] < 0.5 and min(ca[(c, o)] for o in range(C) if o != c) > 0.6
    assert r["consistency_cosine"].value == pytest.approx(1.0, abs=1e-6)
    assert r["accuracy_effective_only"][0].value == pytest.approx(acc[("a", 0)])
