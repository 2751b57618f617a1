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


def test_pattern_segments_glob_and_any_depth(tmp_path):
    """A segment is a shell pattern (only keys it matches change, in order), and ``**`` spans any depth."""
    p = write(tmp_path, TEXT)
    cfg, _ = load_scenario(p, overrides=["systems.?.samples=5", "systems.[b].samples=9"])
    assert (cfg.systems["a"].samples, cfg.systems["b"].samples) == (5, 9)
    cfg, _ = load_scenario(p, overrides=["systems.*.blocks.ch*.params.label=y"])
    assert cfg.systems["a"].blocks["ch"].params["label"] == "y" and "ch" not in cfg.systems["b"].blocks
    # ** matches zero levels (systems.a.samples) and several (params.bits_per_sample), only existing keys
    cfg, _ = load_scenario(p, overrides=["systems.**.bits_per_sample=16", "**.samples=2"])
    for s in ("a", "b"):
        assert cfg.systems[s].blocks["src"].params["bits_per_sample"] == 16 and cfg.systems[s].samples == 2
        assert "bits_per_sample" not in cfg.systems[s].blocks["map"].params
    with pytest.raises(UserError, match=r"'systems.c\*.samples' matches no existing key"):
        load_scenario(p, overrides=["systems.c*.samples=1"])


@pytest.mark.parametrize("key", ["[", "**", "systems.[", "systems.[!ab].samples", "a.**", "**.[]]", "systems.\x00*.samples"])
def test_odd_patterns_are_one_line_errors(tmp_path, key):
    with pytest.raises(UserError, match="matches no existing key"):
        load_scenario(write(tmp_path, TEXT), overrides=[f"{key}=1"])


@pytest.mark.parametrize("key", ["**.**", "systems.**.blocks.**.nope", "**.*.**.*.**.x"])
def test_more_than_one_any_depth_segment_is_refused(tmp_path, key):
    with pytest.raises(UserError, match=r"holds more than one '\*\*'"):
        load_scenario(write(tmp_path, TEXT), overrides=[f"{key}=1"])


def test_pattern_value_set_is_not_searched_again():
    """A ``**`` override whose value holds the same key sets it where it was, not inside the new value."""
    from linksim.scenario import _set_wild

    raw = {"a": {"k": 1, "b": {"k": 2}}}
    assert _set_wild(raw, ["**", "k"], {"k": 0}) == 2
    assert raw == {"a": {"k": {"k": 0}, "b": {"k": {"k": 0}}}}
    raw = {"x[0]": {"k": 1}, "x0": {"k": 1}}  # a key equal to the segment matches even where it reads as a pattern
    assert _set_wild(raw, ["x[0]", "*"], 2) == 2 and raw == {"x[0]": {"k": 2}, "x0": {"k": 2}}


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


VARS = """
name: v
seed: 3
sweep: {snr_db: [2.0, 6.0]}
defs:
  link: &link
    src:   {type: bit_source, params: {bits_per_sample: 64}}
    map:   {type: qam_mapper, params: {bits_per_symbol: $bps}, inputs: {bits: src.bits}}
    chan:  {type: $channel, params: $chan, inputs: {x: map.symbols}}
    demap: {type: qam_demapper, inputs: {y: chan.y, nvar: chan.nvar}}
    ber:   {type: ber, inputs: {bits: src.bits, bits_hat: demap.bits}}
systems:
  awgn:     {samples: 400, vars: {bps: 2, channel: awgn, chan: {snr_db: $snr_db}}, blocks: *link}
  rayleigh: {samples: 400, vars: {bps: 2, channel: rayleigh, chan: {snr_db: "${snr_db + 1}"}}, blocks: *link}
  literal:
    samples: 400
    blocks:
      src:   {type: bit_source, params: {bits_per_sample: 64}}
      map:   {type: qam_mapper, params: {bits_per_symbol: 2}, inputs: {bits: src.bits}}
      chan:  {type: rayleigh, params: {snr_db: "${snr_db + 1}"}, inputs: {x: map.symbols}}
      demap: {type: qam_demapper, inputs: {y: chan.y, nvar: chan.nvar}}
      ber:   {type: ber, inputs: {bits: src.bits, bits_hat: demap.bits}}
"""


