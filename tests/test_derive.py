"""Envelopes: per sweep point the best of several systems, copying every metric of the chosen one."""
import pytest
from conftest import write

import linksim

from linksim.derive import envelope_rows
from linksim.errors import UserError


def _rows():
    rows = []
    for snr, a, b in [(0, 10.0, 12.0), (5, 20.0, 18.0), (10, 25.0, 25.0)]:
        rows += [{"system": "m_a", "snr_db": snr, "metric": "psnr_db", "value": a, "n": 4},
                 {"system": "m_a", "snr_db": snr, "metric": "ssim", "value": a / 100, "n": 4},
                 {"system": "m_b", "snr_db": snr, "metric": "psnr_db", "value": b, "n": 4},
                 {"system": "m_b", "snr_db": snr, "metric": "ssim", "value": b / 100, "n": 4},
                 {"system": "other", "snr_db": snr, "metric": "psnr_db", "value": 99.0, "n": 4}]
    return rows


def test_envelope_picks_best_per_point_and_copies_its_other_metrics():
    env = envelope_rows(_rows(), "env", ["m_a", "m_b"], "psnr_db")
    psnr = {r["snr_db"]: (r["value"], r["chosen"]) for r in env if r["metric"] == "psnr_db"}
    ssim = {r["snr_db"]: (r["value"], r["chosen"]) for r in env if r["metric"] == "ssim"}
    assert psnr == {0: (12.0, "m_b"), 5: (20.0, "m_a"), 10: (25.0, "m_a")}  # tie -> first name
    assert ssim == {0: (0.12, "m_b"), 5: (0.20, "m_a"), 10: (0.25, "m_a")}
    assert all(r["system"] == "env" for r in env)


def test_envelope_min_mode():
    env = envelope_rows(_rows(), "env", ["m_a", "m_b"], "psnr_db", mode="min")
    assert {r["snr_db"]: r["chosen"] for r in env if r["metric"] == "psnr_db"} == {0: "m_a", 5: "m_b", 10: "m_a"}


SCEN = """
name: env
sweep: {snr_db: [0, 8]}
envelopes:
  - {name: best, systems: ["bpsk*", qpsk], metric: ber, mode: min}
systems:
  bpsk:
    samples: 4000
    blocks:
      src: {type: bit_source, params: {bits_per_sample: 2}}
      map: {type: qam_mapper, params: {bits_per_symbol: 1}, inputs: {bits: src.bits}}
      ch:  {type: awgn, params: {snr_db: $snr_db}, inputs: {x: map.symbols}}
      dem: {type: qam_demapper, params: {bits_per_symbol: 1}, inputs: {y: ch.y, nvar: ch.nvar}}
      ber: {type: ber, inputs: {bits: src.bits, bits_hat: dem.bits}}
  qpsk:
    samples: 4000
    blocks:
      src: {type: bit_source, params: {bits_per_sample: 2}}
      map: {type: qam_mapper, params: {bits_per_symbol: 2}, inputs: {bits: src.bits}}
      ch:  {type: awgn, params: {snr_db: $snr_db}, inputs: {x: map.symbols}}
      dem: {type: qam_demapper, params: {bits_per_symbol: 2}, inputs: {y: ch.y, nvar: ch.nvar}}
      ber: {type: ber, inputs: {bits: src.bits, bits_hat: dem.bits}}
"""


def test_envelope_rows_in_results_csv():
    ber = linksim.run(SCEN).query("metric == 'ber'")  # the rows of results.csv, no file written
    env = ber[ber.system == "best"]
    assert len(env) == 2 and set(env.chosen) == {"bpsk"}  # BPSK has the lower BER at equal Es/N0
    twin = ber[ber.system == "bpsk"].set_index("snr_db")["value"]
    for snr, value in zip(env.snr_db, env.value):
        assert twin[snr] == value


