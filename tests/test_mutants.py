"""CI subset of the block-mutant check (the full check: python -m linksim.testing.mutants)."""
import json
import os
import subprocess
import sys
from pathlib import Path

from linksim.testing import mutant_plugin
from linksim.testing.mutants import kinds_for

ROOT = Path(__file__).resolve().parents[1]


def test_kinds_per_block_role():
    assert kinds_for("bit_source") == ["zero"]  # a source without inputs: a roll is an equivalent mutant
    assert kinds_for("pixel_noise") == ["zero", "roll"]
    assert kinds_for("ber") == ["sinkzero"]
    assert kinds_for("qam_mapper") == ["zero", "roll"]


def test_mutants_of_three_blocks_are_killed(tmp_path):
    out = tmp_path / "m.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("LINKSIM_MUTANT", None)
    p = subprocess.run([sys.executable, "-m", "linksim.testing.mutants", "--blocks", "power_normalize,label_bits,bler",
                        "--tests", "tests/blocks", "--json", str(out)], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600)
    res = json.loads(out.read_text())
    assert p.returncode == 0, p.stdout + p.stderr
    assert res["survivors"] == [] and res["untested"] == []
    assert {(m["block"], m["kind"]) for m in res["mutants"]} == {
        ("power_normalize", "zero"), ("power_normalize", "roll"), ("label_bits", "zero"), ("label_bits", "roll"),
        ("bler", "sinkzero")}


def test_patch_is_undone():
    from linksim.channels.power import PowerNormalize

    orig = PowerNormalize.forward
    undo = mutant_plugin.apply("power_normalize", "zero")
    assert PowerNormalize.forward is not orig
    undo()
    assert PowerNormalize.forward is orig
