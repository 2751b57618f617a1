"""``linksim bench``: the reference (Sionna) and fast 5G LDPC decoders on the same noisy codewords.

Prints info-bit throughput of each decoder, their ratio, and both BLER/BER curves; ``--json`` keeps all of it.
"""
from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--k", type=int, default=3072, help="information bits per codeword")
    p.add_argument("--n", type=int, default=6144, help="codeword length")
    p.add_argument("--iters", type=int, default=20, help="BP iterations (both decoders)")
    p.add_argument("--snr", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0], help="Es/N0 points in dB")
    p.add_argument("--frames", type=int, default=256, help="codewords per SNR point")
    p.add_argument("--bits-per-symbol", type=int, default=2, help="QAM order (2 = QPSK)")
    p.add_argument("--decoders", nargs="+", default=["sionna", "fast"],
                   help="decoder variants; the first is the reference")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the full result to this file")


def run(args) -> dict:
    from .errors import UserError
    from .link.fast_ldpc import run_bench

    try:
        res = run_bench(args.k, args.n, args.iters, args.snr, args.frames, bits_per_symbol=args.bits_per_symbol,
                        seed=args.seed, decoders=tuple(args.decoders))
    except ValueError as e:
        raise UserError(str(e), "linksim bench") from None
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
