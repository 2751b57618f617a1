"""Reference-curve regression: a tiny fresh run of every shipped scenario agrees with the stored reference
rows (tests/references/*.csv, written by ``python -m linksim.testing.references --update`` from the
committed code) within about 4 sigma; rows without an interval exactly when they are whole numbers, else to
1e-4 relative. A change that moves a curve
fails here; if the move is intended, rerun ``--update`` and commit the CSVs with the change."""
import pytest

from linksim.testing import references as R


def test_every_shipped_scenario_has_a_reference():
    missing = [n for n in R.scenarios() if not (R.REFS / f"{n}.csv").is_file()]
    assert not missing, f"no reference for {missing}: run python -m linksim.testing.references --update --scenarios {','.join(missing)}"


@pytest.mark.parametrize("name", R.scenarios())
def test_tiny_run_matches_the_reference(name, tmp_path):
    if not (R.REFS / f"{name}.csv").is_file():
        pytest.skip("no reference (see test_every_shipped_scenario_has_a_reference)")
    rows = R.tiny_run(name, tmp_path)
    problems = R.compare(name, rows)
    assert not problems, "\n".join(problems[:20])


def test_compare_flags_a_moved_value(tmp_path):
    """The comparison itself: a value moved beyond the tolerance, or a missing row, is reported."""
    rows = [{"system": "s", "snr_db": 0.0, "metric": "ber", "value": 0.1, "n": 1000, "ci_low": 0.08, "ci_high": 0.12},
            {"system": "s", "snr_db": 0.0, "metric": "bits_per_sample", "value": 64.0, "n": 0}]
    old = R.REFS
    try:
        R.REFS = tmp_path
        R.write_reference("x", rows)
        assert R.compare("x", rows) == []
        moved = [dict(rows[0], value=0.1 + 2.9 * 0.02 * 1.01), rows[1]]
        assert len(R.compare("x", moved)) == 1
        assert R.compare("x", [dict(rows[0], value=0.1 + 0.02), rows[1]]) == []  # within 4 sigma
        assert len(R.compare("x", [rows[0], dict(rows[1], value=65.0)])) == 1  # exact rows
        assert len(R.compare("x", rows[:1])) == 1  # a row missing
        # a figure without an interval that is not a whole number: 1e-4 relative (training rounding differs
        # between processors), so a rounding-level change passes and a real one does not
        fig = [{"system": "s", "metric": "consistency_cosine", "value": 0.98779257, "n": 0}]
        R.write_reference("y", fig)
        assert R.compare("y", [dict(fig[0], value=0.98778282)]) == []  # measured between two hosts
        assert len(R.compare("y", [dict(fig[0], value=0.98779257 * (1 + 2e-4))])) == 1
    finally:
        R.REFS = old
