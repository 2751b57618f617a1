"""Figures the README quotes from an OFDM run: Es/N0 where each (system, csi) curve crosses a target BER /
BLER (log-linear interpolation between the two sweep points around it) and the LS - perfect CSI gap in dB.

    python -m linksim.ofdm.report results/ofdm_link/results.csv [--target 1e-2] [--metric ber]
"""
from __future__ import annotations

import argparse
import math
import sys


def crossing(points: list[tuple[float, float]], target: float) -> float | None:
    """The SNR where a decreasing curve [(snr, value)] first falls to ``target`` (log-linear), None if never."""
    pts = sorted((s, v) for s, v in points if v == v)
    for (s0, v0), (s1, v1) in zip(pts, pts[1:]):
        if v0 >= target >= v1 and v0 > 0:
            if v1 <= 0:
                return s1
            if v0 == v1:
                return s0
            return s0 + (math.log(v0) - math.log(target)) / (math.log(v0) - math.log(v1)) * (s1 - s0)
    return None


def gaps(rows: list[dict], metric: str = "ber", target: float = 1e-2) -> list[dict]:
    """Per system with both csi kinds: the crossing SNR of each and the gap ls - perfect (dB)."""
    curves: dict[tuple[str, str], list] = {}
    for r in rows:
        if r.get("metric") == metric and r.get("csi") in ("perfect", "ls") and r.get("value") not in ("", None):
            curves.setdefault((r["system"], r["csi"]), []).append((float(r["snr_db"]), float(r["value"])))
    out = []
    for system in sorted({s for s, _ in curves}):
        p = crossing(curves.get((system, "perfect"), []), target)
        ls = crossing(curves.get((system, "ls"), []), target)
        out.append({"system": system, "perfect_db": p, "ls_db": ls,
                    "gap_db": None if p is None or ls is None else ls - p})
    return out


def main(argv=None) -> int:
    from ..results import read_csv

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv")
    ap.add_argument("--metric", default="ber")
    ap.add_argument("--target", type=float, default=1e-2)
    a = ap.parse_args(argv)
    rows = read_csv(a.csv)
    print(f"{'system':22s} {a.metric}={a.target:g} at: {'perfect':>8s} {'ls':>8s} {'gap dB':>7s}")
    for g in gaps(rows, a.metric, a.target):
        f = lambda v: "   n/a" if v is None else f"{v:8.2f}"  # noqa: E731
        print(f"{g['system']:22s} {'':14s} {f(g['perfect_db'])} {f(g['ls_db'])} {f(g['gap_db'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
