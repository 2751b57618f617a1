"""SSCC chain: CRC blocks, budgets, fallback to the mean image, end-to-end cliff, missing bpgenc -> exit 2."""
import csv
import math

import pytest
import torch
from conftest import write

from linksim.block import Spec
from linksim.cli import main
from linksim.context import RunContext
from linksim.link.crc import CRCDecoderBlock, CRCEncoderBlock
from linksim.runner import run_scenario


def test_crc_detects_corrupted_blocks():
    ctx = RunContext()
    enc = CRCEncoderBlock("c", CRCEncoderBlock.Params(crc="CRC24A"), ctx)
    dec = CRCDecoderBlock("d", CRCDecoderBlock.Params(crc="CRC24A"), ctx)
    assert enc.setup({"bits": Spec("bits", (200,))})["bits"].shape == (224,)
    out = dec.setup({"bits": Spec("bits", (224,))})
    assert out["bits"].shape == (200,) and out["ok"].shape == (1,)
    g = torch.Generator().manual_seed(0)
    bits = torch.randint(0, 2, (64, 200), generator=g).float()
    coded = enc.forward(bits)["bits"]
    assert coded.shape == (64, 224)
    bad = coded.clone()
    for i in range(0, 64, 2):  # corrupt every other block: 1 to 5 flipped bits anywhere (payload or CRC)
        pos = torch.randperm(224, generator=g)[: 1 + i % 5]
        bad[i, pos] = 1 - bad[i, pos]
    res = dec.forward(bad)
    ok = res["ok"].reshape(-1)
    assert ok[0::2].sum() == 0 and ok[1::2].sum() == 32
    assert torch.equal(res["bits"][1::2], bits[1::2])


SCEN = """
name: sscc_t
seed: 0
data: {dataset: fashion_mnist, train_samples: 300, test_samples: 12, batch_size: 12}
sweep: {snr_db: [-6, 30]}
systems:
  link:
    blocks:
      data:  {type: dataset}
      enc:   {type: image_codec_encoder, params: {codec: heif, channel_uses: 1400, bits_per_channel_use: 2.0, reserved_bits: 24}, inputs: {image: data.image}}
      crc:   {type: crc_encoder, inputs: {bits: enc.bits}}
      ldpc:  {type: ldpc5g_encoder, params: {k: 2800, n: 5600}, inputs: {bits: crc.bits}}
      map:   {type: qam_mapper, params: {bits_per_symbol: 4}, inputs: {bits: ldpc.bits}}
      chan:  {type: awgn, params: {snr_db: $snr_db}, inputs: {x: map.symbols}}
      demap: {type: qam_demapper, params: {bits_per_symbol: 4}, inputs: {y: chan.y, nvar: chan.nvar}}
      dec:   {type: ldpc5g_decoder, params: {k: 2800, n: 5600, impl: fast}, inputs: {llr: demap.llr}}
      crcd:  {type: crc_decoder, inputs: {bits: dec.bits}}
      img:   {type: image_codec_decoder, inputs: {bits: crcd.bits, ok: crcd.ok}}
      psnr:  {type: psnr, inputs: {image: data.image, image_hat: img.image}}
      stats: {type: codec_stats, inputs: {fallback: img.fallback, fit: enc.ok, payload_bits: enc.payload_bits, quality: enc.quality}}
  tiny_budget:
    blocks:
      data:  {type: dataset}
      enc:   {type: image_codec_encoder, params: {codec: heif, budget_bits: 64}, inputs: {image: data.image}}
      img:   {type: image_codec_decoder, inputs: {bits: enc.bits}}
      psnr:  {type: psnr, inputs: {image: data.image, image_hat: img.image}}
      stats: {type: codec_stats, inputs: {fallback: img.fallback, fit: enc.ok}}
  capacity:
    blocks:
      data:  {type: dataset}
      enc:   {type: image_codec_encoder, params: {codec: jpeg, channel_uses: 130, capacity_snr_db: $snr_db}, inputs: {image: data.image}}
      img:   {type: image_codec_decoder, inputs: {bits: enc.bits}}
      stats: {type: codec_stats, inputs: {fallback: img.fallback, fit: enc.ok}}
"""


def rows(out):
    with open(out / "results.csv") as f:
        return {(r["system"], r["snr_db"], r["metric"]): float(r["value"]) for r in csv.DictReader(f)}


