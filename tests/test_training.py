"""The one training loop (linksim.training.fit) and its bookkeeping: NaN -> exit 2, patience, stopped_by,
time-cap warning, isolated RNG / determinism, run.json summaries, progress lines off a terminal."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import write
from linksim.errors import UserError
from linksim.training import fit, isolated_rng

ROOT = Path(__file__).resolve().parent.parent


def _linear_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(200, 5, generator=g)
    y = x @ torch.arange(1.0, 6.0)
    return x, y


def _fit_linear(lr=0.05, epochs=20, patience=None, max_seconds=None, seed=0, where="s.yaml: systems.a.blocks.b"):
    x, y = _linear_problem()
    with isolated_rng(123):
        model = torch.nn.Linear(5, 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr)

    def step(idx, gen):
        return torch.nn.functional.mse_loss(model(x[idx]).squeeze(1), y[idx])

    res = fit(step, len(x), optimizer=opt, epochs=epochs, batch_size=32, seed=seed, patience=patience,
              max_seconds=max_seconds, modules=[model], where=where, name="b")
    return res, model


def test_stops_on_epochs_and_loss_decreases():
    res, _ = _fit_linear(epochs=5)
    assert res["stopped_by"] == "epochs" and res["epochs"] == 5
    assert res["losses"][-1] < res["losses"][0]
    assert res["batch_size"] == 32 and res["seconds"] >= 0


def test_patience_stops_a_flat_loss():
    res, _ = _fit_linear(lr=0.0, epochs=50, patience=2)  # lr 0: only the batches drawn change the loss
    losses = res["losses"]
    best = losses.index(min(losses))
    assert res["stopped_by"] == "patience" and res["epochs"] == best + 1 + 2 < 50
    assert all(v >= losses[best] for v in losses[best + 1:])


def test_nan_loss_is_a_user_error_naming_the_key_and_epoch():
    with pytest.raises(UserError) as e:
        _fit_linear(lr=1e30, epochs=5)
    msg = str(e.value)
    assert msg.startswith("s.yaml: systems.a.blocks.b: training diverged") and "epoch 1" in msg


def test_time_cap_stops_with_a_warning(capsys):
    res, _ = _fit_linear(epochs=50, max_seconds=1e-9)
    assert res["stopped_by"] == "time_cap" and res["epochs"] == 1
    err = capsys.readouterr().err
    assert "warning" in err and "wall-clock cap" in err and "systems.a.blocks.b" in err


def test_same_seed_same_weights_and_global_rng_untouched():
    torch.manual_seed(7)
    before = torch.rand(3)
    torch.manual_seed(7)
    _, m1 = _fit_linear(seed=4)  # the loop seeds the torch RNG in a fork: the global stream is not moved
    _, m2 = _fit_linear(seed=4)
    _, m3 = _fit_linear(seed=5)
    assert torch.equal(m1.weight, m2.weight) and not torch.equal(m1.weight, m3.weight)
    torch.manual_seed(7)
    x = torch.rand(3)
    assert torch.equal(before, x)


def test_modules_left_in_eval_mode():
    _, model = _fit_linear(epochs=1)
    assert not model.training


TINY = """
name: tiny_training
seed: 0
data: {dataset: digits, batch_size: 100, train_samples: 300, test_samples: 100}
sweep: {image_snr_db: [0, 20]}
systems:
  s:
    blocks:
      data:  {type: dataset}
      noise: {type: pixel_noise, params: {snr_db: $image_snr_db}, inputs: {image: data.image}}
      enc:   {type: semantic_encoder, params: {nf: 16, method: cl, sparsity: ms, lam: 0.001, epochs: 2, patience: 5}, inputs: {image: noise.image, train_image: data.image, label: data.label}}
      clf:   {type: classifier, params: {epochs: 4, lr: LR}, inputs: {features: enc.features, label: data.label}}
      acc:   {type: accuracy, inputs: {label: data.label, pred: clf.logits}}
"""


def _run_cli(tmp_path, text, *args):
    path = write(tmp_path, text)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "linksim.cli", "run", path, "--out", str(tmp_path / "out"), *args],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


@pytest.mark.block("semantic_encoder", "classifier")
def test_run_json_training_summary_and_progress_lines_off_a_terminal(tmp_path):
    p = _run_cli(tmp_path, TINY.replace("LR", "0.001"))
    assert p.returncode == 0, p.stderr
    lines = [l for l in p.stderr.splitlines() if l.startswith("[linksim")]
    assert any("trained s/enc (semantic_encoder)" in l and "stopped by epochs" in l for l in lines), p.stderr
    assert sum("point " in l and "left" in l for l in lines) == 2, p.stderr  # one per sweep point, with an ETA
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    enc = info["training"]["s/enc"]
    assert enc["stopped_by"] == "epochs" and enc["epochs"] == 2
    assert info["training"]["s/clf"]["stopped_by"] in ("epochs", "patience")
    assert info["peak_rss_mb"] > 50
    assert set(info["seconds"]["training"]) == {"semantic_encoder", "classifier"}
    assert isinstance(info["seconds"]["evaluation"], float) and info["seconds"]["evaluation"] >= 0


@pytest.mark.block("semantic_encoder")
def test_diverging_encoder_exits_2_naming_its_key_and_epoch(tmp_path, monkeypatch, capsys):
    import linksim.semantic.training as st
    from linksim.cli import main

    real = st.supcon_loss
    calls = []

    def diverging(z, y, t):  # finite in epoch 1 (one batch: 300 samples, batch_size 256), then NaN
        calls.append(1)
        loss = real(z, y, t)
        return loss * float("nan") if len(calls) > 1 else loss

    monkeypatch.setattr(st, "supcon_loss", diverging)
    path = write(tmp_path, TINY.replace("LR", "0.001"))
    rc = main(["run", path, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2, err
    last = err.strip().splitlines()[-1]
    assert "systems.s.blocks.enc" in last and "training diverged" in last and "epoch 2" in last, last
    assert "Traceback" not in err