@pytest.mark.parametrize("bad, msg", [
    ('{name: best, systems: ["nope*"], metric: ber}', "envelopes.0.systems"),
    ("{name: bpsk, systems: [qpsk], metric: ber}", "envelopes.0.name"),
])
def test_bad_envelopes_are_user_errors(bad, msg):
    text = SCEN.replace('{name: best, systems: ["bpsk*", qpsk], metric: ber, mode: min}', bad)
    with pytest.raises(UserError) as e:
        linksim.validate(text)
    assert msg in str(e.value)


def test_envelope_over_swept_columns():
    rows = []
    for snr in (0, 10):
        for bps, val in ((1, 10.0 + snr), (2, 5.0 + 2 * snr)):
            rows.append({"system": "s", "snr_db": snr, "bps": bps, "metric": "psnr_db", "value": val, "n": 3})
    env = envelope_rows(rows, "env", ["s"], "psnr_db", over=["bps"])
    assert {r["snr_db"]: r["chosen"] for r in env} == {0: "bps=1", 10: "bps=2"}
    assert all("bps" not in r for r in env)


def test_expressions_of_sweep_variables(tmp_path):
    from linksim.runner import Plan
    from linksim.scenario import load_scenario, system_nodes

    text = SCEN.replace("bits_per_sample: 2}}\n      map: {type: qam_mapper, params: {bits_per_symbol: 1}",
                        "bits_per_sample: '${floor(uses * bps * 0.5) - 1}'}}\n"
                        "      map: {type: qam_mapper, params: {bits_per_symbol: $bps}", 1)
    text = text.replace("sweep: {snr_db: [0, 8]}", "sweep: {snr_db: [0, 8], uses: [10], bps: [2]}")
    cfg, _ = load_scenario(write(tmp_path, text))
    plan = Plan(cfg, "t")
    assert set(plan.systems["bpsk"][0]) == {"snr_db", "uses", "bps"}  # variables inside ${...} are swept
    nodes = {n.name: n for n in system_nodes(cfg, "bpsk", {"snr_db": 0, "uses": 10, "bps": 2})}
    assert nodes["src"].params["bits_per_sample"] == 9
    bad = text.replace("floor(uses * bps * 0.5) - 1", '__import__("os")')
    with pytest.raises(UserError, match="may use only"):
        linksim.validate(bad)
    unknown = text.replace("floor(uses * bps * 0.5) - 1", "nope + 1")
    with pytest.raises(UserError, match="'\\$nope' is not a sweep variable"):
        linksim.validate(unknown)


def test_plot_systems_filter_and_chosen_column_do_not_split_lines(tmp_path):
    from linksim.plot import plot_rows

    rows = _rows() + envelope_rows(_rows(), "env", ["m_a", "m_b"], "psnr_db")
    calls = []
    import matplotlib.axes

    orig = matplotlib.axes.Axes.plot

    def spy(self, *a, **k):
        calls.append(k.get("label"))
        return orig(self, *a, **k)

    matplotlib.axes.Axes.plot = spy
    try:
        paths = plot_rows(rows, tmp_path, ["snr_db"], [{"metric": "psnr_db", "systems": ["m_*", "env"]}])
    finally:
        matplotlib.axes.Axes.plot = orig
    assert paths and sorted(calls) == ["env", "m_a", "m_b"]  # 'other' filtered out, envelope one line


# ------------------------------------------------------------------ issue 17: exact behaviour of derive.py
from linksim.derive import (check_envelopes, check_normal_approx, coded_link, derived_rows, match_systems,
                            normal_approx_rows)


def test_match_systems_keeps_pattern_order_without_duplicates_and_names_the_key():
    systems = ["b1", "a1", "a2", "c"]
    assert match_systems(["a*", "b1", "a1", "*1"], systems, "k") == ["a1", "a2", "b1"]
    with pytest.raises(UserError) as e:
        match_systems(["a*", "z?"], systems, "s.yaml: envelopes.3.systems")
    assert str(e.value) == "s.yaml: envelopes.3.systems: 'z?' matches no system"
    assert e.value.where == "s.yaml: envelopes.3.systems"
    assert match_systems(["A*"], systems + ["Ab"], "k") == ["Ab"]  # case-sensitive matching


