"""Issue-4 learned JSCC blocks: deep JSCC and multi-resolution JSCC (SMRC) on tiny digits runs."""
import io
import json
import math

import pytest
import torch
from conftest import write

from linksim.block import Spec
from linksim.cli import main
from linksim.results import read_csv
from linksim.runner import run_scenario

JSCC = """
name: tiny_jscc
seed: 1
data: {dataset: digits, batch_size: 50, train_samples: 300, test_samples: 150}
sweep: {snr_db: [0, 20]}
systems:
  deep:
    blocks:
      data: {type: dataset}
      enc:  {type: jscc_encoder, params: {bandwidth_ratio: 0.25, width: 16, epochs: 6, batch_size: 10, lr: 0.003, train_snr_db: 10}, inputs: {image: data.image}}
      chan: {type: awgn, params: {snr_db: $snr_db}, inputs: {x: enc.symbols}}
      dec:  {type: jscc_decoder, inputs: {y: chan.y}}
      psnr: {type: psnr, inputs: {image: data.image, image_hat: dec.image}}
      # a second receiver fine-tuned on noisy training symbols (channel with in_training), rows scheme=ft
      chft: {type: awgn, params: {snr_db: $snr_db, in_training: true, label: ft}, inputs: {x: enc.symbols}}
      decft: {type: jscc_decoder, params: {finetune_epochs: 1}, inputs: {y: chft.y, image: data.image}}
      psft: {type: psnr, params: {name: ft}, inputs: {image: data.image, image_hat: decft.image}}
  smrc:
    blocks:
      data: {type: dataset}
      enc:  {type: smrc_encoder, params: {symbols: [4, 8, 12], width: 16, epochs: 6, batch_size: 10, lr: 0.003,
                                          train_channel: rayleigh, train_snr_db: [5, 15], alpha: 1.0,
                                          beta: [0.01, 0.01, {important_classes: [0, 1], other_weight: 0.01, weight: 0.02}]},
             inputs: {image: data.image, label: data.label}}
      chan: {type: rayleigh, params: {snr_db: $snr_db}, inputs: {x: enc.symbols}}
      dec1: {type: smrc_decoder, params: {layer: 1, label: L1}, inputs: {y: chan.y, label: data.label}}
      dec3: {type: smrc_decoder, params: {layer: 3, label: L3}, inputs: {y: chan.y, label: data.label}}
      p1:   {type: psnr, params: {name: L1}, inputs: {image: data.image, image_hat: dec1.image}}
      p3:   {type: psnr, params: {name: L3}, inputs: {image: data.image, image_hat: dec3.image}}
      a1:   {type: accuracy, params: {name: L1, macro: true}, inputs: {label: dec1.label, pred: dec1.logits}}
      a3:   {type: accuracy, params: {name: L3, macro: true}, inputs: {label: dec3.label, pred: dec3.logits}}
"""


def _val(rows, system, metric, **labels):
    got = [r["value"] for r in rows if r["system"] == system and r["metric"] == metric
           and all(r.get(k) == v for k, v in labels.items())]
    assert len(got) == 1, (system, metric, labels, got)
    return got[0]


def test_encoder_power_and_channel_sub_blocks():
    from linksim.jscc.models import JSCCDecoder, JSCCEncoder, training_channel

    torch.manual_seed(0)
    enc = JSCCEncoder(3, (32, 32), [5, 7, 11], width=8)
    with torch.no_grad():
        s = enc(torch.rand(6, 3, 32, 32))
    assert s.shape == (6, 23) and s.dtype == torch.complex64
    for a, b in ((0, 5), (5, 12), (12, 23)):  # every sub-block has unit mean energy -> the whole vector too
        assert torch.allclose(s[:, a:b].abs().pow(2).mean(1), torch.ones(6), atol=1e-5)
    dec = JSCCDecoder(12, 3, (32, 32), width=8, num_classes=4)
    with torch.no_grad():
        img, logits = dec(s)
    assert img.shape == (6, 3, 32, 32) and logits.shape == (6, 4) and 0 <= float(img.min()) <= float(img.max()) <= 1
    x = torch.ones(4000, 50, dtype=torch.complex64)
    g = torch.Generator().manual_seed(0)
    n0 = 10 ** (-3 / 10)
    assert abs(float((training_channel(x, "awgn", (3.0, 3.0), g) - x).abs().pow(2).mean()) / n0 - 1) < 0.02
    ray = training_channel(x, "rayleigh", (3.0, 3.0), g)  # equalised noise n/h: heavier than AWGN
    # |n/h|^2 = N0 E1/E2 with E1, E2 ~ Exp(1) independent: the ratio's median is 1 (P(E1 < E2) = 1/2), its
    # mean infinite; 4000 taps x 50 noise samples: 4 sigma of the median ~ 6 %
    e2 = (ray - x).abs().pow(2)
    assert abs(float(e2.median()) / n0 - 1) < 0.08
    assert float(e2.mean()) > 3 * n0  # heavy tail (AWGN: |n|^2 ~ N0 Exp(1), mean N0)


