"""Reference-curve regression (in the spirit of AFF3CT's ``error_rate_references``).

Every shipped scenario (``scenarios/*.yaml``) is run in a tiny configuration (its ``quick:`` overrides plus
the ``TINY`` overrides below: few training/test samples, one epoch, no wall-time caps so training is
deterministic) and its result rows are stored in ``tests/references/<scenario>.csv``. The test
(``tests/test_references.py``) reruns the tiny configuration and compares each row with the stored one:
rows with a 95 % interval within about 4 sigma of the difference of two runs (2.9 interval half-widths),
rows without one exactly when they are whole numbers (counts, ``bits_per_sample``), otherwise to 1e-4 relative
(float rounding in training differs between processors).

The stored values always come from a run of the committed code, never typed in:

    python -m linksim.testing.references --update [--scenarios a,b]   # (re)write tests/references/*.csv
    python -m linksim.testing.references [--scenarios a,b]            # compare, exit 1 on a difference

Rerun ``--update`` after a change that is meant to move a curve (new training, a changed scenario) and
commit the CSVs with the change.
"""
from __future__ import annotations

import argparse
import copy
import csv
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
REFS = ROOT / "tests" / "references"

# Tiny overrides, applied after the scenario's own quick: section; an override whose key matches nothing in
# a scenario is skipped (scenarios change; the keys stay generic).
TINY_COMMON = [
    "data.train_samples=300",
    "data.test_samples=100",
    "systems.*.blocks.*.params.epochs=1",
    "systems.*.blocks.*.params.finetune_epochs=0",
    "systems.*.blocks.*.params.max_seconds=null",  # wall-time caps make training depend on the machine
    "systems.*.blocks.*.params.train_samples=300",
    "systems.*.stop.max_samples=200",
    "systems.*.stop.min_samples=0",
    "systems.*.samples=200",
    "systems.*.test_samples=100",
]
TINY = {  # per scenario: fewer sweep points where a full sweep costs too much
    "distributed_sensing": ["sweep.nodes=[1, 2]", "sweep.image_snr_db=[0]", "systems.*.blocks.enc.params.nf=64"],
    "dnrl_representation": [],
    "uncoded_link": ["systems.*.stop.max_samples=20"],
    "ldpc_link": ["systems.*.stop.max_samples=40", "systems.*.stop.target_errors=10"],
    "sscc_vs_jscc": ["sweep.snr_db=[0, 25]", "data.test_samples=20"],
    "multires_jscc": ["sweep.snr_db=[0, 10]"],
    "knowledge_base": ["systems.*.blocks.heldout.params.test_range=[0, 100]"],
    "ofdm_link": ["systems.*.sweep.snr_db=[6, 12]"],  # 262 points took 2 of the suite's 5 minutes
}
TINY_SKIP = {  # common overrides a scenario cannot take
    "knowledge_base": ["data.train_samples"],  # its splits filter classes; a knowledge base needs 2^nbits vectors
}
KEY_SKIP = {"value", "n", "errors", "ci_low", "ci_high", "samples", "stopped_by"}


def scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIOS.glob("*.yaml"))


def tiny_overrides(name: str) -> list[str]:
    """The overrides of ``name``'s tiny run that match keys of the scenario (after its quick: section)."""
    from ..scenario import _parse_value, _set_wild, is_pattern, load_raw, set_dotted

    raw = load_raw(SCENARIOS / f"{name}.yaml")
    for k, v in (raw.get("quick") or {}).items():
        set_dotted(raw, k, copy.deepcopy(v), "quick")
    out = []
    for item in TINY_COMMON + TINY.get(name, []):
        k, v = item.split("=", 1)
        if k in TINY_SKIP.get(name, []):
            continue
        parts = k.split(".")
        if is_pattern(k):
            if _set_wild(copy.deepcopy(raw), parts, _parse_value(v)) == 0:
                continue
        else:  # a plain key: only if its parent exists
            cur = raw
            ok = True
            for p in parts[:-1]:
                if not isinstance(cur, dict) or p not in cur:
                    ok = False
                    break
                cur = cur[p]
            if not ok or not isinstance(cur, dict) or parts[-1] not in cur:
                continue
        out.append(item)
    return out


