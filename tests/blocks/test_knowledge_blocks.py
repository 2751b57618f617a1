"""Contract tests of the knowledge-base blocks (paper 003): dataset split, CLIP teacher, FAISS PQ knowledge
base and its statistics, self-supervised local encoders, linear probe, top-k accuracy, VQ-VAE pair.
Tiny models on 8x8 digits, a few epochs, fixed seeds."""
import math

import pytest
import torch

from linksim.testing.harness import assert_per_sample, fit, fwd, make, sink, spec

C = 10
NAMES = [str(c) for c in range(C)]
LABEL = spec("label", num_classes=C, class_names=NAMES)
IMG = spec("image", 1, 8, 8)


@pytest.fixture(scope="module")
def digits():
    from linksim.data.datasets import load_split

    x, y = load_split("digits", "train", None)
    return torch.from_numpy(x[:400]).float() / 255.0, torch.from_numpy(y[:400]).long()


def blobs(n, d=16, seed=0, noise=0.2):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, C, (n,), generator=g)
    x = torch.zeros(n, d)
    x[torch.arange(n), y] = 1.0
    return x + noise * torch.randn(n, d, generator=g), y


@pytest.mark.block("dataset_split")
def test_dataset_split_selects_classes_and_ranges():
    from linksim.data.datasets import load_split

    blk = make("dataset_split", {"dataset": "digits", "classes": [1, 3], "train_range": [2, 22],
                                 "test_range": [5, 15]})
    x, y = load_split("digits", "train", None)
    keep = (torch.from_numpy(y) == 1) | (torch.from_numpy(y) == 3)
    xs, ys = torch.from_numpy(x)[keep][2:22], torch.from_numpy(y)[keep][2:22]
    assert blk.num_samples("train") == 20
    out = fwd(blk, split="train", n=20)
    assert torch.equal(out["label"], ys.long()) and torch.equal(out["image"], xs.float() / 255)
    xt, yt = load_split("digits", "test", None)
    keep = (torch.from_numpy(yt) == 1) | (torch.from_numpy(yt) == 3)
    out = fwd(blk, split="test", n=10)
    assert torch.equal(out["label"], torch.from_numpy(yt)[keep][5:15].long())
    assert torch.equal(out["image"], torch.from_numpy(xt)[keep][5:15].float() / 255)


def _clip_loss(img, txt, y, scale=10.0):
    """Cross-entropy of each image against the captions of the batch (same-class captions all count)."""
    logits = scale * img @ txt.T
    same = (y[:, None] == y[None, :]).float()
    return float(-(torch.log_softmax(logits, 1) * same / same.sum(1, keepdim=True)).sum(1).mean())


@pytest.mark.block("clip_teacher")
def test_clip_teacher_embeddings_match_their_images_and_captions(digits):
    x, y = digits
    blk = make("clip_teacher", {"epochs": 8, "batch_size": 20, "lr": 1e-3}, {"image": IMG, "label": LABEL})
    fit(blk, batch_size=100, image=x[:200], label=y[:200])
    out = assert_per_sample(blk, image=x[:200], label=y[:200])
    img, txt = out["image_embedding"], out["text_embedding"]
    assert img.shape == (200, 128) and torch.allclose(img.norm(dim=1), torch.ones(200), atol=1e-4)
    with torch.no_grad():
        ref = blk._text()
    assert torch.allclose(txt, ref[y[:200]], atol=1e-5)  # each sample's own class prompt
    # pre-training lowered the CLIP loss of the image-caption pairs (each image against its own caption)
    untrained = make("clip_teacher", {}, {"image": IMG, "label": LABEL})
    untrained._build()
    o0 = fwd(untrained, image=x[:200], label=y[:200])
    loss, loss0 = _clip_loss(img, txt, y[:200]), _clip_loss(o0["image_embedding"], o0["text_embedding"], y[:200])
    assert loss < loss0 - 0.5, (loss, loss0)
    zero_shot = float(((img @ ref.T).argmax(1) == y[:200]).float().mean())
    assert zero_shot > 0.4, zero_shot  # images matched with their class caption (chance 0.1)


