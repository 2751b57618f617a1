"""Command line: ``linksim run | validate | blocks | plot``. User errors -> one line, exit 2."""
from __future__ import annotations

import argparse
import os
import sys

from .errors import UserError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="linksim", description="End-to-end link simulator for semantic communication.")
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="run a scenario: train, sweep, write results.csv, run.json and plots")
    r.add_argument("scenario")
    r.add_argument("--out", help="output folder (default results/<scenario name>)")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario value by its dotted key (repeatable)")
    r.add_argument("--quick", action="store_true", help="apply the scenario's 'quick' overrides (small data/epochs)")
    r.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    r.add_argument("--seed", type=int, default=None)
    r.add_argument("--no-cache", action="store_true", help="do not read or write the trained-weight cache")
    r.add_argument("--no-plots", action="store_true")
    r.add_argument("--executor", default="local", choices=["local", "ray"],
                   help="run sweep points in this process or as Ray tasks (pip install 'linksim[ray]')")
    r.add_argument("--address", default=None, help="Ray cluster address (default: start a local instance)")

    v = sub.add_parser("validate", help="check a scenario (every system at every sweep point) without running it")
    v.add_argument("scenario")
    v.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    v.add_argument("--quick", action="store_true")

    sub.add_parser("blocks", help="list block types with their ports and parameters")

    pl = sub.add_parser("plot", help="(re)draw the PNG plots of a results folder or results.csv")
    pl.add_argument("target")

    from .bench import add_arguments

    add_arguments(sub.add_parser("bench", help="throughput and BLER of the Sionna and fast LDPC decoders"))
    return p


def _cmd_blocks() -> None:
    from .registry import BLOCKS, block_class, describe_params

    by_role: dict[str, list] = {}
    for name in BLOCKS:
        cls = block_class(name)
        by_role.setdefault(cls.role or "other", []).append((name, cls))
    for role, items in by_role.items():
        print(f"== {role} ==")
        for name, cls in items:
            doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            print(f"{name}: {doc}")
            if cls.inputs:
                ins = ", ".join(f"{k}[{'|'.join(v.kinds)}]{'?' if v.optional else ''}{'*' if v.multi else ''}"
                                for k, v in cls.inputs.items())
                print(f"    inputs:  {ins}")
            if cls.outputs:
                print(f"    outputs: {', '.join(cls.outputs)}")
            for pname, ptype, default, desc in describe_params(cls):
                print(f"    - {pname} ({ptype}, {default}){': ' + desc if desc else ''}")
        print()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "blocks":
            _cmd_blocks()
        elif args.cmd == "validate":
            from .runner import validate_scenario

            plan, n = validate_scenario(args.scenario, args.overrides, args.quick)
            pts = sum(len(p) for _, p in plan.systems.values())
            print(f"{args.scenario}: OK ({len(plan.systems)} systems, {pts} sweep points, {n} distinct graphs)")
        elif args.cmd == "plot":
            from .plot import plot_path

            for f in plot_path(args.target):
                print(f)
        elif args.cmd == "bench":
            from .bench import run

            run(args)
        elif args.cmd == "run":
            from .runner import run_scenario
            from .scenario import load_raw

            out = args.out
            if out is None:
                name = load_raw(args.scenario).get("name") or os.path.splitext(os.path.basename(args.scenario))[0]
                out = os.path.join("results", str(name))
            path = run_scenario(args.scenario, out, args.overrides, args.quick, args.device, args.seed,
                                cache_dir=None if args.no_cache else "default", plots=not args.no_plots,
                                executor=args.executor, address=args.address)
            print(f"results written to {path}/results.csv")
    except UserError as e:
        print(f"linksim: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("linksim: interrupted (finished sweep points are kept; rerun with the same --out to resume)",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
