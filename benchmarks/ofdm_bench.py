"""One OFDM link point in linksim against Sionna's own pipeline with the same parameters, side by side.

    python benchmarks/ofdm_bench.py --snr 8 --slots 2000 --batch 200 --repeats 3 --json out.json

The point: uncoded QPSK over TDL-A, perfect CSI, LMMSE, APP demapper (system ``unc_qpsk_tdla`` of
scenarios/ofdm_link.yaml: its grid and channel parameters). linksim runs it as ``linksim run`` does
(``run_scenario`` of a one-point scenario: validation, the engine, the BER sink with its interval, the CSV);
the reference is Sionna's pipeline built directly (``linksim.ofdm.reference``: ResourceGrid,
ResourceGridMapper, OFDMChannel(TDL), RemoveNulledSubcarriers, LMMSEEqualizer, Demapper), constructed inside
the timed call as well. Both use the same seeds, hence the same bits, channels and noise: their BERs must be
equal (printed). Repeats alternate the two; the best time of each is kept. ratio = Sionna time / linksim time
(>= 1: linksim costs no more).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--snr", type=float, default=8.0, help="Es/N0 per data RE [dB]")
    p.add_argument("--slots", type=int, default=2000, help="slots (frames) of the point")
    p.add_argument("--batch", type=int, default=200, help="slots per batch (both)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--closed-form", action="store_true",
                   help="linksim's QPSK demapper in closed form (qam_demapper closed_form: true: the exact APP LLRs "
                        "without Sionna's generic logsumexp; same hard decisions) instead of Sionna's Demapper")
    p.add_argument("--json", default=None, help="write the result to this file")
    a = p.parse_args(argv)

    import torch
    import yaml

    if a.threads:
        torch.set_num_threads(a.threads)
    from linksim.context import derive_seed
    from linksim.ofdm.channel import batch_seed
    from linksim.ofdm.reference import sionna_reference_ber
    from linksim.results import read_csv
    from linksim.runner import run_scenario

    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
    sc = yaml.safe_load(open(os.path.join(root, "scenarios", "ofdm_link.yaml")))
    name = "unc_qpsk_tdla"
    system = sc["systems"][name]
    system.update(batch_size=a.batch, sweep={"csi": ["perfect"], "snr_db": [a.snr]},
                  stop={"metric": "ber", "target_errors": 10**12, "max_samples": a.slots})
    if a.closed_form:
        system["blocks"]["demap"]["params"]["closed_form"] = True
    closed_form = bool(system["blocks"]["demap"]["params"].get("closed_form"))  # as the scenario ships it, or forced
    tmp = tempfile.mkdtemp(prefix="ofdm_bench_")
    path = os.path.join(tmp, "s.yaml")
    with open(path, "w") as f:
        yaml.safe_dump({"name": "ofdm_bench", "seed": sc["seed"], "systems": {name: system}}, f)
    point_seed = derive_seed(sc["seed"], name, sorted({"csi": "perfect", "snr_db": a.snr}.items()))

    def linksim_point():
        out = run_scenario(path, os.path.join(tmp, "out"), progress=False, plots=False, overwrite=True)
        return [r["value"] for r in read_csv(out / "results.csv") if r["metric"] == "ber"][0]

    def sionna_point():
        return sionna_reference_ber(sc["defs"]["grid"], sc["defs"]["tdla"], a.snr, a.slots, a.batch, point_seed,
                                    channel_seed=lambda i: batch_seed(sc["seed"], "chan", "test", a.batch * i, a.batch))[0]

    linksim_point(), sionna_point()  # warm-up: imports, first-call allocations
    times = {"linksim": [], "sionna": []}
    ber = {}
    for _ in range(a.repeats):
        for k, fn in (("sionna", sionna_point), ("linksim", linksim_point)):
            t = time.perf_counter()
            ber[k] = fn()
            times[k].append(time.perf_counter() - t)
    best = {k: min(v) for k, v in times.items()}
    res = {"point": {"system": name, "snr_db": a.snr, "slots": a.slots, "batch": a.batch,
                     "bits": a.slots * 1728, "grid": sc["defs"]["grid"], "channel": sc["defs"]["tdla"]},
           "threads": torch.get_num_threads(), "closed_form_demapper": closed_form, "times_s": times, "best_s": best,
           "ratio_sionna_over_linksim": best["sionna"] / best["linksim"], "ber": ber}
    print(f"{name} at {a.snr} dB, {a.slots} slots of {a.batch}, {torch.get_num_threads()} threads"
          + (", linksim with the closed-form QPSK demapper" if closed_form else ""))
    for k in ("sionna", "linksim"):
        print(f"  {k:8s} best {best[k]:.3f} s  (all: {', '.join(f'{t:.3f}' for t in times[k])})  BER {ber[k]:.6f}")
    print(f"  ratio Sionna / linksim = {res['ratio_sionna_over_linksim']:.3f}  (>= 1: linksim costs no more)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