def test_envelope_tie_goes_to_the_smaller_choice_whatever_the_row_order():
    rows = [{"system": "zeta", "x": 1, "metric": "m", "value": 5.0, "n": 1},
            {"system": "alpha", "x": 1, "metric": "m", "value": 5.0, "n": 1},
            {"system": "mid", "x": 1, "metric": "m", "value": 4.0, "n": 1}]
    for order in (rows, rows[::-1]):
        for mode in ("max", "min"):
            env = envelope_rows(order, "e", ["zeta", "alpha", "mid"], "m", mode=mode)
            want = "alpha" if mode == "max" else "mid"
            assert [(r["chosen"], r["value"]) for r in env] == [(want, 5.0 if mode == "max" else 4.0)]


def test_envelope_nan_never_wins_and_partial_points_use_the_members_that_ran():
    nan = float("nan")
    rows = [{"system": "a", "snr": 0, "metric": "m", "value": nan, "n": 1},
            {"system": "b", "snr": 0, "metric": "m", "value": -7.0, "n": 1},
            {"system": "a", "snr": 1, "metric": "m", "value": 3.0, "n": 1},  # b did not run at snr 1
            {"system": "b", "snr": 2, "metric": "m", "value": nan, "n": 1}]  # only nan at snr 2: no row
    for mode in ("max", "min"):
        env = envelope_rows(rows, "e", ["a", "b"], "m", mode=mode)
        assert [(r["snr"], r["chosen"], r["value"]) for r in env] == [(0, "b", -7.0), (1, "a", 3.0)]


def test_envelope_point_ignores_statistics_columns_and_copies_them_from_the_chosen_row():
    rows = [{"system": "a", "snr": 0, "metric": "ber", "value": 0.2, "n": 10, "errors": 2, "ci_low": 0.1,
             "ci_high": 0.3, "samples": 10, "stopped_by": "max_samples", "chosen": "old"},
            {"system": "b", "snr": 0, "metric": "ber", "value": 0.1, "n": 20, "errors": 2, "ci_low": 0.05,
             "ci_high": 0.2, "samples": 20, "stopped_by": "target_errors"},
            {"system": "c", "snr": 0, "metric": "ber", "value": 0.0, "n": 20}]  # not a member
    env = envelope_rows(rows, "best", ["a", "b"], "ber", mode="min")
    assert env == [{"snr": 0, "metric": "ber", "value": 0.1, "n": 20, "errors": 2, "ci_low": 0.05,
                    "ci_high": 0.2, "samples": 20, "stopped_by": "target_errors", "system": "best",
                    "chosen": "b"}]
    # another sweep value (a real column) is another point, even with equal statistics
    rows2 = rows[:2] + [{**rows[0], "snr": 1}]
    env2 = envelope_rows(rows2, "best", ["a", "b"], "ber", mode="min")
    assert [(r["snr"], r["chosen"]) for r in env2] == [(0, "b"), (1, "a")]


def test_envelope_over_system_and_a_swept_column_names_both():
    rows = [{"system": "s", "bps": 1, "metric": "m", "value": 1.0, "n": 1},
            {"system": "s", "bps": 2, "metric": "m", "value": 2.0, "n": 1},
            {"system": "t", "bps": 2, "metric": "m", "value": 1.5, "n": 1},
            {"system": "t", "metric": "m", "value": 9.0, "n": 1}]  # no bps column: 'bps=None'
    env = envelope_rows(rows, "e", ["s", "t"], "m", over=["system", "bps"])
    assert [r["chosen"] for r in env] == ["t bps=None"]
    env = envelope_rows(rows[:3], "e", ["s", "t"], "m", over=["system", "bps"])
    assert env == [{"metric": "m", "value": 2.0, "n": 1, "system": "e", "chosen": "s bps=2"}]


