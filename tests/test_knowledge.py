"""Knowledge-base semantic communication (paper 003): FAISS PQ knowledge base, DCL / KB attention, blocks,
a tiny end-to-end scenario (teacher -> SKB -> KB-guided encoder -> probe; VQ-VAE over LDPC at very low SNR)."""
import csv
import json
import math

import numpy as np
import pytest
import torch
from conftest import write

from linksim.cli import main


def _pq_index(x, m, nbits):
    import faiss

    idx = faiss.IndexPQ(x.shape[1], m, nbits)
    idx.pq.cp.min_points_per_centroid = 1
    idx.train(x)
    idx.add(x)
    return idx


def test_faiss_index_saved_and_reloaded_returns_identical_neighbours(tmp_path):
    from linksim.knowledge.kb import load_index, save_index

    rng = np.random.default_rng(0)
    x = rng.standard_normal((600, 32)).astype(np.float32)
    idx = _pq_index(x, m=4, nbits=6)
    save_index(idx, tmp_path / "kb.faiss")
    again = load_index(tmp_path / "kb.faiss")
    q = rng.standard_normal((50, 32)).astype(np.float32)
    d1, i1 = idx.search(q, 10)
    d2, i2 = again.search(q, 10)
    assert np.array_equal(i1, i2) and np.array_equal(d1, d2)


def test_missing_index_file_is_a_user_error(tmp_path):
    from linksim.errors import UserError
    from linksim.knowledge.kb import load_index

    with pytest.raises(UserError, match="not found"):
        load_index(tmp_path / "nope.faiss")


@pytest.mark.parametrize("d,m,nbits", [(32, 4, 6), (128, 8, 8), (64, 16, 4)])
def test_pq_storage_is_m_dstar_kstar_floats(d, m, nbits):
    from linksim.knowledge.kb import pq_figures

    x = np.random.default_rng(1).standard_normal((max(300, 2 ** nbits), d)).astype(np.float32)
    f = pq_figures(_pq_index(x, m, nbits))
    dstar, kstar = d // m, 2 ** nbits
    assert f["kb_codebook_floats"] == m * dstar * kstar
    assert f["kb_codebook_bytes"] == 4 * m * dstar * kstar
    assert f["kb_representable_vectors"] == float(kstar) ** m
    assert f["kb_code_bytes"] == len(x) * math.ceil(m * nbits / 8)


def test_dcl_loss_sanity():
    from linksim.knowledge.ssl.base import dcl_loss

    g = torch.Generator().manual_seed(0)
    z = torch.randn(16, 8, generator=g)
    aligned = dcl_loss(z, z + 0.01 * torch.randn(16, 8, generator=g), 0.1)
    shuffled = dcl_loss(z, z[torch.randperm(16, generator=g)], 0.1)
    assert torch.isfinite(aligned) and aligned < shuffled
    # the positive pair is not in the denominator: two samples, perfectly aligned and opposite -> -2/t - 1/t... finite
    a = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    expected = -1 / 0.1 + torch.logsumexp(torch.tensor([-1 / 0.1, -1 / 0.1]), 0)
    assert torch.allclose(dcl_loss(a, a, 0.1), expected)
    # gradients reach both branches
    z1, z2 = torch.randn(8, 4, requires_grad=True), torch.randn(8, 4, requires_grad=True)
    dcl_loss(z1, z2, 0.1).backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


def test_kb_attention_shape_and_convexity():
    from linksim.knowledge.ssl.kb_guided import kb_attention

    q = torch.randn(5, 12, requires_grad=True)
    v = torch.randn(5, 30, 12)
    out = kb_attention(q, v)
    assert out.shape == (5, 12)
    # q* is a convex combination of the retrieved vectors: inside their per-dimension range
    assert torch.all(out <= v.max(dim=1).values + 1e-5) and torch.all(out >= v.min(dim=1).values - 1e-5)
    out.sum().backward()
    assert q.grad is not None and q.grad.abs().sum() > 0


