"""Malformed scenarios and bad CLI input exit 2 with a one-line message naming the key, never a traceback."""
import subprocess
import sys

import pytest

from linksim.cli import main
from conftest import write

GOOD = """
name: t
sweep: {snr_db: [0]}
systems:
  s:
    samples: 4
    blocks:
      src:   {type: bit_source, params: {bits_per_sample: 8}}
      map:   {type: qam_mapper, params: {bits_per_symbol: 2}, inputs: {bits: src.bits}}
      chan:  {type: awgn, params: {snr_db: $snr_db}, inputs: {x: map.symbols}}
      demap: {type: qam_demapper, params: {bits_per_symbol: 2}, inputs: {y: chan.y, nvar: chan.nvar}}
      ber:   {type: ber, inputs: {bits: src.bits, bits_hat: demap.bits}}
"""


def run_cli(capsys, *args):
    code = main(list(args))
    err = capsys.readouterr().err
    return code, err


def test_good_scenario_validates(tmp_path, capsys):
    code, err = run_cli(capsys, "validate", write(tmp_path, GOOD))
    assert code == 0, err


@pytest.mark.parametrize("mutate, key, words", [
    (lambda s: s.replace("systems:\n  s:", "systems:\n  s: [1,\n"), "line", "bad YAML"),
    (lambda s: s.replace("type: awgn", "type: awgnn"), "systems.s.blocks.chan.type", "unknown block type 'awgnn'"),
    (lambda s: s.replace("bits_per_symbol: 2}, inputs: {bits", "bits_per_symbol: two}, inputs: {bits"),
     "systems.s.blocks.map.params.bits_per_symbol", "integer"),
    (lambda s: s.replace("bits_per_symbol: 2}, inputs: {bits", "bits_per_symbol: 3}, inputs: {bits"),
     "systems.s.blocks.map.params", "bits_per_symbol must be one of"),
    (lambda s: s.replace("params: {bits_per_sample: 8}", "params: {bits_per_sample: 8, colour: red}"),
     "systems.s.blocks.src.params.colour", "unknown parameter"),
    (lambda s: s.replace("params: {bits_per_sample: 8}", "params: {}"),
     "systems.s.blocks.src.params.bits_per_sample", "missing required"),
    (lambda s: s.replace("inputs: {x: map.symbols}", "inputs: {}"), "systems.s.blocks.chan.inputs",
     "input 'x' of block 'chan' is not connected"),
    (lambda s: s.replace("inputs: {x: map.symbols}", "inputs: {x: mapp.symbols}"),
     "systems.s.blocks.chan.inputs.x", "unknown block 'mapp'"),
    (lambda s: s.replace("inputs: {x: map.symbols}", "inputs: {x: map.symbolz}"),
     "systems.s.blocks.chan.inputs.x", "no output 'symbolz'"),
    (lambda s: s.replace("inputs: {x: map.symbols}", "inputs: {x: map.symbols, z: src.bits}"),
     "systems.s.blocks.chan.inputs.z", "no input port 'z'"),
    (lambda s: s.replace("inputs: {x: map.symbols}", "inputs: {x: src.bits}"),
     "systems.s.blocks.chan.inputs.x", "expects complex"),
    (lambda s: s.replace("inputs: {bits: src.bits}", "inputs: {bits: demap.bits}"),
     "inputs", "cycle in the graph"),
    (lambda s: s.replace("snr_db: $snr_db", "snr_db: $ebno"), "systems.s.blocks.chan.params.snr_db",
     "'$ebno' is not a sweep variable"),
    (lambda s: s.replace("name: t\n", "name: t\nsweeep: {}\n"), "sweeep", "unknown key"),
    (lambda s: s.replace("samples: 4", "samples: -4"), "systems.s.samples", "greater than 0"),
    (lambda s: s.replace("name: t\n", "name: t\ndata: {dataset: imagenet}\n") .replace(
        "src:   {type: bit_source, params: {bits_per_sample: 8}}",
        "src:   {type: bit_source, params: {bits_per_sample: 8}}\n      img: {type: dataset}"),
     "data.dataset", "unknown dataset 'imagenet'"),
])
def test_malformed_scenarios_exit_2(tmp_path, capsys, mutate, key, words):
    text = mutate(GOOD)
    assert text != GOOD
    code, err = run_cli(capsys, "validate", write(tmp_path, text))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert key in lines[0] and words in lines[0], lines[0]
    assert "Traceback" not in err
    # `run` rejects it the same way before doing any work
    code2, err2 = run_cli(capsys, "run", write(tmp_path, text), "--out", str(tmp_path / "o"))
    assert code2 == 2 and err2.strip() == err.strip()


def test_missing_file_and_bad_set(tmp_path, capsys):
    code, err = run_cli(capsys, "validate", str(tmp_path / "nope.yaml"))
    assert code == 2 and "nope.yaml" in err and "not found" in err
    code, err = run_cli(capsys, "validate", write(tmp_path, GOOD), "--set", "systems.s.blocks.chan.params.snr_db")
    assert code == 2 and "--set expects dotted.key=value" in err
    code, err = run_cli(capsys, "validate", write(tmp_path, GOOD), "--set", "systems.s.blocks.chan.params.snr_db=abc")
    assert code == 2 and "systems.s.blocks.chan.params.snr_db" in err


def test_subprocess_exit_code_and_no_traceback(tmp_path):
    p = write(tmp_path, GOOD.replace("type: awgn", "type: nope"))
    r = subprocess.run([sys.executable, "-m", "linksim.cli", "run", p, "--out", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.startswith("linksim: error:") and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
