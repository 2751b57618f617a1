"""Es/N0 at a target BLER from a results.csv (ldpc_link), against the normal approximation.

    python benchmarks/ldpc_crossings.py results/ldpc_link/results.csv --target 1e-2

For each system: the simulated crossing (log-BLER interpolated between the bracketing points) with the
crossings of the 95 % interval ends (a rough uncertainty), the normal approximation's crossing for the
constellation used and for Gaussian input (linksim.fbl.snr_at_bler), the gap, and whether the normal
approximation lies below every simulated point.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))


def main(argv=None) -> int:
    from linksim.fbl import crossing, snr_at_bler
    from linksim.results import read_csv

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("csv")
    p.add_argument("--target", type=float, default=1e-2)
    a = p.parse_args(argv)
    rows = read_csv(a.csv)
    systems = list(dict.fromkeys(r["system"] for r in rows if r["metric"] == "bler"))
    print(f"{'system':>12s} {'sim dB':>7s} {'CI dB':>13s} {'NA dB':>7s} {'NA-G dB':>8s} {'gap':>6s} {'NA below all':>12s}")
    for s in systems:
        sim = [r for r in rows if r["system"] == s and r["metric"] == "bler" and r["n"]]
        na = [r for r in rows if r["system"] == s and r["metric"] == "bler_normal_approx"]
        x = [r["snr_db"] for r in sim]
        c = crossing(x, [r["value"] for r in sim], a.target)
        c_lo = crossing(x, [r["ci_low"] for r in sim], a.target)
        c_hi = crossing(x, [r["ci_high"] for r in sim], a.target)
        const = next(r for r in na if r["input"] != "gaussian")
        bps = {"BPSK": 1, "QPSK": 2, "16-QAM": 4, "64-QAM": 6, "256-QAM": 8}[const["input"]]
        n, k = const["blocklength"], const["info_bits"]
        s_na = snr_at_bler(n, k, a.target, bps)
        s_g = snr_at_bler(n, k, a.target)
        below = all(q["value"] < r["value"] for r in sim for q in na
                    if q["input"] != "gaussian" and q["snr_db"] == r["snr_db"] and r["value"] > 0)
        print(f"{s:>12s} {c:7.3f} [{c_lo:5.2f}, {c_hi:5.2f}] {s_na:7.3f} {s_g:8.3f} {c - s_na:6.2f} {str(below):>12s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
