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