def test_split_symbols():
    from linksim.jscc.smrc import split_symbols

    assert split_symbols(130, [1, 1, 1]) == [44, 43, 43]
    assert split_symbols(10, [1, 3]) == [3, 7] and sum(split_symbols(131, [0.2, 0.3, 0.5])) == 131


def test_meta_passes_through_channels_and_power_normalize():
    from linksim.channels.awgn import AWGNChannel
    from linksim.channels.fading import RayleighChannel
    from linksim.channels.power import PowerNormalize
    from linksim.context import RunContext

    ctx = RunContext()
    marker = object()
    spec = Spec("complex", (7,), {"jscc_encoder": marker})
    for cls, params in ((AWGNChannel, {"snr_db": 3}), (RayleighChannel, {"snr_db": 3})):
        blk = cls("c", cls.Params.model_validate(params), ctx)
        assert blk.setup({"x": spec})["y"].meta["jscc_encoder"] is marker
    pn = PowerNormalize("p", PowerNormalize.Params(), ctx)
    assert pn.setup({"x": spec})["symbols"].meta["jscc_encoder"] is marker


def test_tiny_jscc_and_smrc_run_cache_and_counts(tmp_path):
    from linksim.data.datasets import load_split

    p = write(tmp_path, JSCC)
    out = run_scenario(p, tmp_path / "a", progress=False, plots=False)
    rows = read_csv(out / "results.csv")
    # deep JSCC: floor(0.25 * 64) = 16 channel uses, bandwidth ratio 1/4
    assert _val(rows, "deep", "channel_uses_per_sample", snr_db=20, scheme=None) == 16
    assert _val(rows, "deep", "bandwidth_ratio", snr_db=20, scheme=None) == pytest.approx(0.25)
    hi, lo = _val(rows, "deep", "psnr_db", snr_db=20, scheme=None), _val(rows, "deep", "psnr_db", snr_db=0, scheme=None)
    ft = _val(rows, "deep", "psnr_db", snr_db=20, scheme="ft")  # the fine-tuned receiver (its effect:
    # tests/blocks/test_jscc_blocks.py::test_jscc_decoder_fine_tuning_adapts_to_its_channel)
    # beats sending nothing (the mean training image) at high SNR, and degrades with the channel
    x, _ = load_split("digits", "train")
    xt, _ = load_split("digits", "test")
    xt = torch.from_numpy(xt[:150]).float() / 255
    mean = torch.from_numpy(x).float().div(255).mean(0)
    mean_psnr = float((10 * torch.log10(1 / (xt - mean).pow(2).flatten(1).mean(1))).mean())
    assert hi > mean_psnr + 1.0 and ft > mean_psnr + 1.0, (hi, ft, mean_psnr)
    assert hi > lo
    # SMRC: total uses from the channel, per-layer uses/ratios from the decoders' labels
    assert _val(rows, "smrc", "channel_uses_per_sample", snr_db=20, scheme=None) == 24
    assert _val(rows, "smrc", "channel_uses_per_sample", snr_db=20, scheme="L1") == 4
    assert _val(rows, "smrc", "bandwidth_ratio", snr_db=20, scheme="L3") == pytest.approx(24 / 64)
    for metric in ("psnr_db", "accuracy", "recall_macro", "precision_macro"):
        for layer in ("L1", "L3"):
            assert math.isfinite(_val(rows, "smrc", metric, snr_db=20, scheme=layer))
    assert _val(rows, "smrc", "psnr_db", snr_db=20, scheme="L3") > _val(rows, "smrc", "psnr_db", snr_db=20, scheme="L1")
    info = json.loads((out / "run.json").read_text())
    assert {"deep/enc", "deep/decft", "smrc/enc"} <= set(info["training"])  # kept apart per system
    assert info["training"]["deep/decft"]["finetune_epochs"] == 1
    # second run: every trained block (encoders and decoders) comes from the cache, identical results
    out2 = run_scenario(p, tmp_path / "b", progress=False, plots=False)
    info2 = json.loads((out2 / "run.json").read_text())
    assert info2["weight_cache"]["misses"] == 0 and all(v["from_cache"] for v in info2["training"].values())
    assert (out2 / "results.csv").read_text() == (out / "results.csv").read_text()