ENV_SCEN = """
name: env2
sweep: {snr_db: [0]}
envelopes:
  - {name: best, systems: ["s*"], metric: ber, over: [system, bps]}
systems:
  s1:
    sweep: {bps: [1, 2]}
    blocks:
      src: {type: bit_source, params: {bits_per_sample: 2}}
  s2:
    blocks:
      src: {type: bit_source, params: {bits_per_sample: 2}}
"""


def _cfg(tmp_path, text):
    from linksim.scenario import load_scenario

    return load_scenario(write(tmp_path, text))[0]


def test_check_envelopes_accepts_global_and_member_sweeps_and_names_bad_keys(tmp_path):
    check_envelopes(_cfg(tmp_path, ENV_SCEN), "f")  # bps is swept by a member, snr_db globally
    check_envelopes(_cfg(tmp_path, ENV_SCEN.replace("[system, bps]", "[snr_db]")), "f")
    with pytest.raises(UserError) as e:
        check_envelopes(_cfg(tmp_path, ENV_SCEN.replace("[system, bps]", "[system, rate]")), "f")
    assert str(e.value) == "f: envelopes.0.over: 'rate' is neither 'system' nor a sweep variable"
    with pytest.raises(UserError) as e:  # bps is swept by s1 only, which the envelope no longer covers
        check_envelopes(_cfg(tmp_path, ENV_SCEN.replace('["s*"]', "[s2]")), "f")
    assert str(e.value) == "f: envelopes.0.over: 'bps' is neither 'system' nor a sweep variable"
    with pytest.raises(UserError) as e:
        check_envelopes(_cfg(tmp_path, ENV_SCEN.replace("name: best", "name: s2")), "f")
    assert str(e.value) == "f: envelopes.0.name: envelope name 's2' is also a system name"
    with pytest.raises(UserError) as e:
        check_envelopes(_cfg(tmp_path, ENV_SCEN.replace('["s*"]', '["q*"]')), "f")
    assert str(e.value) == "f: envelopes.0.systems: 'q*' matches no system"


NA_SCEN = """
name: na
sweep: {snr_db: [1.0, 2.0]}
envelopes:
  - {name: best, systems: [c], metric: m}
normal_approx:
  - {systems: ["c*"], inputs: [constellation, gaussian]}
systems:
  c:
    sweep: {bps: [2, 4]}
    blocks:
      enc: {type: ldpc5g_encoder, params: {k: 66, n: 132}}
      map: {type: qam_mapper, params: {bits_per_symbol: $bps}, inputs: {bits: enc.bits}}
      ch:  {type: awgn, params: {snr_db: $snr_db}, inputs: {x: map.symbols}}
"""


def test_coded_link_reads_k_uses_and_snr_from_the_blocks(tmp_path):
    cfg = _cfg(tmp_path, NA_SCEN)
    assert coded_link(cfg, "c", {"snr_db": 1.5, "bps": 4}, "key") == {"k": 66, "uses": 33, "bits_per_symbol": 4,
                                                                      "snr_db": 1.5}
    assert coded_link(cfg, "c", {"snr_db": 2, "bps": 2}, "key") == {"k": 66, "uses": 66, "bits_per_symbol": 2,
                                                                    "snr_db": 2.0}
    with pytest.raises(UserError) as e:  # 132 bits are 22 symbols of 6 bits, but not whole symbols of 8
        coded_link(cfg, "c", {"snr_db": 1.0, "bps": 8}, "key")
    assert str(e.value) == "key: system 'c': n=132 coded bits do not fill whole symbols of 8 bits"
    assert coded_link(cfg, "c", {"snr_db": 1.0, "bps": 6}, "key")["uses"] == 22
    assert all(type(v) is int for k, v in coded_link(cfg, "c", {"snr_db": 1.0, "bps": 6}, "key").items()
               if k != "snr_db")  # whole channel uses, not 22.0


