"""``linksim bench``: the reference (Sionna) and fast 5G LDPC decoders on the same noisy codewords.

Prints info-bit throughput of each decoder, their ratio, and both BLER/BER curves; ``--json`` keeps all of it.
"""
from __future__ import annotations

import argparse
import json


def _int(lo: int, hi: int):
    """An argparse type: an integer in [lo, hi] (a bench of 1e9 iterations would not finish)."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"{v} is out of range ({lo} to {hi})")
        return v

    return parse


def _snr(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not -50 <= v <= 100:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"Es/N0 {text} dB is out of range (-50 to 100)")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--k", type=_int(1, 8448), default=3072, help="information bits per codeword")
    p.add_argument("--n", type=_int(1, 68 * 384), default=6144, help="codeword length")
    p.add_argument("--iters", type=_int(1, 1000), default=20, help="BP iterations (both decoders)")
    p.add_argument("--snr", type=_snr, nargs="+", default=[0.5, 1.0, 1.5, 2.0], help="Es/N0 points in dB")
    p.add_argument("--frames", type=_int(1, 1_000_000), default=256, help="codewords per SNR point")
    p.add_argument("--bits-per-symbol", type=_int(1, 12), default=2, help="QAM order (2 = QPSK)")
    p.add_argument("--decoders", nargs="+", default=["sionna", "fast"],
                   help="decoder variants; the first is the reference")
    p.add_argument("--seed", type=_int(0, 2**32 - 1), default=0)
    p.add_argument("--json", default=None, help="write the full result to this file")


def run(args) -> dict:
    from .errors import UserError
    from .link.ldpc_bench import run_bench

    try:
        res = run_bench(args.k, args.n, args.iters, args.snr, args.frames, bits_per_symbol=args.bits_per_symbol,
                        seed=args.seed, decoders=tuple(args.decoders))
    except (ValueError, AssertionError) as e:  # Sionna checks (k, n) with both
        raise UserError(str(e) or "invalid --k/--n for 5G LDPC", "linksim bench") from None
    ref = res["reference"]
    print(f"5G LDPC k={args.k} n={args.n}, {args.iters} iterations, {args.frames} codewords per point, "
          f"{args.bits_per_symbol} bits/symbol over AWGN; reference: {ref}")
    print(f"{'decoder':>14s} {'Es/N0 dB':>8s} {'Mbit/s':>9s} {'x ref':>7s} {'BLER':>8s} {'BER':>9s}")
    for name, r in res["decoders"].items():
        for i, snr in enumerate(res["config"]["snrs_db"]):
            print(f"{name:>14s} {snr:8.2f} {r['mbps'][i]:9.3f} {res['speedup'][name]['per_snr'][i]:7.1f} "
                  f"{r['bler'][i]:8.4f} {r['ber'][i]:9.2e}")
        print(f"{name:>14s} {'all':>8s} {r['mbps_total']:9.3f} {res['speedup'][name]['total']:7.1f}")
    if args.json:
        from .results import atomic_write

        atomic_write(args.json, json.dumps(res, indent=2) + "\n")
    return res
