"""The Python API: linksim.run / load / validate on paths, YAML text, dicts and loaded scenarios."""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

import linksim
from linksim.errors import UserError
from conftest import link_blocks

ROOT = Path(__file__).resolve().parent.parent

TEXT = f"""
name: api_t
seed: 3
sweep: {{snr_db: [0, 6]}}
quick: {{systems.*.samples: 64}}
systems:
  qpsk:
    samples: 256
    blocks:
{link_blocks(64)}"""


def ber(df, snr):
    return float(df[(df.metric == "ber") & (df.snr_db == snr)]["value"].iloc[0])


def test_forms_of_a_scenario_give_the_same_frame(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "s.yaml"
    p.write_text(TEXT)
    d = yaml.safe_load(TEXT)
    frames = [linksim.run(str(p)), linksim.run(p), linksim.run(TEXT), linksim.run(d), linksim.run(linksim.load(d))]
    for f in frames[1:]:
        pd.testing.assert_frame_equal(frames[0], f)
    assert list(frames[0].columns[:2]) == ["system", "snr_db"]
    assert 0 < ber(frames[0], 6) < ber(frames[0], 0) < 0.5
    assert sorted(os.listdir(tmp_path)) == ["s.yaml"]  # out=None: no results folder, no file at all


def test_out_writes_the_folder_as_the_cli_does_and_the_frame_is_its_csv(tmp_path):
    from linksim.cli import main

    p = tmp_path / "s.yaml"
    p.write_text(TEXT)
    df = linksim.run(p, out=tmp_path / "api", quick=True)
    assert main(["run", str(p), "--out", str(tmp_path / "cli"), "--quick", "--no-plots"]) == 0
    assert (tmp_path / "api" / "results.csv").read_bytes() == (tmp_path / "cli" / "results.csv").read_bytes()
    assert {"run.json", "config.json", "points", "ber.png"} <= set(os.listdir(tmp_path / "api"))
    pd.testing.assert_frame_equal(df, pd.read_csv(tmp_path / "api" / "results.csv"), check_dtype=False)
    assert df["n"].iloc[0] == 64 * 64  # quick: 64 frames of 64 bits
    # the same configuration again resumes from its points; another one is refused unless overwrite
    pd.testing.assert_frame_equal(df, linksim.run(p, out=tmp_path / "api", quick=True))
    with pytest.raises(UserError, match="holds results of another configuration"):
        linksim.run(p, out=tmp_path / "api")
    assert linksim.run(p, out=tmp_path / "api", overwrite=True)["n"].iloc[0] == 256 * 64


def test_overrides_and_seed(tmp_path):
    base = linksim.run(TEXT, quick=True)
    as_list = linksim.run(TEXT, overrides=["systems.qpsk.samples=64", "sweep.snr_db=[6]"])
    as_dict = linksim.run(TEXT, overrides={"systems.qpsk.samples": 64, "sweep.snr_db": [6]})
    pd.testing.assert_frame_equal(as_list, as_dict)
    assert ber(as_dict, 6) == ber(base, 6) and len(as_dict) == len(base) // 2
    other = linksim.run(TEXT, quick=True, seed=4)
    assert ber(other, 0) != ber(base, 0)  # another seed, other noise
    pd.testing.assert_frame_equal(other, linksim.run(TEXT, quick=True, seed=4))


def test_load_and_validate():
    cfg = linksim.load(TEXT, quick=True)
    assert cfg.systems["qpsk"].samples == 64 and cfg.seed == 3
    assert linksim.validate(TEXT) is None


@pytest.mark.parametrize("change, key, message", [
    ({"type": "awgnn"}, "<dict>: systems.qpsk.blocks.chan.type", "unknown block type 'awgnn'"),
    ({"inputs": {"x": "src.bits"}}, "<dict>: systems.qpsk.blocks.chan.inputs.x", "expects complex"),
    ({"params": {"snr_db": "$nope"}}, "<dict>: systems.qpsk.blocks.chan.params.snr_db", "not a sweep variable"),
])
def test_errors_raise_user_error_naming_the_key(change, key, message):
    d = yaml.safe_load(TEXT)
    d["systems"]["qpsk"]["blocks"]["chan"].update(change)
    for call in (linksim.validate, linksim.load, linksim.run):
        with pytest.raises(UserError, match=message) as e:
            call(d)
        assert e.value.where.startswith(key), e.value.where


def test_bad_arguments_raise_user_error(tmp_path):
    with pytest.raises(UserError, match=r"<yaml>: line 3: bad YAML"):
        linksim.validate("name: x\nsystems: {a: [\n")
    with pytest.raises(UserError, match="scenario file not found"):
        linksim.validate(str(tmp_path / "nope.yaml"))
    with pytest.raises(UserError, match="a path, YAML text or a dict"):
        linksim.validate(42)
    with pytest.raises(UserError, match="seed must be an integer"):
        linksim.validate(TEXT, seed=-1)
    with pytest.raises(UserError, match="a list of 'dotted.key=value' strings or a dict"):
        linksim.validate(TEXT, overrides="systems.qpsk.samples=3")
    with pytest.raises(UserError, match=r"^<yaml>: systems.qpsk.samples: Input should be greater than 0"):
        linksim.validate(TEXT, overrides={"systems.qpsk.samples": -1})
    with pytest.raises(UserError, match=r"^override systems.\*.nope: 'systems.\*.nope' matches no existing key"):
        linksim.validate(TEXT, overrides={"systems.*.nope": 1})


def test_import_linksim_stays_light():
    code = ("import sys, linksim; from linksim import Block, Params, Port, Spec, Metric, expect; "
            "print(sorted(m for m in ('torch', 'sionna', 'pandas') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr


def test_a_loaded_scenario_keeps_naming_its_file(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text(TEXT)
    cfg = linksim.load(p)
    cfg.systems["qpsk"].blocks["chan"].type = "awgnn"  # changed after loading: errors still name the file
    with pytest.raises(UserError, match="unknown block type 'awgnn'") as e:
        linksim.run(cfg)
    assert e.value.where == f"{p}: systems.qpsk.blocks.chan.type"