@pytest.mark.parametrize("edit, msg", [
    (("      ch:  {type: awgn", "      ch:  {type: rayleigh"),
     "the normal approximation needs one ldpc5g_encoder, qam_mapper and awgn block in system 'c' "
     "(it has 1 ldpc5g_encoder, 1 qam_mapper, 0 awgn)"),
    (("      ch:  {type: awgn", "      m2: {type: qam_mapper, params: {bits_per_symbol: 2}}\n      ch:  {type: awgn"),
     "the normal approximation needs one ldpc5g_encoder, qam_mapper and awgn block in system 'c' "
     "(it has 1 ldpc5g_encoder, 2 qam_mapper, 1 awgn)"),
    (("{k: 66, n: 132}", "{n: 132}"), "system 'c': k, n of ldpc5g_encoder and snr_db of awgn must be numbers"),
    (("{k: 66, n: 132}", "{k: 66, n: many}"), "system 'c': k, n of ldpc5g_encoder and snr_db of awgn must be numbers"),
    (("{k: 66, n: 132}", "{k: 66, n: [1]}"), "system 'c': k, n of ldpc5g_encoder and snr_db of awgn must be numbers"),
    (("params: {snr_db: $snr_db}", "params: {}"),
     "system 'c': k, n of ldpc5g_encoder and snr_db of awgn must be numbers"),
])
def test_coded_link_errors_name_the_key(tmp_path, edit, msg):
    cfg = _cfg(tmp_path, NA_SCEN.replace(*edit))
    with pytest.raises(UserError) as e:
        coded_link(cfg, "c", {"snr_db": 1.0, "bps": 2}, "na.yaml: normal_approx.0.systems")
    assert str(e.value) == f"na.yaml: normal_approx.0.systems: {msg}"
    with pytest.raises(UserError) as e:  # checked for every point before anything runs
        check_normal_approx(cfg, "na.yaml")
    assert str(e.value) == f"na.yaml: normal_approx.0.systems: {msg}"


def test_check_normal_approx_checks_every_point_of_every_matched_system(tmp_path):
    check_normal_approx(_cfg(tmp_path, NA_SCEN), "f")
    with pytest.raises(UserError) as e:  # the second bps value only
        check_normal_approx(_cfg(tmp_path, NA_SCEN.replace("bps: [2, 4]", "bps: [2, 8]")), "f")
    assert str(e.value) == "f: normal_approx.0.systems: system 'c': n=132 coded bits do not fill whole symbols of 8 bits"
    with pytest.raises(UserError) as e:
        check_normal_approx(_cfg(tmp_path, NA_SCEN.replace('["c*"]', '["d*"]')), "f")
    assert str(e.value) == "f: normal_approx.0.systems: 'd*' matches no system"


def test_normal_approx_rows_one_per_point_and_input(tmp_path):
    from linksim.fbl import bler_normal_approx

    rows = normal_approx_rows(_cfg(tmp_path, NA_SCEN))
    assert len(rows) == 8
    got = {(r["snr_db"], r["bps"], r["input"]): r for r in rows}
    for snr in (1.0, 2.0):
        for bps, uses, name in ((2, 66, "QPSK"), (4, 33, "16-QAM")):
            c = got[(snr, bps, name)]
            assert c == {"system": "c", "snr_db": snr, "bps": bps, "input": name, "blocklength": uses,
                         "info_bits": 66, "metric": "bler_normal_approx", "value": c["value"], "n": 0}
            assert c["value"] == bler_normal_approx(uses, 66, snr, bps)
            g = got[(snr, bps, "gaussian")]
            assert g["blocklength"] == uses and g["value"] == bler_normal_approx(uses, 66, snr, None)
    # QPSK at rate 1/2 over 66 uses: the Gaussian input is better, and more SNR helps
    assert got[(1.0, 2, "gaussian")]["value"] < got[(1.0, 2, "QPSK")]["value"] < 1
    assert got[(2.0, 2, "QPSK")]["value"] < got[(1.0, 2, "QPSK")]["value"]
    assert all(type(r["blocklength"]) is int for r in rows)
    only = normal_approx_rows(_cfg(tmp_path, NA_SCEN.replace("[constellation, gaussian]", "[gaussian]")))
    assert [r["input"] for r in only] == ["gaussian"] * 4