def test_pooled_labels_and_state_roundtrip():
    from linksim.context import RunContext
    from linksim.jscc.smrc import SMRCDecoderBlock, SMRCEncoderBlock

    ctx = RunContext()
    enc = SMRCEncoderBlock("enc", SMRCEncoderBlock.Params.model_validate(
        {"bandwidth_ratio": 0.5, "layers": 2, "width": 8,
         "beta": [0.01, {"important_classes": [3, 7], "weight": 1.0, "other_weight": 0.1}]}), ctx)
    lab = Spec("label", (), {"num_classes": 10})
    out = enc.setup({"image": Spec("image", (1, 8, 8)), "label": lab})["symbols"]
    assert out.shape == (32,) and out.meta["sub_blocks"] == [16, 16]
    dec = SMRCDecoderBlock("d", SMRCDecoderBlock.Params(layer=2), ctx)
    specs = dec.setup({"y": out, "label": lab})
    assert specs["logits"].shape == (3,) and specs["label"].meta["num_classes"] == 3
    enc._build()
    dec.fit(None, ctx)  # takes the companion decoder; no data needed without fine-tuning
    y = enc.forward(torch.rand(4, 1, 8, 8))["symbols"]
    got = dec.forward(y, torch.tensor([3, 7, 0, 9]))
    assert got["label"].tolist() == [0, 1, 2, 2] and got["logits"].shape == (4, 3)
    buf = io.BytesIO()
    torch.save(dec.state(), buf)
    buf.seek(0)
    dec2 = SMRCDecoderBlock("d", SMRCDecoderBlock.Params(layer=2), ctx)
    dec2.setup({"y": out, "label": lab})
    dec2.load_state(torch.load(buf, weights_only=True))
    assert torch.equal(dec2.forward(y, torch.tensor([3, 7, 0, 9]))["image"], got["image"])


