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


# ------------------------------------------------- issue 17: wrong wiring and parameters of the quantizer blocks
from linksim.errors import PortError  # noqa: E402


@pytest.mark.block("feature_quantizer")
def test_feature_quantizer_rejects_wrong_feature_ports():
    with pytest.raises(PortError) as e:
        make("feature_quantizer", {"scheme": "float", "n": 32}, {"features": spec("real", 2, 3)})
    assert str(e.value) == "expects a feature vector, got real[2, 3]"
    with pytest.raises(PortError) as e:
        make("feature_quantizer", {"scheme": "maxamp", "K": 5, "n": 1}, {"features": spec("real", 4)})
    assert str(e.value) == "K (5) > N (4 features)"
    with pytest.raises(PortError) as e:
        make("feature_quantizer", {"scheme": "maxproamp", "K": 2, "n": 1, "maxpro_size": 7},
             {"features": spec("real", 6)})
    assert str(e.value) == "maxpro_size (7) > N (6 features)"
    q = make("feature_quantizer", {"scheme": "maxproamp", "K": 6, "n": 2, "maxpro_size": 6},
             {"features": spec("real", 6)})  # K = maxpro_size = N is allowed
    out = q.out_specs["bits"]
    assert (out.kind, out.shape) == ("bits", (12,)) and out.meta == {"codec": q.codec, "features": 6}
    assert (q.codec.scheme, q.codec.nf, q.codec.K, q.codec.n, q.codec.maxpro_size) == ("maxproamp", 6, 6, 2, 6)
    assert q.nf == 6 and q.report() == {"bits_per_sample": 12.0}
    lab = make("feature_quantizer", {"scheme": "scalar", "n": 3, "label": "tx"}, {"features": spec("real", 5)})
    assert lab.report() == {"bits_per_sample|tx": 15.0}


@pytest.mark.block("feature_quantizer")
@pytest.mark.parametrize("params, msg", [
    ({"scheme": "maxamp", "K": 2, "n": 0}, "n must be in 1..16 or 32, got 0"),
    ({"scheme": "scalar", "n": 17}, "n must be in 1..16 or 32, got 17"),
    ({"scheme": "scalar", "n": 32}, "scalar quantization needs n <= 16 (use scheme: float for 32-bit floats)"),
    ({"scheme": "maxpro", "n": 1}, "K must be >= 1 for maxpro, got None"),
    ({"scheme": "maxamp", "K": 0, "n": 1}, "K must be >= 1 for maxamp, got 0"),
    ({"scheme": "maxproamp", "K": 2, "n": 1}, "maxproamp needs maxpro_size (the MaxPro set size)"),
    ({"scheme": "scalar", "K": 0, "n": 2}, "K must be >= 1, got 0"),
    ({"scheme": "maxproamp", "K": 5, "n": 1, "maxpro_size": 4}, "K (5) > maxpro_size (4)"),
])
def test_feature_quantizer_parameter_errors(params, msg):
    import pydantic

    from linksim.registry import block_class

    with pytest.raises(pydantic.ValidationError) as e:
        block_class("feature_quantizer").Params(**params)
    assert e.value.errors()[0]["msg"] == f"Value error, {msg}"


@pytest.mark.block("feature_quantizer")
def test_feature_quantizer_params_at_the_limits_are_accepted():
    from linksim.registry import block_class

    P = block_class("feature_quantizer").Params
    for params in ({"scheme": "maxamp", "K": 1, "n": 16}, {"scheme": "maxamp", "K": 1, "n": 32},
                   {"scheme": "scalar", "n": 16}, {"scheme": "float", "n": 32}, {"scheme": "float", "n": 0},
                   {"scheme": "maxproamp", "K": 3, "n": 1, "maxpro_size": 3}, {"scheme": "scalar", "n": 1, "K": 1}):
        P(**params)


