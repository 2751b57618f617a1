"""Issue-3 blocks: feature codecs, decisions, fusion, repeat/multi wiring, a tiny end-to-end run with caching."""
import json
import math

import pytest
import torch

from linksim.cli import main
from linksim.quantizers.codec import FeatureCodec
from linksim.quantizers.index_coding import index_bits
from linksim.results import read_csv
from linksim.runner import run_scenario
from conftest import write


def _sparse_features(n=400, nf=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, nf, generator=g)
    keep = torch.rand(n, nf, generator=g) < torch.linspace(0.9, 0.0, nf)  # early features more often active
    return (x * keep).float()


@pytest.mark.parametrize("scheme,K,n,size,bits", [
    ("float", None, 32, None, 32 * 64),
    ("scalar", None, 3, None, 3 * 64),
    ("maxpro", 16, 8, None, 16 * 8),
    ("maxamp", 3, 1, None, index_bits(64, 3) + 3),
    ("maxproamp", 3, 1, 20, index_bits(20, 3) + 3),
])
def test_codec_payload_length_and_roundtrip(scheme, K, n, size, bits):
    X = _sparse_features()
    c = FeatureCodec(scheme, 64, K, n, size)
    c.fit(X)
    assert c.payload_bits() == bits
    b = c.encode(X[:50])
    assert b.shape == (50, bits) and set(b.unique().tolist()) <= {0.0, 1.0}
    Xh, valid = c.decode(b)
    assert Xh.shape == (50, 64) and bool(valid.all())
    if scheme == "float":
        assert torch.equal(Xh, X[:50])
    elif scheme == "scalar":
        assert float((Xh - X[:50]).abs().max()) <= float(torch.tensor(c.vmax).max()) / 7 / 2 + 1e-5
    elif scheme == "maxamp":  # the K largest positions are exactly those decoded
        top = torch.topk(X[:50], K, 1).indices.sort(1).values
        got = torch.topk((Xh > 0).float() + 0 * Xh, K, 1).indices.sort(1).values
        assert torch.equal(top, got)
    # state survives a weights_only round trip
    import io
    buf = io.BytesIO()
    torch.save(c.state(), buf)
    buf.seek(0)
    c2 = FeatureCodec(scheme, 64, K, n, size)
    c2.load_state(torch.load(buf, weights_only=True))
    assert torch.equal(c2.decode(b)[0], Xh)


def test_corrupted_maxamp_index_is_invalid_and_zero():
    X = _sparse_features()
    c = FeatureCodec("maxamp", 64, 3, 1, None)
    c.fit(X)
    b = c.encode(X[:4])
    b[:, : c.index_bits] = 1.0  # all-ones index word: rank 2^bits - 1 >= C(64, 3)
    assert 2 ** c.index_bits - 1 >= math.comb(64, 3)
    Xh, valid = c.decode(b)
    assert not bool(valid.any()) and float(Xh.abs().sum()) == 0.0


def test_majority_vote_tie_break_and_invalid_votes():
    from linksim.block import Spec
    from linksim.receivers.fusion import MajorityVote

    mv = MajorityVote("v", MajorityVote.Params(), None)
    mv.setup({"pred": [Spec("label", (), {"num_classes": 10})] * 3})
    votes = [torch.tensor([1, 2, 5, -1, 3]), torch.tensor([1, 3, 6, -1, 3]), torch.tensor([4, 3, 7, 9, -1])]
    out = mv.forward(votes)["pred"].tolist()
    # 1 wins 2:1; 3 wins 2:1; three-way tie -> first node's 5; only valid vote 9; 3
    assert out == [1, 3, 5, 9, 3]


TINY = """
name: tiny
seed: 3
data: {dataset: digits, batch_size: 100, train_samples: 300, test_samples: 120}
sweep: {nodes: [1, 2], image_snr_db: [10]}
defs:
  enc: &enc {nf: 32, method: cl, sparsity: ms, lam: 0.001, epochs: 1, batch_size: 100}
systems:
  fusion:
    blocks:
      data:  {type: dataset}
      noise: {type: pixel_noise, repeat: $nodes, params: {snr_db: $image_snr_db}, inputs: {image: data.image}}
      enc:   {type: semantic_encoder, repeat: $nodes, params: *enc, inputs: {image: noise.image, label: data.label}}
      q:     {type: feature_quantizer, repeat: $nodes, params: {scheme: maxamp, K: 3, n: 1, label: maxamp}, inputs: {features: enc.features}}
      link:  {type: bsc, repeat: $nodes, params: {p: 0.0}, inputs: {bits: q.bits}}
      dq:    {type: feature_dequantizer, repeat: $nodes, inputs: {bits: link.bits}}
      fuse:  {type: feature_sum, params: {label: maxamp}, inputs: {features: dq.features}}
      clf:   {type: classifier, params: {epochs: 40, lr: 0.01, batch_size: 50}, inputs: {features: fuse.features, label: data.label}}
      acc:   {type: accuracy, params: {name: maxamp}, inputs: {label: data.label, pred: clf.logits}}
      nclf:  {type: classifier, repeat: $nodes, params: {epochs: 40, lr: 0.01, batch_size: 50}, inputs: {features: enc.features, label: data.label}}
      tx:    {type: label_bits, repeat: $nodes, params: {label: decision}, inputs: {pred: nclf.pred}}
      rx:    {type: bits_label, repeat: $nodes, inputs: {bits: tx.bits}}
      vote:  {type: majority_vote, params: {label: decision}, inputs: {pred: rx.pred}}
      acc2:  {type: accuracy, params: {name: decision}, inputs: {label: data.label, pred: vote.pred}}
      cmp:   {type: compactness, inputs: {features: "enc[0].features"}}
"""


