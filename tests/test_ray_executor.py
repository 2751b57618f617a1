"""--executor ray: sweep points as Ray tasks on a local instance (loopback) give the local executor's results."""
import json

import pytest

from linksim.runner import run_scenario
from conftest import write

ray = pytest.importorskip("ray")

SCEN = """
name: ray_check
seed: 11
data: {dataset: digits, batch_size: 120, train_samples: 300, test_samples: 120}
sweep: {snr_db: [0, 4, 8], image_snr_db: [0, 20]}
systems:
  qpsk:
    samples: 50
    blocks:
      src:   {type: bit_source, params: {bits_per_sample: 400}}
      map:   {type: qam_mapper, params: {bits_per_symbol: 2}, inputs: {bits: src.bits}}
      chan:  {type: rayleigh, params: {snr_db: $snr_db}, inputs: {x: map.symbols}}
      demap: {type: qam_demapper, params: {bits_per_symbol: 2}, inputs: {y: chan.y, nvar: chan.nvar}}
      ber:   {type: ber, inputs: {bits: src.bits, bits_hat: demap.bits}}
  stopped:                 # error-count stopping and early stop (runs in the driver, in snr order)
    batch_size: 10
    stop: {metric: ber, target_errors: 30, max_samples: 60, early_stop: snr_db}
    sweep: {snr_db: [0, 4, 30, 40]}
    blocks: &stop_blocks
      src:   {type: bit_source, params: {bits_per_sample: 400}}
      map:   {type: qam_mapper, params: {bits_per_symbol: 2}, inputs: {bits: src.bits}}
      chan:  {type: awgn, params: {snr_db: $snr_db}, inputs: {x: map.symbols}}
      demap: {type: qam_demapper, params: {bits_per_symbol: 2}, inputs: {y: chan.y, nvar: chan.nvar}}
      ber:   {type: ber, inputs: {bits: src.bits, bits_hat: demap.bits}}
  stopped_remote:          # error-count stopping in Ray tasks
    batch_size: 10
    stop: {metric: ber, target_errors: 30, max_samples: 60}
    sweep: {snr_db: [0, 4, 8]}
    blocks: *stop_blocks
  semantic:
    blocks:
      data:  {type: dataset}
      noise: {type: pixel_noise, params: {snr_db: $image_snr_db}, inputs: {image: data.image}}
      enc:   {type: semantic_encoder, params: {nf: 16, epochs: 1, batch_size: 100}, inputs: {image: noise.image, label: data.label}}
      clf:   {type: classifier, params: {epochs: 3}, inputs: {features: enc.features, label: data.label}}
      acc:   {type: accuracy, inputs: {label: data.label, pred: clf.logits}}
"""


def test_ray_executor_matches_local(tmp_path, monkeypatch):
    p = write(tmp_path, SCEN)
    local = run_scenario(p, tmp_path / "local", progress=False, plots=False, cache_dir=tmp_path / "c1")
    monkeypatch.setenv("RAY_ADDRESS", "")
    remote = run_scenario(p, tmp_path / "ray", progress=False, plots=False, cache_dir=tmp_path / "c2",
                          executor="ray")
    assert (remote / "results.csv").read_text() == (local / "results.csv").read_text()
    info = json.loads((remote / "run.json").read_text())
    assert info["executor"] == "ray"
    assert [e["point"] for e in info["early_stopped"]] == [{"snr_db": 40}]