def _pq_kb(n=300, d=16, m=4, nbits=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=1)
    kb = make("knowledge_base", {"m": m, "nbits": nbits}, {"vectors": spec("real", d)})
    fit(kb, batch_size=100, vectors=v)
    return kb, v


@pytest.mark.block("knowledge_base")
def test_knowledge_base_reconstructs_and_finds_stored_vectors():
    kb, v = _pq_kb()
    assert int(kb.index.ntotal) == 300
    rec = fwd(kb, vectors=v[:50])["vectors"]
    err = (rec - v[:50]).pow(2).sum(1)
    assert float(err.mean()) < 0.25  # PQ with 32 centroids per 4-dim sub-space (unit vectors: |v|^2 = 1)
    # each reconstruction is nearest to its own vector among all stored ones
    assert float(((rec @ v.T).argmax(1) == torch.arange(50)).float().mean()) > 0.9
    assert torch.equal(kb.search(v[:20], 1).reshape(-1), torch.arange(20)) or \
        float((kb.search(v[:20], 1).reshape(-1) == torch.arange(20)).float().mean()) > 0.9
    assert torch.allclose(kb.decoded()[:50], rec, atol=1e-6)  # stored codes decode to the same vectors


@pytest.mark.block("kb_stats")
def test_kb_stats_figures():
    kb, v = _pq_kb()
    st = make("kb_stats", {"neighbours": 5}, {"kb": kb.out_specs["vectors"]})
    r = sink(st, {"kb": v[:20]})
    assert r["kb_vectors"].value == 300
    assert r["kb_codebook_floats"].value == 4 * 4 * 32  # m x d* x k*
    assert r["kb_code_bits"].value == 4 * 5
    assert r["kb_storage_bytes"].value == 4 * 4 * 4 * 32 + 300 * math.ceil(20 / 8)
    assert r["kb_reload_identical"].value == 1.0


def _pair_gap(blk, x, seed=0):
    """Mean cosine between the embeddings of two views of the same image minus that of different images."""
    from linksim.knowledge.ssl.base import two_views

    v1, v2 = two_views(x, torch.Generator().manual_seed(seed))
    z1, z2 = fwd(blk, image=v1)["embedding"], fwd(blk, image=v2)["embedding"]
    s = z1 @ z2.T
    n = len(x)
    return float(s.diag().mean() - (s.sum() - s.diag().sum()) / (n * n - n))


SSL = {"nf": 32, "hidden": 32, "epochs": 4, "batch_size": 50, "seed": 0}


def _ssl(type_name, x, extra=None, specs=None):
    specs = {"image": IMG, **(specs or {})}
    blk = make(type_name, {**SSL, **(extra or {})}, specs)
    fit(blk, batch_size=100, image=x)
    untrained = make(type_name, {**SSL, **(extra or {})}, specs)
    untrained._build()
    return blk, untrained


@pytest.mark.parametrize("type_name", [pytest.param(t, marks=pytest.mark.block(t))  # each case pins its own type
                                       for t in ("simclr_encoder", "nnclr_encoder", "dcl_encoder")])
def test_ssl_encoder_aligns_the_views_of_an_image(type_name, digits):
    x, y = digits
    extra = {"queue_size": 128} if type_name == "nnclr_encoder" else {}
    blk, untrained = _ssl(type_name, x, extra)
    out = assert_per_sample(blk, image=x[:100])
    assert out["features"].shape == (100, 32) and float(out["features"].min()) >= 0
    assert torch.allclose(out["embedding"].norm(dim=1), torch.ones(100), atol=1e-4)
    gap, gap0 = _pair_gap(blk, x[:100]), _pair_gap(untrained, x[:100])
    assert gap > 0.05 and gap > gap0 + 0.05, (gap, gap0)


