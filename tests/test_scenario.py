"""Scenario loading: --set / quick overrides (including wildcards through YAML merge copies), sweeps."""
import pytest

from linksim.errors import UserError
from linksim.runner import Plan
from linksim.scenario import load_scenario
from conftest import write

TEXT = """
name: t
sweep: {snr_db: [0, 1], unused: [5, 6]}
defs:
  base: &base {bits_per_symbol: 2}
quick:
  systems.*.blocks.*.params.bits_per_symbol: 4
systems:
  a:
    samples: 3
    blocks:
      src: {type: bit_source, params: {bits_per_sample: 8}}
      map: {type: qam_mapper, params: {<<: *base}, inputs: {bits: src.bits}}
      ch:  {type: awgn, params: {snr_db: $snr_db, label: x}, inputs: {x: map.symbols}}
  b:
    samples: 3
    sweep: {k: [1, 2, 3]}
    blocks:
      src: {type: bit_source, params: {bits_per_sample: 8}}
      map: {type: qam_mapper, params: {<<: *base}, inputs: {bits: src.bits}}
"""


def test_wildcard_quick_reaches_merged_copies_and_only_existing_keys(tmp_path):
    cfg, _ = load_scenario(write(tmp_path, TEXT), quick=True)
    for s in ("a", "b"):
        assert cfg.systems[s].blocks["map"].params["bits_per_symbol"] == 4
        assert "bits_per_symbol" not in cfg.systems[s].blocks["src"].params


def test_wildcard_matching_nothing_is_an_error(tmp_path):
    with pytest.raises(UserError, match="matches no existing key"):
        load_scenario(write(tmp_path, TEXT), overrides=["systems.*.blocks.*.params.nope=1"])


def test_sweep_uses_only_referenced_global_variables(tmp_path):
    cfg, _ = load_scenario(write(tmp_path, TEXT))
    plan = Plan(cfg, "t")
    assert plan.systems["a"][0] == {"snr_db": [0, 1]}
    assert plan.systems["b"][0] == {"k": [1, 2, 3]}
    assert len(plan.systems["b"][1]) == 3


def test_set_overrides_and_types(tmp_path):
    cfg, raw = load_scenario(write(tmp_path, TEXT), overrides=["systems.a.samples=7", "sweep.snr_db=[3]"])
    assert cfg.systems["a"].samples == 7 and cfg.sweep["snr_db"] == [3]


def test_blocks_command_lists_every_block_and_parameter(capsys):
    from linksim.cli import main
    from linksim.registry import BLOCKS, block_class

    assert main(["blocks"]) == 0
    out = capsys.readouterr().out
    for name in BLOCKS:
        assert f"\n{name}: " in "\n" + out, name
        for pname in block_class(name).Params.model_fields:
            assert f"- {pname} (" in out, (name, pname)