@pytest.mark.block("feature_quantizer")
def test_feature_quantizer_train_signature_fit_subset_and_state():
    p = {"scheme": "maxpro", "K": 2, "n": 32}
    q = make("feature_quantizer", p, {"features": spec("real", 4)})
    sig = q.train_signature()
    assert "train_samples" not in sig and sig["scheme"] == "maxpro" and sig["K"] == 2
    q5 = make("feature_quantizer", {**p, "train_samples": 5}, {"features": spec("real", 4)})
    assert q5.train_signature()["train_samples"] == 5
    x = torch.zeros(20, 4)
    x[:5, 3] = x[:5, 1] = 1.0  # the first 5 samples: features 1 and 3 active
    x[5:, 0] = x[5:, 2] = 1.0  # the other 15: features 0 and 2
    fit(q5, batch_size=5, features=x)
    assert q5.codec.S.tolist() == [1, 3]
    fit(q, batch_size=5, features=x)
    assert q.codec.S.tolist() == [0, 2]
    q2 = make("feature_quantizer", p, {"features": spec("real", 4)})
    q2.load_state(q5.state())
    assert q2.codec.S.tolist() == [1, 3]
    xt = torch.tensor([[0.0, 2.5, 0.0, -1.0]])
    assert torch.equal(fwd(q2, features=xt)["bits"], fwd(q5, features=xt)["bits"])
    fl = make("feature_quantizer", {"scheme": "float", "n": 32}, {"features": spec("real", 4)})

    class NoData:
        def materialize(self, n=None):
            raise AssertionError("a float quantizer makes no pass over the training data")

    fl.fit(NoData(), fl.ctx)


@pytest.mark.block("feature_dequantizer")
def test_feature_dequantizer_needs_a_quantizer_upstream():
    with pytest.raises(PortError) as e:
        make("feature_dequantizer", {}, {"bits": spec("bits", 5)})
    assert str(e.value) == "'bits' must come (through any link) from a feature_quantizer, got bits[5]"
    with pytest.raises(PortError):
        make("feature_dequantizer", {}, {"bits": spec("bits", 5, codec="not a codec", features=3)})
    q = make("feature_quantizer", {"scheme": "float", "n": 32}, {"features": spec("real", 3)})
    dq = make("feature_dequantizer", {}, {"bits": q.out_specs["bits"]})
    assert dq.codec is q.codec
    f, v = dq.out_specs["features"], dq.out_specs["valid"]
    assert (f.kind, f.shape, v.kind, v.shape) == ("real", (3,), "real", ())
    out = fwd(dq, bits=fwd(q, features=torch.tensor([[1.0, -2.0, 0.5]]))["bits"])
    assert out["features"].tolist() == [[1.0, -2.0, 0.5]] and out["valid"].dtype == torch.float32


@pytest.mark.block("label_bits", "bits_label")
def test_label_bits_widths_and_wiring_errors():
    from linksim.errors import PortError

    with pytest.raises(PortError) as e:
        make("label_bits", {}, {"pred": spec("label")})
    assert str(e.value) == "decision carries no num_classes"
    with pytest.raises(PortError):
        make("label_bits", {}, {"pred": spec("label", num_classes=0)})
    widths = {c: make("label_bits", {}, {"pred": spec("label", num_classes=c)}).nb for c in (1, 2, 3, 4, 5, 16, 17)}
    assert widths == {1: 1, 2: 1, 3: 2, 4: 2, 5: 3, 16: 4, 17: 5}
    tx = make("label_bits", {"label": "d"}, {"pred": spec("label", num_classes=5, class_names=list("abcde"))})
    out = tx.out_specs["bits"]
    assert (out.kind, out.shape) == ("bits", (3,)) and out.meta["label_meta"]["class_names"] == list("abcde")
    assert tx.report() == {"bits_per_sample|d": 3.0}
    assert make("label_bits", {}, {"pred": LABEL}).report() == {"bits_per_sample": 4.0}
    with pytest.raises(PortError) as e:
        make("bits_label", {}, {"bits": spec("bits", 3)})
    assert str(e.value) == "'bits' must come (through any link) from a label_bits block"
    rx = make("bits_label", {}, {"bits": out})
    p = rx.out_specs["pred"]
    assert (p.kind, p.shape, p.meta["num_classes"], rx.C, rx.nb) == ("label", (), 5, 5, 3)
    bits = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 1.0], [0.5, 0.5, 0.51], [0.0, 0.0, 0.0]])
    assert fwd(rx, bits=bits)["pred"].tolist() == [4, -1, 1, 0]  # 5 >= C -> -1; 0.5 is a zero
    assert fwd(tx, pred=torch.tensor([4, 0, 3]))["bits"].tolist() == [[1, 0, 0], [0, 0, 0], [0, 1, 1]]
