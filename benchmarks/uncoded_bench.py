"""Steady-state throughput of the uncoded chain: linksim's graph against a plain Sionna loop, in one run.

    python benchmarks/uncoded_bench.py --bits-per-symbol 1 --snr 10 --frame-bits 10000 --batch 100 --batches 30

Both sides run random bits -> Gray BPSK/QAM mapper -> complex AWGN -> APP demapper -> hard decisions -> bit
error count on the same batch shape, after one warm-up batch, alternating linksim and Sionna repetitions so
that a background load affects both alike:

* ``linksim``: the ``bit_source -> qam_mapper -> awgn -> qam_demapper -> ber`` graph of a scenario, run with
  ``Graph.evaluate`` (what ``linksim run`` does per sweep point, without the per-point setup);
* ``sionna``: ``BinarySource``, ``Mapper``, ``AWGN``, ``Demapper("app")``, ``llr > 0``, error count.

It also times one whole sweep point (``run_point``: graph construction, seeding, evaluation, rows) for a
small and a large number of bits, to show the fixed cost per point. Prints Mbit/s (information = channel bits,
uncoded) and writes everything with ``--json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

SCENARIO = """
name: bench
seed: 1
sweep: {{snr_db: [{snr}]}}
systems:
  s:
    batch_size: {batch}
    stop: {{metric: ber, target_errors: 1000000000000, max_samples: {frames}}}
    blocks:
      src:   {{type: bit_source, params: {{bits_per_sample: {frame_bits}, packed: true}}}}
      map:   {{type: qam_mapper, params: {{bits_per_symbol: {m}}}, inputs: {{bits: src.bits}}}}
      chan:  {{type: awgn, params: {{snr_db: $snr_db}}, inputs: {{x: map.symbols}}}}
      demap: {{type: qam_demapper, params: {{bits_per_symbol: {m}, closed_form: true}}, inputs: {{y: chan.y, nvar: chan.nvar}}}}
      ber:   {{type: ber, inputs: {{bits: src.bits, bits_hat: demap.bits}}}}
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bits-per-symbol", type=int, default=1)
    p.add_argument("--snr", type=float, default=10.0, help="Es/N0 in dB")
    p.add_argument("--frame-bits", type=int, default=10000)
    p.add_argument("--batch", type=int, default=100, help="frames per batch")
    p.add_argument("--batches", type=int, default=30, help="timed batches per side")
    p.add_argument("--reps", type=int, default=3, help="alternating repetitions (the best of each side is kept)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)

    import tempfile

    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    from sionna.phy.channel import AWGN
    from sionna.phy.mapping import BinarySource, Demapper, Mapper

    from linksim.context import reseed
    from linksim.runner import Plan, make_context, run_point
    from linksim.scenario import load_scenario

    m = a.bits_per_symbol
    kind = "pam" if m == 1 else "qam"
    bits_per_batch = a.batch * a.frame_bits

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.yaml")

        def plan_for(frames: int):
            with open(path, "w") as f:
                f.write(SCENARIO.format(snr=a.snr, batch=a.batch, frames=frames, frame_bits=a.frame_bits, m=m))
            cfg, _ = load_scenario(path)
            plan = Plan(cfg, path)
            return plan, make_context(cfg, path, "cpu", progress=False, cache_dir=None)

        plan, ctx = plan_for(a.batch * a.batches)
        graph = plan.graph("s", {"snr_db": a.snr}, ctx)
        reseed(1)
        graph.evaluate(a.batch, a.batch)  # warm-up

        def run_linksim() -> float:
            t = time.perf_counter()
            graph.evaluate(a.batch * a.batches, a.batch)
            return time.perf_counter() - t

        src, mapper, awgn, demapper = BinarySource(), Mapper(kind, m), AWGN(), Demapper("app", kind, m)
        no = 10 ** (-a.snr / 10)
        shape = (a.batch, a.frame_bits)

        def sionna_batch() -> int:
            b = src(shape)
            x = mapper(b)
            y = awgn(x, no)
            llr = demapper(y, no)
            return int((b != (llr > 0).float()).sum())

        sionna_batch()  # warm-up

        def run_sionna() -> float:
            t = time.perf_counter()
            with torch.no_grad():
                for _ in range(a.batches):
                    sionna_batch()
            return time.perf_counter() - t

        times = {"linksim": [], "sionna": []}
        for _ in range(a.reps):
            times["linksim"].append(run_linksim())
            times["sionna"].append(run_sionna())
        total_bits = bits_per_batch * a.batches
        mbps = {k: total_bits / min(v) / 1e6 for k, v in times.items()}

        # whole sweep points: fixed cost per point (graph construction, seeding, rows) vs streaming
        points = {}
        for frames in (a.batch, a.batch * a.batches):
            plan, ctx = plan_for(frames)
            t = time.perf_counter()
            run_point(plan, "s", {"snr_db": a.snr}, ctx)
            dt = time.perf_counter() - t
            points[str(frames * a.frame_bits)] = {"seconds": dt, "mbps": frames * a.frame_bits / dt / 1e6}

    res = {"config": {**vars(a), "bits_per_batch": bits_per_batch, "torch_threads": torch.get_num_threads(),
                      "cpus": os.cpu_count(), "platform": platform.platform(),
                      "load_avg_at_end": os.getloadavg()},
           "steady_state_mbps": mbps, "times_s": times, "speedup_vs_sionna": mbps["linksim"] / mbps["sionna"],
           "run_point": points}
    print(f"uncoded {kind}{2 ** m if m > 1 else ''} over AWGN at {a.snr} dB, {a.batch} x {a.frame_bits} bits per batch, "
          f"{a.batches} batches, best of {a.reps}, torch threads {torch.get_num_threads()}")
    print(f"  steady state: linksim {mbps['linksim']:.1f} Mbit/s, plain Sionna loop {mbps['sionna']:.1f} Mbit/s "
          f"({res['speedup_vs_sionna']:.2f}x)")
    for bits, r in points.items():
        print(f"  one sweep point of {int(bits) / 1e6:g} Mbit (run_point): {r['seconds']:.2f} s = {r['mbps']:.1f} Mbit/s")
    print(f"  load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