def test_system_vars_stand_for_their_values_and_are_not_swept():
    import yaml

    import linksim
    from linksim.scenario import system_nodes

    cfg = linksim.load(VARS)
    for sname, chan, snr in (("awgn", "awgn", 6.0), ("rayleigh", "rayleigh", 7.0)):
        nodes = {n.name: n for n in system_nodes(cfg, sname, {"snr_db": 6.0})}
        assert nodes["chan"].type == chan and nodes["chan"].params == {"snr_db": snr}
        assert nodes["map"].params == {"bits_per_symbol": 2}
    df = linksim.run(VARS)
    assert "bps" not in df.columns and "channel" not in df.columns and "chan" not in df.columns
    assert sorted(set(df.snr_db)) == [2.0, 6.0]  # a constant reading a sweep variable keeps the system swept
    ber = df[df.metric == "ber"].set_index(["system", "snr_db"]).value
    assert ber.loc[("awgn", 6.0)] < ber.loc[("rayleigh", 6.0)]  # fading costs at the same mean SNR
    # the system written with constants runs exactly as the same system written out (same names, same draws)
    text = yaml.safe_load(VARS)
    text["systems"] = {"rayleigh": text["systems"]["literal"]}
    lit = linksim.run(text)
    assert lit[lit.metric == "ber"].value.tolist() == ber.loc["rayleigh"].tolist()
    text = yaml.safe_load(VARS)
    del text["systems"]["literal"]
    text["systems"]["awgn"]["vars"]["bps"] = 4
    nodes = {n.name: n for n in system_nodes(linksim.load(text), "awgn", {"snr_db": 2.0})}
    assert nodes["map"].params == {"bits_per_symbol": 4}


def test_system_vars_read_the_constants_above_them():
    import yaml

    import linksim
    from linksim.scenario import system_nodes

    d = yaml.safe_load(VARS)
    d["systems"]["awgn"]["vars"] = {"half": 1, "bps": "${2 * half}", "offset": "${snr_db - 2 * half}", "channel": "awgn",
                                    "chan": {"snr_db": "$offset"}}
    nodes = {n.name: n for n in system_nodes(linksim.load(d), "awgn", {"snr_db": 6.0})}
    assert nodes["map"].params == {"bits_per_symbol": 2} and nodes["chan"].params == {"snr_db": 4.0}


@pytest.mark.parametrize("edit,msg,key", [
    (lambda d: d["systems"]["awgn"]["vars"].update(snr_db=3), "also a sweep variable", "systems.awgn.vars.snr_db"),
    (lambda d: d["systems"]["awgn"].update(sweep={"bps": [2, 4]}), "also a sweep variable", "systems.awgn.vars.bps"),
    (lambda d: d["systems"]["awgn"]["vars"].update(i=1), "copy index", "systems.awgn.vars.i"),
    (lambda d: d["systems"]["awgn"]["vars"].pop("bps"), "'$bps' is not a sweep variable", "systems.awgn.blocks.map"),
    (lambda d: d["systems"]["awgn"]["vars"].update(chan={"snr_db": "$nope"}), "'$nope' is not a sweep variable",
     "systems.awgn.vars.chan.snr_db"),
    (lambda d: d["systems"]["awgn"]["vars"].update({"2x": 1}), "vars", "systems.awgn.vars"),
    (lambda d: d["systems"]["awgn"].update(vars={"chan": {"snr_db": "$s"}, "s": "$snr_db", "bps": 2, "channel": "awgn"}),
     "'$s' is a constant defined after this one", "systems.awgn.vars.chan.snr_db"),
    (lambda d: d["systems"]["awgn"]["vars"].update(bps="${bps + 1}"), "'$bps' is this constant itself", "systems.awgn.vars.bps"),
])
def test_system_vars_errors_name_the_key(edit, msg, key):
    import yaml

    import linksim

    d = yaml.safe_load(VARS)
    edit(d)
    with pytest.raises(UserError) as err:
        linksim.validate(d)
    assert msg in str(err.value) and key in str(err.value)