def test_kb_guided_loss_terms():
    """The paper's loss DCL(q*, p), plus instance_weight x DCL(q, p); query_norm / temperature shape q*."""
    from types import SimpleNamespace

    from linksim.knowledge.ssl.base import LocalEncoder
    from linksim.knowledge.ssl.kb_guided import KBGuidedEncoder, dcl_loss, kb_attention

    torch.manual_seed(0)
    kbv = torch.nn.functional.normalize(torch.randn(40, 16), dim=1)

    class KB:
        d = 16

        def search(self, q, n):
            return torch.cdist(q, kbv).topk(n, largest=False).indices

    def make(**kw):
        blk = KBGuidedEncoder.__new__(KBGuidedEncoder)
        blk.p = KBGuidedEncoder.Params(top_n=5, noise_var=0.0, **kw)
        blk.kb, blk.values, blk.ctx = KB(), kbv, SimpleNamespace(device="cpu")
        torch.manual_seed(1)
        blk.model = LocalEncoder("small_cnn", 1, 8, 8, 16)
        return blk

    x1, x2 = torch.rand(6, 1, 28, 28), torch.rand(6, 1, 28, 28)
    g = lambda: torch.Generator().manual_seed(0)
    paper, inst = make(), make(instance_weight=0.5)
    _, q = paper.model(x1)
    _, p = paper.model(x2)
    q_star = kb_attention(q, kbv[KB().search(q, 5)])
    assert torch.allclose(paper.loss(x1, x2, g()), dcl_loss(q_star, p, 0.1))
    assert torch.allclose(inst.loss(x1, x2, g()), dcl_loss(q_star, p, 0.1) + 0.5 * dcl_loss(q, p, 0.1))
    # a unit query at temperature 1e-4 puts (almost) all attention on the nearest retrieved vector
    sharp = make(query_norm=True, attention_temperature=1e-4)
    qn = torch.nn.functional.normalize(q, dim=1)
    nearest = kbv[KB().search(qn, 1)[:, 0]]
    assert torch.allclose(kb_attention(qn, kbv[KB().search(qn, 5)], scale=1e-4), nearest, atol=1e-3)
    assert torch.isfinite(sharp.loss(x1, x2, g()))
    # kb_weight 0 drops the retrieval term; the anchor term is 1 - cos(q(anchor view), its KB vector)
    assert torch.allclose(make(kb_weight=0.0, instance_weight=0.5).loss(x1, x2, g()), 0.5 * dcl_loss(q, p, 0.1))
    anch = make(kb_weight=0.0, anchor_weight=2.0, anchor_batch=40)
    anch.anchors = torch.rand(40, 1, 28, 28)
    a = anch.anchor_loss(g())
    assert 0 <= float(a.detach()) <= 2 and torch.allclose(anch.loss(x1, x2, g()), 2.0 * a)
    # the anchor term pulls q(anchor) toward the KB vector built from that anchor
    opt = torch.optim.Adam(anch.model.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        anch.anchor_loss(g()).backward()
        opt.step()
    assert float(anch.anchor_loss(g()).detach()) < float(a.detach()) - 0.2


def test_two_views_differ_and_stay_in_range():
    from linksim.knowledge.ssl.base import two_views

    x = torch.rand(4, 3, 16, 16)
    a, b = two_views(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and b.shape == x.shape
    assert not torch.equal(a, b) and a.min() >= 0 and a.max() <= 1


TINY = """
name: kb_tiny
seed: 0
data: {dataset: fashion_mnist, batch_size: 50}
defs:
  budget: &budget {nf: 32, hidden: 32, epochs: 1, batch_size: 50, max_seconds: 2}
systems:
  kb:
    blocks:
      public:  {type: dataset_split, params: {classes: [0, 1, 2, 3, 4], train_range: [0, 150], test_range: [0, 100]}}
      private: {type: dataset_split, params: {classes: [5, 6, 7, 8, 9], train_range: [0, 150], test_range: [0, 100]}}
      heldout: {type: dataset_split, params: {train_split: test, train_range: [0, 150], test_range: [9900, 10000]}}
      teacher: {type: clip_teacher, params: {epochs: 1, batch_size: 50, pretrained: PRETRAINED}, inputs: {image: public.image, label: public.label}}
      skb:     {type: knowledge_base, params: {m: 4, nbits: 4}, inputs: {vectors: teacher.image_embedding}}
      tkb:     {type: knowledge_base, params: {m: 4, nbits: 2, unique: true}, inputs: {vectors: teacher.text_embedding}}
      stats:   {type: kb_stats, params: {name: image}, inputs: {kb: skb.vectors}}
      tstats:  {type: kb_stats, params: {name: text}, inputs: {kb: tkb.vectors}}
      enc:     {type: kb_guided_encoder, params: {<<: *budget, top_n: 5}, inputs: {image: heldout.image, train_image: private.image, kb: skb.vectors}}
      probe:   {type: linear_probe, params: {hidden: 32, epochs: 40, lr: 0.003, batch_size: 50}, inputs: {features: enc.features, label: heldout.label}}
      topk:    {type: topk_accuracy, inputs: {label: heldout.label, pred: probe.logits}}
  anchored:
    blocks:
      public:  {type: dataset_split, params: {classes: [0, 1, 2, 3, 4], train_range: [0, 150], test_range: [0, 100]}}
      private: {type: dataset_split, params: {classes: [5, 6, 7, 8, 9], train_range: [0, 150], test_range: [0, 100]}}
      heldout: {type: dataset_split, params: {train_split: test, train_range: [0, 150], test_range: [9900, 10000]}}
      teacher: {type: clip_teacher, params: {model: linksim-rn-clip, epochs: 1, batch_size: 50}, inputs: {image: public.image, label: public.label}}
      skb:     {type: knowledge_base, params: {m: 4, nbits: 4}, inputs: {vectors: teacher.image_embedding}}
      enc:     {type: kb_guided_encoder, params: {<<: *budget, top_n: 5, ANCHOR}, inputs: {image: heldout.image, train_image: private.image, kb: skb.vectors, anchor_image: public.image}}
      probe:   {type: linear_probe, params: {hidden: 32, epochs: 40, lr: 0.003, batch_size: 50}, inputs: {features: enc.features, label: heldout.label}}
      topk:    {type: topk_accuracy, inputs: {label: heldout.label, pred: probe.logits}}
  base:
    blocks: &ssl_blocks
      private: {type: dataset_split, params: {classes: [5, 6, 7, 8, 9], train_range: [0, 150], test_range: [0, 100]}}
      heldout: {type: dataset_split, params: {train_split: test, train_range: [0, 150], test_range: [9900, 10000]}}
      enc:     {type: nnclr_encoder, params: {<<: *budget, queue_size: 256}, inputs: {image: heldout.image, train_image: private.image}}
      probe:   {type: linear_probe, params: {hidden: 32, epochs: 40, lr: 0.003, batch_size: 50}, inputs: {features: enc.features, label: heldout.label}}
      topk:    {type: topk_accuracy, inputs: {label: heldout.label, pred: probe.logits}}
  dcl:
    blocks:
      <<: *ssl_blocks
      enc:     {type: dcl_encoder, params: *budget, inputs: {image: heldout.image, train_image: private.image}}
  vq:
    sweep: {snr_db: [-20, 20]}
    blocks:
      heldout: {type: dataset_split, params: {train_split: test, train_range: [0, 150], test_range: [9900, 10000]}}
      enc:     {type: simclr_encoder, params: *budget, inputs: {image: heldout.image}}
      vq:      {type: vq_encoder, params: {tokens: 4, codebook_size: 16, epochs: 30, batch_size: 50, lr: 0.005}, inputs: {features: enc.features, image: heldout.image}}
      ldpc:    {type: ldpc5g_encoder, params: {k: 16, n: 32}, inputs: {bits: vq.bits}}
      map:     {type: qam_mapper, params: {bits_per_symbol: 2}, inputs: {bits: ldpc.bits}}
      chan:    {type: awgn, params: {snr_db: $snr_db}, inputs: {x: map.symbols}}
      demap:   {type: qam_demapper, params: {bits_per_symbol: 2}, inputs: {y: chan.y, nvar: chan.nvar}}
      dec:     {type: ldpc5g_decoder, params: {k: 16, n: 32, impl: fast}, inputs: {llr: demap.llr}}
      rx:      {type: vq_decoder, inputs: {bits: dec.bits, vq: vq.bits}}
      psnr:    {type: psnr, inputs: {image: heldout.image, image_hat: rx.image}}
"""


def _teacher(out) -> str:
    """The teacher description recorded in run.json (training summaries keyed by block or system/block)."""
    training = json.loads((out / "run.json").read_text())["training"]
    return next(v["teacher"] for k, v in training.items() if k.split("/")[-1] == "teacher")


def _rows(path):
    with open(path / "results.csv") as f:
        return list(csv.DictReader(f))


def test_tiny_end_to_end_scenario(tmp_path):
    out = tmp_path / "out"
    text = TINY.replace("PRETRAINED", "null").replace("ANCHOR", "anchor_weight: 1.0, anchor_batch: 20")
    assert main(["run", write(tmp_path, text), "--out", str(out)]) == 0
    rows = _rows(out)
    get = {(r["system"], r.get("scheme") or "", r["metric"]): float(r["value"]) for r in rows if r["system"] != "vq"}
    for s in ("kb", "anchored", "base", "dcl"):  # 10 classes: chance 0.1 / 0.5; measured 0.45-0.59 / 0.91-0.96
        assert get[(s, "", "top1_accuracy")] > 0.3 and get[(s, "", "top5_accuracy")] > 0.8, s
    assert get[("kb", "image", "kb_reload_identical")] == 1.0
    assert get[("kb", "image", "kb_vectors")] == 150 and get[("kb", "text", "kb_vectors")] == 5
    assert get[("kb", "image", "kb_codebook_floats")] == 4 * (128 // 4) * 16  # m x d* x k*
    vq = {float(r["snr_db"]): float(r["value"]) for r in rows if r["system"] == "vq" and r["metric"] == "psnr_db"}
    # Es/N0 = -20 dB: LDPC fails, the decoded indices are noise (measured 8.8 dB); at 20 dB the sent tokens
    # arrive and the trained VQ-VAE reconstructs (11.4 dB)
    assert math.isfinite(vq[-20.0]) and vq[20.0] > vq[-20.0] + 1.5, vq
    assert "pre-trained here" in _teacher(out)


def test_missing_teacher_checkpoint_exits_2_naming_the_key(tmp_path, capsys):
    path = write(tmp_path, TINY.replace("PRETRAINED", str(tmp_path / "no" / "clip.pt")).replace("ANCHOR", "seed: 0"))
    assert main(["run", path, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "teacher" in err and "pretrained" in err and "not found" in err


def test_anchor_weight_without_anchor_images_exits_2(tmp_path, capsys):
    text = (TINY.replace("PRETRAINED", "null").replace("ANCHOR", "anchor_weight: 1.0")
            .replace(", anchor_image: public.image}", "}"))
    assert main(["run", write(tmp_path, text), "--out", str(tmp_path / "o"), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert "anchor_weight > 0 needs the 'anchor_image' input" in err and "enc" in err


def test_anchors_must_be_the_images_behind_the_kb_entries(tmp_path, capsys):
    # a text SKB of unique class prompts has 5 entries, not one per anchor image
    text = (TINY.replace("PRETRAINED", "null").replace("ANCHOR", "anchor_weight: 1.0")
            .replace("kb: skb.vectors, anchor_image", "kb: tkb.vectors, anchor_image")
            .replace("      enc:     {type: kb_guided_encoder, params: {<<: *budget, top_n: 5, anchor",
                     "      tkb:     {type: knowledge_base, params: {m: 4, nbits: 2, unique: true}, "
                     "inputs: {vectors: teacher.text_embedding}}\n"
                     "      enc:     {type: kb_guided_encoder, params: {<<: *budget, top_n: 5, anchor"))
    assert "kb: tkb.vectors, anchor_image" in text
    assert main(["run", write(tmp_path, text), "--out", str(tmp_path / "o"), "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert "150 anchor images but 5 knowledge-base entries" in err and "enc.inputs.anchor_image" in err


TEXT_KB = """
name: kb_err
data: {dataset: fashion_mnist, batch_size: 50}
systems:
  kb:
    blocks:
      public:  {type: dataset_split, params: {classes: [0, 1, 2, 3, 4], train_range: [0, 50], test_range: [0, 50]}}
      teacher: {type: clip_teacher, params: {epochs: 1, batch_size: 50}, inputs: {image: public.image, label: public.label}}
      tkb:     {type: knowledge_base, params: {m: 4, nbits: 3, unique: true}, inputs: {vectors: teacher.text_embedding}}
      stats:   {type: kb_stats, inputs: {kb: tkb.vectors}}
"""


def test_text_kb_with_too_many_centroids_exits_2(tmp_path, capsys):
    text = TEXT_KB  # 5 class prompts cannot train 2^3 centroids
    assert main(["run", write(tmp_path, text), "--out", str(tmp_path / "o")]) == 2
    assert "nbits" in capsys.readouterr().err


def test_teacher_from_local_checkpoint(tmp_path, capsys):
    import open_clip

    from linksim.knowledge.teacher import TINY, register_configs

    register_configs()
    torch.manual_seed(1)
    ckpt = tmp_path / "tiny_clip.pt"
    torch.save(open_clip.create_model(TINY).state_dict(), ckpt)
    text = TEXT_KB.replace("nbits: 3", "nbits: 2").replace("{epochs: 1, batch_size: 50}", f"{{pretrained: {ckpt}}}")
    out = tmp_path / "o"
    assert main(["run", write(tmp_path, text), "--out", str(out)]) == 0
    assert _teacher(out) == f"open_clip {TINY} pretrained={ckpt}"
    assert f"pretrained={ckpt}" in capsys.readouterr().err
    # the block computes with the checkpoint's weights: its embeddings are the checkpoint model's own (a
    # randomly initialised teacher would give others)
    from linksim.testing.harness import fit, fwd, make, spec

    specs = {"image": spec("image", 1, 8, 8), "label": spec("label", num_classes=3, class_names=["a", "b", "c"])}
    blk = fit(make("clip_teacher", {"pretrained": str(ckpt)}, specs),
              image=torch.zeros(1, 1, 8, 8), label=torch.zeros(1, dtype=torch.long))
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 2, 1, 2])
    got = fwd(blk, image=x, label=y)
    ref = open_clip.create_model(TINY, pretrained=str(ckpt)).eval()
    with torch.no_grad():
        img = ref.encode_image(blk._prep(x), normalize=True)
        txt = ref.encode_text(open_clip.get_tokenizer(TINY)(["a photo of a a", "a photo of a b", "a photo of a c"]),
                              normalize=True)
    assert torch.allclose(got["image_embedding"], img, atol=1e-5)
    assert torch.allclose(got["text_embedding"], txt[y], atol=1e-5)
    rand = make("clip_teacher", {}, specs)
    rand._build()
    assert not torch.allclose(fwd(rand, image=x, label=y)["image_embedding"], img, atol=1e-2)
