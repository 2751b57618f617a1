"""Command line: ``linksim run | validate | blocks | plot | bench``.

Exit status: 0 done; 2 bad input (one line naming the file, key or flag); 130/143 stopped by SIGINT/SIGTERM
(finished sweep points kept); 1 an internal error (one line, with the full traceback written to a file).
"""
from __future__ import annotations

import argparse
import sys

from .errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump), exit 2."""

    def error(self, message: str):
        print(f"linksim: error: {self.prog}: {_one_line(message)} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(2)


def _seed(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: expected an integer") from None
    if not 0 <= v < 2**32:
        raise argparse.ArgumentTypeError(f"seed {v} is out of range (0 to 2**32 - 1)")
    return v


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="linksim", description="End-to-end link simulator for semantic communication.")
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="run a scenario: train, sweep, write results.csv, run.json and plots")
    r.add_argument("scenario")
    r.add_argument("--out", help="output folder (default results/<scenario name>, or results/<name>/quick "
                                 "with --quick)")
    r.add_argument("--overwrite", action="store_true",
                   help="replace results of another configuration found in the output folder")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario value by its dotted key (repeatable)")
    r.add_argument("--quick", action="store_true", help="apply the scenario's 'quick' overrides (small data/epochs)")
    r.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    r.add_argument("--seed", type=_seed, default=None)
    r.add_argument("--no-cache", action="store_true", help="do not read or write the trained-weight cache")
    r.add_argument("--no-plots", action="store_true")
    r.add_argument("--executor", default="local", choices=["local", "ray"],
                   help="run sweep points in this process or as Ray tasks (pip install 'linksim[ray]')")
    r.add_argument("--address", default=None, help="Ray cluster address (default: start a local instance)")

    v = sub.add_parser("validate", help="check a scenario (every system at every sweep point) without running it")
    v.add_argument("scenario")
    v.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    v.add_argument("--quick", action="store_true")

    b = sub.add_parser("blocks", help="list block types with their ports and parameters, plugins and library "
                                      "composites (scenarios/lib/*.yaml, LINKSIM_LIBRARY, --lib)")
    b.add_argument("--lib", action="append", default=[], metavar="FILE_OR_DIR", help="also list this library's composites")

    pl = sub.add_parser("plot", help="(re)draw the PNG plots of a results folder or results.csv")
    pl.add_argument("target")

    from .bench import add_arguments

    add_arguments(sub.add_parser("bench", help="throughput and BLER of the Sionna and fast LDPC decoders"))
    return p


def _cmd_blocks(lib: list[str] = ()) -> None:
    from .registry import BLOCKS, ENTRY_POINT_GROUP, all_plugins, block_class

    by_role: dict[str, list] = {}
    for name in BLOCKS:
        cls = block_class(name)
        by_role.setdefault(cls.role or "other", []).append((name, cls))
    for role, items in by_role.items():
        print(f"== {role} ==")
        for name, cls in items:
            _print_block(name, cls)
        print()
    found = all_plugins()
    if found:  # blocks added by installed packages, with where they come from
        print(f"== plugins (entry points '{ENTRY_POINT_GROUP}') ==")
        for name, plug in found.items():
            origin = f"{plug.dist}, {plug.target}"
            if plug.shadowed:
                print(f"{name}: IGNORED, a built-in block has this name ({origin}); write '{plug.target}' to use it")
                continue
            if plug.error:
                print(f"{name}: UNUSABLE, {plug.error}")
                continue
            try:
                cls = block_class(name)
            except UserError as e:
                print(f"{name}: CANNOT LOAD ({origin}): {_one_line(str(e))}")
                continue
            _print_block(name, cls, f"    from: {origin}")
        print()
    from .composite import describe_library, library_files

    lines = describe_library(library_files(lib))
    if lines:  # composite blocks of library files, with their parameters and pads
        print("== composites (library files) ==")
        print("\n".join(lines))
        print()


def _print_block(name: str, cls, origin: str | None = None) -> None:
    from .registry import describe_params

    doc = (cls.__doc__ or "").strip().splitlines()[0] if (cls.__doc__ or "").strip() else ""
    print(f"{name}: {doc}")
    if origin:
        print(origin)
    if cls.inputs:
        ins = ", ".join(f"{k}[{'|'.join(v.kinds)}]{'?' if v.optional else ''}{'*' if v.multi else ''}"
                        for k, v in cls.inputs.items())
        print(f"    inputs:  {ins}")
    if cls.outputs:
        print(f"    outputs: {', '.join(cls.outputs)}")
    for pname, ptype, default, desc in describe_params(cls):
        print(f"    - {pname} ({ptype}, {default}){': ' + desc if desc else ''}")


def _internal_error(exc: BaseException) -> str:
    """Write the traceback of a bug to a file; return where (or why it could not be written)."""
    import os
    import tempfile
    import time
    import traceback
    from pathlib import Path

    text = "".join(traceback.format_exception(exc))
    try:
        f = Path(tempfile.gettempdir()) / f"linksim-crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
        f.write_text(f"linksim {' '.join(sys.argv[1:])}\n\n{text}", errors="backslashreplace")
        return f"full traceback in {f}"
    except OSError:
        return "the traceback could not be written to a file"


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    from .interrupt import Interrupted

    try:
        if args.cmd == "blocks":
            _cmd_blocks(args.lib)
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
            from .heap import limit_arenas

            limit_arenas()  # before torch or the decoder start threads: they would each get a malloc arena
            from .runner import default_out, run_scenario
            from .scenario import load_scenario

            out = args.out
            if out is not None and not out.strip():
                raise UserError("--out is empty; name a folder")
            if out is None:
                cfg, _ = load_scenario(args.scenario, args.overrides, args.quick, args.seed)
                out = str(default_out(cfg, args.quick))
            path = run_scenario(args.scenario, out, args.overrides, args.quick, args.device, args.seed,
                                cache_dir=None if args.no_cache else "default", plots=not args.no_plots,
                                executor=args.executor, address=args.address, overwrite=args.overwrite)
            print(f"results written to {path}/results.csv")
    except UserError as e:
        print(f"linksim: error: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"linksim: {e}; {e.detail or 'finished sweep points are kept'}; rerun the same command to resume",
              file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("linksim: interrupted (finished sweep points are kept; rerun the same command to resume)",
              file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except (MemoryError, RecursionError) as e:
        print(f"linksim: error: out of {'memory' if isinstance(e, MemoryError) else 'stack'} "
              f"({type(e).__name__}); a size in the scenario is too large", file=sys.stderr)
        return 2
    except Exception as e:  # a bug: one line here, the traceback in a file
        where = _internal_error(e)
        print(f"linksim: internal error: {type(e).__name__}: {_one_line(str(e))[:300]} ({where})", file=sys.stderr)
        return 1
    return 0


def _one_line(text: str, limit: int = 1000) -> str:
    """Messages quote the user's keys and values, which may hold line breaks or be huge."""
    text = " ".join(text.split()) if any(c in text for c in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029") else text
    return text if len(text) <= limit else text[:limit] + "..."


if __name__ == "__main__":
    sys.exit(main())