def tiny_run(name: str, workdir: str | Path) -> list[dict]:
    """Result rows of ``name``'s tiny run (fresh weight cache, CPU, no plots)."""
    from ..results import read_csv
    from ..runner import run_scenario

    out = run_scenario(str(SCENARIOS / f"{name}.yaml"), Path(workdir) / name, overrides=tiny_overrides(name),
                       quick=True, device="cpu", progress=False, cache_dir=str(Path(workdir) / "cache"),
                       plots=False)
    return read_csv(Path(out) / "results.csv")


def row_key(r: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in r.items() if k not in KEY_SKIP))


def _half_width(r: dict) -> float | None:
    lo, hi = r.get("ci_low"), r.get("ci_high")
    if isinstance(lo, float) and isinstance(hi, float) and math.isfinite(lo) and math.isfinite(hi):
        return (hi - lo) / 2
    return None


def write_reference(name: str, rows: list[dict]) -> Path:
    REFS.mkdir(parents=True, exist_ok=True)
    path = REFS / f"{name}.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "value", "n", "half_width"])
        for r in sorted(rows, key=row_key):
            hw = _half_width(r)
            w.writerow([repr(row_key(r)), repr(float(r["value"])) if "value" in r else "nan", r.get("n", ""),
                        "" if hw is None else repr(hw)])
    return path


def read_reference(name: str) -> dict[str, dict]:
    with open(REFS / f"{name}.csv", newline="") as f:
        return {r["key"]: r for r in csv.DictReader(f)}


def compare(name: str, rows: list[dict]) -> list[str]:
    """Differences between fresh rows and the stored reference of ``name`` (empty list: they agree)."""
    ref = read_reference(name)
    got = {repr(row_key(r)): r for r in rows}
    problems = [f"{name}: row missing from the fresh run: {k}" for k in sorted(set(ref) - set(got))]
    problems += [f"{name}: row not in the reference: {k}" for k in sorted(set(got) - set(ref))]
    for k in sorted(set(ref) & set(got)):
        v0, v = float(ref[k]["value"]), float(got[k].get("value", math.nan))
        if math.isnan(v0) or math.isnan(v):
            if not (math.isnan(v0) and math.isnan(v)):
                problems.append(f"{name}: {k}: {v} vs reference {v0}")
            continue
        hw = ref[k]["half_width"]
        # 95 % half-width ~ 1.96 sd; the difference of two runs has sd*sqrt(2): 4 sigma = 2.9 half-widths
        # without an interval: counts and payload sizes (whole numbers) exactly; other figures (a cosine, a mean
        # loss) to 1e-4 relative, since float rounding in training differs between processors at the same
        # code and seed (measured: 1e-5 relative on dnrl's consistency_cosine between two hosts)
        tol = 2.9 * float(hw) + 1e-12 if hw else (1e-9 * max(1.0, abs(v0)) if float(v0).is_integer()
                                                   else 1e-4 * abs(v0) + 1e-9)
        if abs(v - v0) > tol:
            problems.append(f"{name}: {k}: {v!r} vs reference {v0!r} (tolerance {tol:.3g})")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m linksim.testing.references", description=__doc__.split("\n")[0])
    ap.add_argument("--update", action="store_true", help="rewrite tests/references/*.csv from fresh tiny runs")
    ap.add_argument("--scenarios", help="comma-separated scenario names (default: every scenarios/*.yaml)")
    a = ap.parse_args(argv)
    names = a.scenarios.split(",") if a.scenarios else scenarios()
    bad = [n for n in names if not (SCENARIOS / f"{n}.yaml").is_file()]
    if bad:
        print(f"no such scenario: {bad}", file=sys.stderr)
        return 2
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            t0 = time.time()
            try:
                rows = tiny_run(name, tmp)
            except Exception as e:  # noqa: BLE001 -- one broken scenario must not stop the others' update
                problems.append(f"{name}: tiny run failed: {type(e).__name__}: {e}")
                print(problems[-1], flush=True)
                continue
            if a.update:
                path = write_reference(name, rows)
                print(f"{name}: {len(rows)} rows -> {path.relative_to(ROOT)} ({time.time() - t0:.1f} s)", flush=True)
            else:
                p = compare(name, rows)
                problems += p
                print(f"{name}: {'OK' if not p else f'{len(p)} differences'} ({time.time() - t0:.1f} s)", flush=True)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