def test_derived_rows_are_envelopes_then_normal_approximations(tmp_path):
    cfg = _cfg(tmp_path, NA_SCEN)
    rows = [{"system": "c", "snr_db": 1.0, "bps": 2, "metric": "m", "value": 1.0, "n": 1},
            {"system": "c", "snr_db": 1.0, "bps": 4, "metric": "m", "value": 2.0, "n": 1}]
    out = derived_rows(cfg, rows)
    assert out[:2] == [{**r, "system": "best", "chosen": "c"} for r in rows]  # bps is part of the point
    assert out[2:] == normal_approx_rows(cfg)
    assert [r["metric"] for r in out] == ["m"] * 2 + ["bler_normal_approx"] * 8


def test_unvalidated_derived_rows_name_their_section(tmp_path):
    """Run without the checks (e.g. a scenario object edited after load): the errors name the section."""
    cfg = _cfg(tmp_path, NA_SCEN.replace('["c*"]', '["d*"]'))
    with pytest.raises(UserError) as e:
        normal_approx_rows(cfg)
    assert str(e.value) == "normal_approx: 'd*' matches no system"
    cfg = _cfg(tmp_path, NA_SCEN.replace("bps: [2, 4]", "bps: [2, 8]"))
    with pytest.raises(UserError) as e:
        normal_approx_rows(cfg)
    assert str(e.value) == "normal_approx: system 'c': n=132 coded bits do not fill whole symbols of 8 bits"
    cfg = _cfg(tmp_path, NA_SCEN.replace("bps: [2, 4]", "bps: []"))
    with pytest.raises(UserError) as e:
        normal_approx_rows(cfg)
    assert str(e.value) == "normal_approx: sweep.bps: a sweep variable needs a non-empty list of values"
    with pytest.raises(UserError) as e:
        check_normal_approx(cfg, "f.yaml")
    assert str(e.value) == "f.yaml: sweep.bps: a sweep variable needs a non-empty list of values"
    cfg = _cfg(tmp_path, NA_SCEN.replace("systems: [c], metric: m}", "systems: [q], metric: m}"))
    with pytest.raises(UserError) as e:
        derived_rows(cfg, [])
    assert str(e.value) == "envelopes: 'q' matches no system"


def test_derived_rows_of_several_envelopes_with_their_modes_and_columns(tmp_path):
    text = NA_SCEN.replace("  - {name: best, systems: [c], metric: m}\n",
                           "  - {name: hi, systems: [c], metric: m, over: [bps]}\n"
                           "  - {name: lo, systems: [c], metric: m, mode: min, over: [bps]}\n")
    cfg = _cfg(tmp_path, text)
    rows = [{"system": "c", "snr_db": 1.0, "bps": 2, "metric": "m", "value": 1.0, "n": 1},
            {"system": "c", "snr_db": 1.0, "bps": 4, "metric": "m", "value": 2.0, "n": 1}]
    out = derived_rows(cfg, rows)
    assert out[:2] == [{"snr_db": 1.0, "metric": "m", "value": 2.0, "n": 1, "system": "hi", "chosen": "bps=4"},
                       {"snr_db": 1.0, "metric": "m", "value": 1.0, "n": 1, "system": "lo", "chosen": "bps=2"}]
    assert out[2:] == normal_approx_rows(cfg)