def test_tiny_distributed_run_and_weight_cache(tmp_path):
    p = write(tmp_path, TINY)
    out = run_scenario(p, tmp_path / "a", progress=False, plots=True)
    rows = read_csv(out / "results.csv")
    acc = {(r["scheme"], r["nodes"]): r["value"] for r in rows if r["metric"] == "accuracy"}
    assert set(acc) == {("maxamp", 1), ("maxamp", 2), ("decision", 1), ("decision", 2)}
    # 10 classes (chance 0.1); measured 0.39-0.40 (MaxAmp-3 1-bit features, fused) and 0.575 (decisions)
    assert min(acc[("maxamp", 1)], acc[("maxamp", 2)]) > 0.25, acc
    assert min(acc[("decision", 1)], acc[("decision", 2)]) > 0.4, acc
    bits = {(r["scheme"], r["nodes"]): r["value"] for r in rows if r["metric"] == "bits_per_node"}
    assert bits[("maxamp", 2)] == index_bits(32, 3) + 3 and bits[("decision", 2)] == 4
    total = {(r["scheme"], r["nodes"]): r["value"] for r in rows if r["metric"] == "bits_per_sample"}
    assert total[("maxamp", 2)] == 2 * bits[("maxamp", 2)]
    assert any(r["metric"] == "n1_2sigma" for r in rows)
    info = json.loads((out / "run.json").read_text())
    assert "fusion/enc[0]" in info["training"] and info["resolved_scenario"]["seed"] == 3
    assert (out / "accuracy.png").is_file()
    # second run, new output folder, same config: every trained block comes from the cache
    out2 = run_scenario(p, tmp_path / "b", progress=False, plots=False)
    info2 = json.loads((out2 / "run.json").read_text())
    assert info2["weight_cache"]["misses"] == 0
    assert info2["training"] and all(v["from_cache"] for v in info2["training"].values())
    assert (out2 / "results.csv").read_text() == (out / "results.csv").read_text()


def test_resume_gives_identical_csv(tmp_path):
    p = write(tmp_path, TINY)
    out = run_scenario(p, tmp_path / "a", progress=False, plots=False, cache_dir=None)
    full = (out / "results.csv").read_text()
    points = sorted((out / "points").iterdir())
    points[-1].unlink()  # as if killed before the last point finished
    (out / "results.csv").unlink()
    run_scenario(p, tmp_path / "a", progress=False, plots=False, cache_dir=None)
    assert (out / "results.csv").read_text() == full
    assert json.loads((out / "run.json").read_text())["points_resumed"] == len(points) - 1


