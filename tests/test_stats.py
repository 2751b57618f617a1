"""Confidence intervals (linksim.stats): exactness against SciPy and calibration by seeded repetition."""
import numpy as np
import pytest
from scipy.stats import binomtest

from linksim.block import Metric
from linksim.stats import Mean, Rate, clopper_pearson, design_effect


@pytest.mark.parametrize("x, n", [(0, 10), (3, 10), (10, 10), (7, 1000), (500, 1000)])
def test_clopper_pearson_is_scipys_exact_interval(x, n):
    ci = binomtest(x, n).proportion_ci(0.95, method="exact")
    assert clopper_pearson(x, n) == pytest.approx((ci.low, ci.high), rel=1e-9, abs=1e-12)


def _bsc_ber(rng, p, frames, bits):
    e = rng.binomial(bits, p, size=frames)  # errors per frame of a BSC(p)
    return Metric.rate("ber", int(e.sum()), frames * bits, frames=frames, frame_sq=float((e * e).sum()))


def test_ber_interval_coverage_is_calibrated_on_a_bsc():
    """400 seeded repetitions of 20 frames x 100 bits over a BSC(p = 0.02) (~40 errors each): the 95 %
    intervals cover p in 92-98 % of them."""
    rng = np.random.default_rng(2026)
    p, reps = 0.02, 400
    hits = 0
    for _ in range(reps):
        lo, hi = _bsc_ber(rng, p, 20, 100).stat.interval()
        hits += lo <= p <= hi
    assert 0.92 <= hits / reps <= 0.98, hits / reps


def test_ber_interval_uses_frames_when_errors_come_in_bursts():
    """Errors in whole frames (a decoder failing): an interval over bits undercovers badly, the
    frame-as-unit interval keeps its level."""
    rng = np.random.default_rng(7)
    q, frames, bits, reps = 0.05, 200, 100, 300
    hit_frames = hit_bits = 0
    for _ in range(reps):
        e = rng.binomial(1, q, size=frames) * bits // 2  # a failed frame has half its bits wrong
        m = Metric.rate("ber", int(e.sum()), frames * bits, frames=frames, frame_sq=float((e * e).sum()))
        truth = q / 2
        lo, hi = m.stat.interval()
        hit_frames += lo <= truth <= hi
        blo, bhi = clopper_pearson(int(e.sum()), frames * bits)
        hit_bits += blo <= truth <= bhi
    assert hit_frames / reps >= 0.92
    assert hit_bits / reps < 0.6


def test_design_effect_bounds():
    assert design_effect(0, 1000, 10, 0.0) == 100  # no error: the frame is the unit
    assert design_effect(100, 1000, 10, 10000.0) == 100  # one frame entirely wrong: fully clustered
    assert design_effect(10, 1000, 10, 100.0) == pytest.approx(0.001 / 10 / (0.01 * 0.99 / 1000))  # 10 in one frame
    assert design_effect(10, 1000, 10, 10.0) == 1.0  # one error per frame: no clustering


def test_mean_interval_is_a_t_interval_and_calibrated():
    from scipy import stats

    rng = np.random.default_rng(3)
    v = rng.normal(30, 2, size=25)
    lo, hi = Mean.of(v).interval()
    ref = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
    assert (lo, hi) == pytest.approx(ref, rel=1e-9)
    hits = sum(lo <= 30 <= hi for lo, hi in (Mean.of(rng.normal(30, 2, size=12)).interval() for _ in range(400)))
    assert 0.92 <= hits / 400 <= 0.98


def test_success_rates_mirror_the_error_interval():
    acc = Rate(errors=30, trials=200, success=True)
    err = Rate(errors=30, trials=200)
    assert acc.value == pytest.approx(0.85)
    assert acc.interval() == pytest.approx((1 - err.interval()[1], 1 - err.interval()[0]))


def test_plot_draws_intervals_and_reference_curves(tmp_path):
    """A BLER plot with interval bands, a zero-error point and normal-approximation rows renders."""
    import matplotlib

    matplotlib.use("Agg")
    from linksim.plot import plot_rows

    rows = []
    for snr, (v, lo, hi) in {1.0: (0.5, 0.4, 0.6), 2.0: (0.05, 0.03, 0.08), 3.0: (0.0, 0.0, 0.01)}.items():
        rows.append({"system": "c", "snr_db": snr, "metric": "bler", "value": v, "n": 100, "errors": int(v * 100),
                     "ci_low": lo, "ci_high": hi})
        for inp, f in (("QPSK", 0.1), ("gaussian", 0.05)):
            rows.append({"system": "c", "snr_db": snr, "input": inp, "metric": "bler_normal_approx",
                         "value": f * v + 1e-9, "n": 0})
    out = plot_rows(rows, tmp_path, ["snr_db"])
    assert [p.name for p in out] == ["bler.png"] and out[0].stat().st_size > 5000