@pytest.mark.parametrize("old, new, key", [
    ("bandwidth_ratio: 0.25, ", "", "systems.deep.blocks.enc.params"),
    ("train_snr_db: 10}", "train_snr_db: [12, 3]}", "systems.deep.blocks.enc.params.train_snr_db"),
    ("dec:  {type: jscc_decoder, inputs: {y: chan.y}}", "dec:  {type: jscc_decoder, inputs: {y: chan.nvar}}",
     "systems.deep.blocks.dec.inputs.y"),
    ("dec1: {type: smrc_decoder, params: {layer: 1, label: L1}, inputs: {y: chan.y",
     "dec1: {type: jscc_decoder, inputs: {y: chan.y", "systems.smrc.blocks.dec1.inputs"),
    ("layer: 3, label: L3", "layer: 4, label: L3", "systems.smrc.blocks.dec3.params"),
    ("alpha: 1.0", "alpha: [1.0, 2.0]", "systems.smrc.blocks.enc.params"),
    ("important_classes: [0, 1]", "important_classes: [0, 12]", "systems.smrc.blocks.enc.params"),
    ("inputs: {image: data.image, label: data.label}}", "inputs: {image: data.image}}", "systems.smrc.blocks.enc.inputs"),
])
def test_bad_parameters_exit_2(tmp_path, capsys, old, new, key):
    text = JSCC.replace(old, new)
    assert text != JSCC
    code = main(["validate", write(tmp_path, text)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert key in err, err


def test_fast_fading_training_channel_has_a_tap_per_symbol():
    from linksim.jscc.models import training_channel

    x = torch.ones(50, 2000, dtype=torch.complex64)
    g = torch.Generator().manual_seed(1)
    block = training_channel(x, "rayleigh_sample", (20.0, 20.0), g) - x
    fast = training_channel(x, "rayleigh_symbol", (20.0, 20.0), g) - x
    # the equalised noise n / h: with one tap per sample each row has its own level 1/|h|^2, with a tap per
    # symbol every row mixes many taps and the row medians agree
    spread = lambda e: float(e.abs().pow(2).median(1).values.log().std())
    assert spread(block) > 0.8 and spread(fast) < 0.2, (spread(block), spread(fast))


@pytest.mark.parametrize("kind", ["rayleigh_sample", "rayleigh_symbol"])
def test_training_channel_equalises_with_an_estimate_of_error_variance_csi_error_n0(kind):
    from linksim.jscc.models import training_channel

    b, n, snr_db, r = 400, 64, 3.0, 1.0
    x = torch.complex(torch.randn(b, n), torch.randn(b, n)) / math.sqrt(2.0)
    # the same draws by hand: Es/N0 per sample, noise, the taps, then the estimation error
    g = torch.Generator().manual_seed(5)
    snr = snr_db + 0.0 * torch.rand(b, generator=g)
    std = torch.sqrt(10.0 ** (-snr / 10.0) / 2.0)[:, None]
    noise = torch.complex(torch.randn(b, n, generator=g), torch.randn(b, n, generator=g)) * std
    shape = (b, n) if kind == "rayleigh_symbol" else (b, 1)
    h = torch.complex(torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)) / math.sqrt(2.0)
    e = torch.complex(torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)) * std * math.sqrt(r)
    want = (h * x + noise) / (h + e)
    got = training_channel(x, kind, (snr_db, snr_db), torch.Generator().manual_seed(5), csi_error=r)
    assert torch.allclose(got, want, atol=1e-5)
    # csi_error 0 is perfect-CSI equalisation: x + n / h, with the same draws as before the option existed
    perfect = training_channel(x, kind, (snr_db, snr_db), torch.Generator().manual_seed(5))
    assert torch.allclose(perfect, x + noise / h, atol=1e-5)
    assert not torch.allclose(perfect, got, atol=1e-3)


def test_train_csi_error_needs_a_fading_training_channel():
    from linksim.jscc.deep_jscc import JSCCEncoderBlock

    with pytest.raises(Exception, match="train_csi_error needs train_channel: rayleigh"):
        JSCCEncoderBlock.Params.model_validate({"symbols": 8, "train_csi_error": 1.0})
    assert JSCCEncoderBlock.Params.model_validate(
        {"symbols": 8, "train_channel": "rayleigh", "train_csi_error": 1.0}).train_csi_error == 1.0


def test_smrc_nested_layers_start_from_the_previous_decision():
    from linksim.context import RunContext
    from linksim.jscc.smrc import SMRCEncoderBlock

    def build(beta, nested=True):
        enc = SMRCEncoderBlock("enc", SMRCEncoderBlock.Params.model_validate(
            {"symbols": [4, 4, 4], "width": 8, "beta": beta, "nested": nested}), RunContext())
        enc.setup({"image": Spec("image", (1, 8, 8)), "label": Spec("label", (), {"num_classes": 10})})
        return enc

    pool = lambda imp: {"important_classes": imp}
    enc = build([pool([1, 5, 8]), pool([1, 5, 7, 8, 9]), 0.01])
    lifts = enc.lifts()
    # layer 2 classes (1, 5, 7, 8, 9, other) lie in layer 1 classes (1, 5, other, 8, other, other)
    assert lifts[0] is None and lifts[1].tolist() == [0, 1, 3, 2, 3, 3]
    assert lifts[2].tolist() == [5, 0, 5, 5, 5, 1, 5, 2, 3, 4]
    enc._build()
    outs = enc.decoders(enc.forward(torch.rand(6, 1, 8, 8))["symbols"])
    # zero-initialised corrections: each layer starts as the previous one's scores, lifted
    assert torch.equal(outs[1][1], outs[0][1][:, lifts[1]]) and torch.equal(outs[2][1], outs[1][1][:, lifts[2]])
    # a layer whose classes straddle the previous layer's gets an independent head; nested: false -> all independent
    assert build([pool([1, 2]), pool([3]), 0.01]).lifts()[1] is None
    assert build(0.01, nested=False).lifts() == [None, None, None]
    assert build(0.01).lifts()[2].tolist() == list(range(10))
