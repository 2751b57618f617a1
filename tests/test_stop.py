"""Error-count stopping: bad settings exit 2 naming the key; streaming, early stop, determinism, resume."""
import json

import pytest

from conftest import link_blocks, write
from linksim.cli import main
from linksim.results import read_csv
from linksim.runner import run_scenario

TEXT = """
name: t
seed: 3
sweep: {snr_db: [0, 4, 9, 14, 20]}
systems:
  s:
    batch_size: 20
    stop: {metric: ber, target_errors: 50, max_samples: 200, min_samples: 40, early_stop: snr_db}
    blocks:
""" + link_blocks(50) + """      bler:  {type: bler, inputs: {bits: src.bits, bits_hat: demap.bits}}
"""


@pytest.mark.parametrize("old, new, key, words", [
    ("target_errors: 50", "target_errors: 0", "systems.s.stop.target_errors", "positive"),
    ("target_errors: 50", "target_errors: -3", "systems.s.stop.target_errors", "positive"),
    ("max_samples: 200", "max_samples: 20", "systems.s.stop.max_samples", "smaller than min_samples"),
    ("metric: ber,", "metric: psnr_db,", "systems.s.stop.metric", "no metric block of this system counts errors"),
    ("early_stop: snr_db", "early_stop: ebno", "systems.s.stop.early_stop", "not a sweep variable"),
    ("batch_size: 20", "batch_size: 20\n    samples: 100", "systems.s.samples", "exclude each other"),
    ("target_errors: 50", "target_errors: many", "systems.s.stop.target_errors", "integer"),
    ("min_samples: 40,", "min_samples: 40, max_errors: 3,", "systems.s.stop.max_errors", "unknown key"),
])
@pytest.mark.parametrize("cmd", ["validate", "run"])
def test_bad_stop_settings_exit_2_naming_the_key(tmp_path, capsys, old, new, key, words, cmd):
    assert old in TEXT
    p = write(tmp_path, TEXT.replace(old, new))
    args = [cmd, p] + (["--out", str(tmp_path / "o"), "--no-plots", "--no-cache"] if cmd == "run" else [])
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert key in err and words in err, err
    assert not (tmp_path / "o" / "results.csv").exists()


def _rows(out):
    return read_csv(out / "results.csv")


def test_stop_rule_streams_until_target_errors_then_early_stops(tmp_path):
    p = write(tmp_path, TEXT)
    out = run_scenario(p, tmp_path / "o", progress=False, plots=False, cache_dir=None)
    ber = {r["snr_db"]: r for r in _rows(out) if r["metric"] == "ber"}
    # 0 dB: ~8 % BER, 1000 bits per batch of 20 frames: the target is met in the first batch, but
    # min_samples keeps it going to 40 frames
    assert ber[0]["stopped_by"] == "target_errors" and ber[0]["samples"] == 40 and ber[0]["errors"] >= 50
    assert ber[0]["n"] == 40 * 50
    # 4 dB (BER ~1.2e-2 for QPSK): stops as soon as 50 errors were counted, at a batch boundary
    assert ber[4]["stopped_by"] == "target_errors" and ber[4]["samples"] % 20 == 0 and ber[4]["samples"] < 200
    assert ber[4]["errors"] >= 50
    # 14 dB: no error in 200 frames -> max_samples with zero errors; 20 dB is then skipped
    assert ber[14]["stopped_by"] == "max_samples" and ber[14]["errors"] == 0 and ber[14]["samples"] == 200
    assert ber[20]["stopped_by"] == "early_stop" and ber[20]["n"] == 0 and ber[20]["value"] != ber[20]["value"]
    # the other sink of a point stops with the point
    bler = {r["snr_db"]: r for r in _rows(out) if r["metric"] == "bler"}
    assert bler[4]["samples"] == ber[4]["samples"] and 20 not in bler
    info = json.loads((out / "run.json").read_text())
    assert info["early_stopped"] == [{"system": "s", "point": {"snr_db": 20}, "after": {"snr_db": 14}}]
    assert info["stop_rules"]["s"]["target_errors"] == 50
    # every rate row carries its interval around the value
    for r in _rows(out):
        if r["metric"] in ("ber", "bler") and r["n"]:
            assert r["ci_low"] <= r["value"] <= r["ci_high"]


def test_stop_decisions_are_deterministic_and_resume(tmp_path):
    p = write(tmp_path, TEXT)
    a = run_scenario(p, tmp_path / "a", progress=False, plots=False, cache_dir=None)
    b = run_scenario(p, tmp_path / "b", progress=False, plots=False, cache_dir=None)
    assert (a / "results.csv").read_text() == (b / "results.csv").read_text()
    # resume: every simulated point comes from the point store, the skipped one is re-derived
    (b / "results.csv").unlink()
    run_scenario(p, tmp_path / "b", progress=False, plots=False, cache_dir=None)
    assert (a / "results.csv").read_text() == (b / "results.csv").read_text()
    assert json.loads((b / "run.json").read_text())["points_resumed"] == 4


def test_early_stop_groups_by_the_other_sweep_variables(tmp_path):
    text = TEXT.replace("sweep: {snr_db: [0, 4, 9, 14, 20]}", "sweep: {snr_db: [20, 14, 4], bps: [1, 2]}").replace(
        "bits_per_symbol: 2", "bits_per_symbol: $bps")
    out = run_scenario(write(tmp_path, text), tmp_path / "o", progress=False, plots=False, cache_dir=None)
    ber = {(r["snr_db"], r["bps"]): r for r in _rows(out) if r["metric"] == "ber"}
    # sweep values listed downwards: points still run by increasing snr_db, and CSV order is the sweep's
    assert [k for k in ber] == [(20, 1), (20, 2), (14, 1), (14, 2), (4, 1), (4, 2)]
    assert ber[(14, 1)]["stopped_by"] == "max_samples" and ber[(20, 1)]["stopped_by"] == "early_stop"
    assert ber[(14, 2)]["stopped_by"] == "max_samples" and ber[(20, 2)]["stopped_by"] == "early_stop"


def test_sweep_variable_named_like_a_result_column_is_refused(tmp_path, capsys):
    p = write(tmp_path, TEXT.replace("sweep: {snr_db: [0, 4, 9, 14, 20]}", "sweep: {snr_db: [0], n: [8]}").replace(
        "bits_per_sample: 50", "bits_per_sample: $n"))
    assert main(["validate", p]) == 2
    err = capsys.readouterr().err
    assert "sweep.n" in err and "results.csv column" in err
