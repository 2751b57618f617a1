"""Throughput and BLER of the 5G LDPC decoders on the same noisy codewords.

    python benchmarks/ldpc_bench.py --k 3072 --n 6144 --iters 20 --snr 0.5 1 1.5 2 --frames 256 --json out.json

Decodes QAM-over-AWGN channel LLRs (Es/N0 points in dB) with Sionna's LDPC5GDecoder (the reference, listed
first) and the fast decoder(s), and prints info-bit throughput, speed-up, BLER and BER per SNR point.
See :func:`linksim.link.ldpc_bench.run_bench`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))


def main(argv: list[str] | None = None) -> int:
    from linksim.link.ldpc_bench import _BENCH_VARIANTS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--k", type=int, default=3072)
    p.add_argument("--n", type=int, default=6144)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--snr", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0], help="Es/N0 points in dB")
    p.add_argument("--frames", type=int, default=256, help="codewords per SNR point")
    p.add_argument("--bits-per-symbol", type=int, default=2, help="QAM order (2 = QPSK)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--decoders", nargs="+", default=["sionna", "fast"], choices=list(_BENCH_VARIANTS),
                   help="the first one is the reference for speed-up and frames_differing")
    p.add_argument("--batch", type=int, default=None, help="codewords per decoder call (default: all)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (Sionna) and fast-decoder threads (default: all cores)")
    p.add_argument("--json", default=None, help="write the full result to this file")
    a = p.parse_args(argv)

    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    from linksim.link.ldpc_bench import run_bench

    print(f"k={a.k} n={a.n} iters={a.iters} frames={a.frames} bits/symbol={a.bits_per_symbol} "
          f"decoders={','.join(a.decoders)}", flush=True)
    res = run_bench(a.k, a.n, a.iters, a.snr, a.frames, bits_per_symbol=a.bits_per_symbol, seed=a.seed,
                    decoders=tuple(a.decoders), batch=a.batch, threads=a.threads, verbose=True)
    ref = res["reference"]
    print()
    print(f"{'decoder':>16s} {'Es/N0':>6s} {'Mbit/s':>9s} {'x ref':>7s} {'BLER':>8s} {'BER':>9s} {'avg it':>6s} "
          f"{'!=ref':>5s}")
    for name, r in res["decoders"].items():
        for i, snr in enumerate(res["config"]["snrs_db"]):
            print(f"{name:>16s} {snr:6.2f} {r['mbps'][i]:9.4g} {res['speedup'][name]['per_snr'][i]:7.1f} "
                  f"{r['bler'][i]:8.4f} {r['ber'][i]:9.2e} {r['avg_iters'][i]:6.1f} "
                  f"{r['frames_differing_from_ref'][i]:5d}")
        print(f"{name:>16s} {'all':>6s} {r['mbps_total']:9.4g} {res['speedup'][name]['total']:7.1f}")
    print(f"(reference: {ref}; throughput = decoded information bits per second of decoder wall time)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
        print(f"written {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
