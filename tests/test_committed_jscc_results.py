"""Issue-4 targets checked on the committed full runs (results/sscc_vs_jscc, results/multires_jscc).

These read the CSVs that `linksim run` wrote; they fail if a rerun of the scenarios stops meeting the targets.
"""
from collections import defaultdict
from pathlib import Path

import pytest

from linksim.results import read_csv

ROOT = Path(__file__).resolve().parents[1]
SV = ROOT / "results" / "sscc_vs_jscc" / "results.csv"
MR = ROOT / "results" / "multires_jscc" / "results.csv"


def _curve(rows, system, x="snr_db", metric="psnr_db", **where):
    out = {r[x]: r["value"] for r in rows if r["system"] == system and r["metric"] == metric
           and all(r.get(k) == v for k, v in where.items())}
    return dict(sorted(out.items()))


@pytest.mark.skipif(not SV.is_file(), reason="no committed sscc_vs_jscc run")
@pytest.mark.parametrize("chan", ["awgn", "rayleigh"])
def test_sscc_envelope_monotone_below_capacity_and_jscc_graceful(chan):
    rows = read_csv(SV)
    for sfx, x in (("", "snr_db"), ("_bw", "uses")):
        env = _curve(rows, f"sscc_envelope_{chan}{sfx}", x)
        cap = _curve(rows, f"capacity_{chan}{sfx}", x)
        assert len(env) >= 3 and set(env) == set(cap)
        vals = list(env.values())
        assert all(b >= a - 1e-9 for a, b in zip(vals, vals[1:])), env  # non-decreasing in SNR / bandwidth
        assert all(cap[k] >= env[k] - 1e-6 for k in env), (cap, env)  # the capacity bound lies above
        assert max(cap[k] - env[k] for k in env) > 3.0
    jscc = list(_curve(rows, f"jscc_{chan}").values())
    mean_image = min(_curve(rows, f"sscc_envelope_{chan}").values())
    # trained at 10 dB only: no cliff (adjacent test SNRs are 3 dB apart), far above the mean image at -3 dB
    assert all(b >= a for a, b in zip(jscc, jscc[1:]))
    assert max(b - a for a, b in zip(jscc, jscc[1:])) < 3.0 and jscc[0] > mean_image + 2.0


@pytest.mark.skipif(not SV.is_file(), reason="no committed sscc_vs_jscc run")
def test_every_fixed_mcs_shows_a_cliff():
    rows = read_csv(SV)
    curves = defaultdict(dict)
    for r in rows:
        if r["system"] in ("sscc_awgn", "sscc_rayleigh") and r["metric"] == "psnr_db":
            curves[(r["system"], r["bps"], r["rate"])][r["snr_db"]] = r["value"]
    working = 0
    for key, c in curves.items():
        vals = [c[s] for s in sorted(c)]
        span = vals[-1] - vals[0]
        if span < 1.0:
            continue  # the budget of this MCS fits (almost) no HEVC stream: flat at the mean image
        working += 1
        # AWGN: nearly all of the rise happens between two adjacent SNRs (3 dB apart)
        if key[0] == "sscc_awgn":
            assert max(b - a for a, b in zip(vals, vals[1:])) >= 0.6 * span, (key, c)
        assert vals[0] < vals[-1] - 1.0 and all(b >= a - 0.05 for a, b in zip(vals, vals[1:])), (key, c)
    assert working >= 8


@pytest.mark.skipif(not MR.is_file(), reason="no committed multires_jscc run")
def test_smrc_layers_refine_and_beat_sscc_at_low_snr():
    rows = read_csv(MR)
    snrs = sorted(_curve(rows, "smrc", scheme="L1"))
    for s in snrs:
        for metric in ("psnr_db", "recall_macro"):
            layers = [_curve(rows, "smrc", metric=metric, scheme=f"L{i}")[s] for i in (1, 2, 3)]
            assert all(b >= a for a, b in zip(layers, layers[1:])), (s, metric, layers)
        if s <= 5:
            env = _curve(rows, "sscc_envelope", uses=130)[s]
            assert _curve(rows, "smrc", scheme="L3")[s] >= env + 2.0