@pytest.mark.block("kb_guided_encoder")
def test_kb_guided_encoder_aligns_views_through_the_knowledge_base(digits):
    x, _ = digits
    kb, _ = _pq_kb(n=300, d=16)
    specs = {"kb": kb.out_specs["vectors"]}
    blk, untrained = _ssl("kb_guided_encoder", x, {"top_n": 5}, specs)
    assert blk.out_specs["embedding"].shape == (16,)
    assert_per_sample(blk, image=x[:50])
    gap, gap0 = _pair_gap(blk, x[:100]), _pair_gap(untrained, x[:100])
    assert gap > 0.05 and gap > gap0 + 0.05, (gap, gap0)


@pytest.mark.block("linear_probe")
def test_linear_probe_learns_separable_classes():
    x, y = blobs(600, seed=1)
    xt, yt = blobs(300, seed=2)
    blk = make("linear_probe", {"hidden": 32, "epochs": 20, "batch_size": 64, "lr": 3e-3},
               {"features": spec("real", 16), "label": LABEL})
    fit(blk, features=x, label=y)
    logits = fwd(blk, features=xt)["logits"]
    assert logits.shape == (300, C) and float((logits.argmax(1) == yt).float().mean()) > 0.9


@pytest.mark.block("topk_accuracy")
def test_topk_accuracy_by_hand():
    blk = make("topk_accuracy", {"k": [1, 2]}, {"label": LABEL, "pred": spec("real", 3)})
    pred = torch.tensor([[3.0, 2, 1], [1, 3, 2], [1, 2, 3], [2, 3, 1]])
    y = torch.tensor([0, 2, 0, 2])
    r = sink(blk, {"label": y[:2], "pred": pred[:2]}, {"label": y[2:], "pred": pred[2:]})
    assert r["top1_accuracy"].value == pytest.approx(0.25)  # only sample 0
    assert r["top2_accuracy"].value == pytest.approx(0.5)   # samples 0 and 1
    assert blk.error_counts() == {"top1_accuracy": 3, "top2_accuracy": 2}


def _vq(digits, epochs=15):
    x, _ = digits
    feats = x.reshape(len(x), -1)  # the pixels as the "representation": 64 = 4 tokens of 16
    blk = make("vq_encoder", {"tokens": 4, "codebook_size": 16, "epochs": epochs, "batch_size": 50, "lr": 5e-3},
               {"features": spec("real", 64), "image": IMG})
    fit(blk, batch_size=100, features=feats, image=x)
    return blk, feats, x


@pytest.mark.block("vq_encoder")
def test_vq_encoder_sends_the_nearest_codewords(digits):
    blk, f, _ = _vq(digits, epochs=2)
    bits = fwd(blk, features=f[:50])["bits"]
    assert bits.shape == (50, 16) and set(bits.unique().tolist()) <= {0.0, 1.0}
    idx = (bits.reshape(50, 4, 4) * torch.tensor([8.0, 4, 2, 1])).sum(-1).long()
    z = f[:50].reshape(50, 4, 16)
    d = (z[:, :, None, :] - blk.codebook.detach()[None, None]).pow(2).sum(-1)
    assert torch.equal(idx, d.argmin(-1))
    assert len(set(idx.reshape(-1).tolist())) > 3  # several codewords in use


@pytest.mark.block("vq_decoder", "vq_encoder")
def test_vq_decoder_reconstructs_its_own_image(digits):
    blk, f, x = _vq(digits)
    dec = make("vq_decoder", {}, {"bits": blk.out_specs["bits"], "vq": blk.out_specs["bits"]})
    bits = fwd(blk, features=f[:100])["bits"]
    img = fwd(dec, bits=bits, vq=bits)["image"]
    assert img.shape == (100, 1, 8, 8)
    mse = (img - x[:100]).pow(2).flatten(1).mean(1)
    base = (x.mean(0) - x[:100]).pow(2).flatten(1).mean(1)  # the mean image
    assert float(mse.mean()) < 0.7 * float(base.mean()), (float(mse.mean()), float(base.mean()))
    wrong = (img - torch.roll(x[:100], 1, 0)).pow(2).flatten(1).mean(1)
    assert float((mse < wrong).float().mean()) > 0.8