def mean_image_psnr():
    """PSNR of the training-split mean image on the same 12 test images (what a fallback gives)."""
    from linksim.data.datasets import load_split

    def subset(split, n):
        x, _ = load_split("fashion_mnist", split)
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(12345))[:n].sort().values.numpy()
        return torch.from_numpy(x[idx]).float() / 255

    mean = subset("train", 300).double().mean(0).float()
    test = subset("test", 12)
    mse = (test - mean).pow(2).flatten(1).mean(1)
    return float((10 * torch.log10(1 / mse)).mean())


def test_end_to_end_cliff_and_flagged_fallbacks(tmp_path):
    out = run_scenario(write(tmp_path, SCEN), tmp_path / "out", progress=False, plots=False)
    r = rows(out)
    budget = 1400 * 2 - 24  # 16-QAM, LDPC rate 1/2, CRC24A
    assert r[("link", "30", "bits_per_sample")] == budget
    assert r[("link", "30", "channel_uses_per_sample")] == 1400
    # high SNR: every image decoded at a high quality (near-lossless HEVC)
    assert r[("link", "30", "fallback_rate")] == 0 and r[("link", "30", "codec_fit_rate")] == 1
    assert r[("link", "30", "psnr_db")] > 40
    assert r[("link", "30", "payload_bits")] <= budget
    # far below the LDPC threshold: every CRC fails -> the mean image
    assert r[("link", "-6", "fallback_rate")] == 1
    assert r[("link", "-6", "psnr_db")] == pytest.approx(mean_image_psnr(), abs=1e-3)
    # a budget no HEVC stream fits: a flagged result, not a crash
    assert r[("tiny_budget", "", "codec_fit_rate")] == 0 and r[("tiny_budget", "", "fallback_rate")] == 1
    assert r[("tiny_budget", "", "psnr_db")] == pytest.approx(mean_image_psnr(), abs=1e-3)
    # capacity bound: floor(130 log2(1 + SNR)) bits, delivered without error
    for snr in (-6, 30):
        assert r[("capacity", str(snr), "bits_per_sample")] == math.floor(130 * math.log2(1 + 10 ** (snr / 10)))
    assert r[("capacity", "30", "fallback_rate")] == 0 and r[("capacity", "-6", "fallback_rate")] == 1


BPG = """
name: t
data: {dataset: fashion_mnist, test_samples: 2}
systems:
  s:
    blocks:
      data: {type: dataset}
      enc:  {type: image_codec_encoder, params: {codec: bpg, budget_bits: 800}, inputs: {image: data.image}}
      img:  {type: image_codec_decoder, inputs: {bits: enc.bits}}
"""


def test_missing_bpgenc_exits_2_naming_the_block(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bpgenc / bpgdec
    code = main(["run", write(tmp_path, BPG), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert "systems.s.blocks.enc" in lines[0] and "bpgenc" in lines[0]


@pytest.mark.parametrize("params, words", [
    ("{codec: heif}", "set exactly one of"),
    ("{codec: heif, budget_bits: 800, capacity_snr_db: 3, channel_uses: 10}", "set exactly one of"),
    ("{codec: heif, bits_per_channel_use: 2.0}", "needs channel_uses"),
    ("{codec: heif, channel_uses: 10, bits_per_channel_use: 2.0, reserved_bits: 24}", "the budget is -4 bits"),
    ("{codec: heif, channel_uses: 10, capacity_snr_db: 3, outage: 0.1}", "outage must be in (0, 1) with fading: rayleigh"),
    ("{codec: webp, budget_bits: 800}", "codec"),
])
def test_bad_budget_parameters_exit_2(tmp_path, capsys, params, words):
    text = BPG.replace("{codec: bpg, budget_bits: 800}", params)
    code = main(["validate", write(tmp_path, text)])
    err = capsys.readouterr().err
    assert code == 2 and "systems.s.blocks.enc.params" in err and words in err, err


def test_decoder_needs_an_image_codec_payload(tmp_path, capsys):
    text = BPG.replace("{codec: bpg, budget_bits: 800}", "{codec: heif, budget_bits: 800}").replace(
        "img:  {type: image_codec_decoder, inputs: {bits: enc.bits}}",
        "src: {type: bit_source, params: {bits_per_sample: 800}}\n"
        "      img:  {type: image_codec_decoder, inputs: {bits: src.bits}}")
    code = main(["validate", write(tmp_path, text)])
    err = capsys.readouterr().err
    assert code == 2 and "systems.s.blocks.img.inputs" in err and "image_codec_encoder" in err, err