@pytest.mark.parametrize("change, key", [
    ("scheme: maxamp, K: 3, n: 1", "scheme: maxamp, K: 40, n: 1"),
    ("scheme: maxamp, K: 3, n: 1", "scheme: maxamp, K: 3, n: 0"),
    ("lam: 0.001", "lam: -0.5"),
    ("nodes: [1, 2]", "nodes: [0, 2]"),
])
def test_bad_parameters_exit_2(tmp_path, capsys, change, key):
    text = TINY.replace(change, key)
    assert text != TINY
    code = main(["validate", write(tmp_path, text)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    expect = {"K: 40": "systems.fusion.blocks.q.inputs", "n: 0": "systems.fusion.blocks.q.params",
              "lam: -0.5": "systems.fusion.blocks.enc.params.lam", "nodes: [0": "systems.fusion.blocks.noise.repeat"}
    k = next(v for s, v in expect.items() if s in key)
    assert k in err, err


def test_clean_train_port_keeps_encoder_key_while_matched_classifiers_change(tmp_path):
    """Noise acting in training (matched fusion classifiers) must not retrain the encoder when it has a
    clean ``train_image`` port, and must change the keys of the classifiers downstream."""
    from linksim.runner import Plan, make_context
    from linksim.scenario import load_scenario

    text = (TINY.replace("params: {snr_db: $image_snr_db}", "params: {snr_db: $image_snr_db, in_training: true}")
                .replace("inputs: {image: noise.image, label: data.label}",
                         "inputs: {image: noise.image, train_image: data.image, label: data.label}")
                .replace("image_snr_db: [10]", "image_snr_db: [0, 10]"))
    cfg, _ = load_scenario(write(tmp_path, text))
    plan = Plan(cfg, "t")
    ctx = make_context(cfg, "t", device="cpu", progress=False, cache_dir=None)
    keys = {}
    for snr in (0, 10):
        g = plan.graph("fusion", {"nodes": 2, "image_snr_db": snr}, ctx)
        keys[snr] = {n: g.block_key(n) for n in ("enc[0]", "enc[1]", "clf", "nclf[0]", "nclf[1]")}
        assert g.ancestors("enc[0]", training=True) == {"data"}
    assert keys[0]["enc[0]"] == keys[10]["enc[0]"] == keys[0]["enc[1]"]  # one encoder for every SNR and node
    assert keys[0]["clf"] != keys[10]["clf"] and keys[0]["nclf[0]"] != keys[10]["nclf[0]"]
    assert keys[0]["nclf[0]"] != keys[0]["nclf[1]"]  # each sensor's own noise
    # the run trains the encoder once and the noisy-trained classifiers differ from clean-trained ones
    out = run_scenario(write(tmp_path, text, "m.yaml"), tmp_path / "m", progress=False, plots=False)
    info = json.loads((out / "run.json").read_text())
    trained = [k for k, v in info["training"].items() if "/enc" in k and not v.get("from_cache")]
    assert trained == ["fusion/enc[0]"]


def test_classifier_train_features_port_trains_on_clean_features(tmp_path):
    from linksim.runner import Plan, make_context
    from linksim.scenario import load_scenario

    text = """
name: cf
data: {dataset: digits, batch_size: 100, train_samples: 300, test_samples: 100}
sweep: {image_snr_db: [0, 20]}
systems:
  s:
    blocks:
      data:  {type: dataset}
      noise: {type: pixel_noise, params: {snr_db: $image_snr_db, in_training: true}, inputs: {image: data.image}}
      enc:   {type: semantic_encoder, params: {nf: 16, method: ce, sparsity: none, epochs: 15, patience: 15}, inputs: {image: data.image, train_image: data.image, label: data.label}}
      enc_rx: {type: semantic_encoder, params: {nf: 16, method: ce, sparsity: none, epochs: 15, patience: 15}, inputs: {image: noise.image, train_image: data.image, label: data.label}}
      clf:   {type: classifier, params: {epochs: 30}, inputs: {features: enc_rx.features, train_features: enc.features, label: data.label}}
      acc:   {type: accuracy, inputs: {label: data.label, pred: clf.logits}}
"""
    cfg, _ = load_scenario(write(tmp_path, text))
    plan = Plan(cfg, "t")
    ctx = make_context(cfg, "t", device="cpu", progress=False, cache_dir=None)
    g0, g20 = (plan.graph("s", {"image_snr_db": s}, ctx) for s in (0, 20))
    assert "noise" not in g0.ancestors("clf", training=True)
    assert g0.block_key("clf") == g20.block_key("clf") and g0.block_key("enc") == g0.block_key("enc_rx")
    out = run_scenario(write(tmp_path, text, "r.yaml"), tmp_path / "o", progress=False, plots=False)
    acc = {r["image_snr_db"]: r["value"] for r in read_csv(out / "results.csv") if r["metric"] == "accuracy"}
    assert acc[20] > acc[0]  # one clean-trained receiver, tested on noisy inputs
    info = json.loads((out / "run.json").read_text())
    twins = {k: v for k, v in info["training"].items() if k.endswith(("/enc", "/enc_rx"))}
    assert sum(not v.get("from_cache") for v in twins.values()) == 1  # the twin came from the cache
    assert twins["s/enc_rx"]["from_cache"] and twins["s/enc_rx"]["epochs"] == twins["s/enc"]["epochs"]


def test_test_set_size_does_not_retrain(tmp_path):
    p = write(tmp_path, TINY.replace("sweep: {nodes: [1, 2], image_snr_db: [10]}", "sweep: {nodes: [1], image_snr_db: [10]}"))
    run_scenario(p, tmp_path / "a", progress=False, plots=False)
    from linksim.runner import run_scenario as rs

    out = rs(p, tmp_path / "b", overrides=["data.test_samples=60"], progress=False, plots=False)
    info = json.loads((out / "run.json").read_text())
    assert info["weight_cache"]["misses"] == 0 and all(v["from_cache"] for v in info["training"].values())
    assert {r["n"] for r in read_csv(out / "results.csv") if r["metric"] == "accuracy"} == {60}
