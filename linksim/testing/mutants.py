"""Block-mutant check: break each registered block in turn and check that its marked tests fail.

For every block type in :data:`linksim.registry.BLOCKS` and every library composite (``scenarios/lib``; its
output pads are broken) (or ``--blocks``) and every applicable kind:

- ``zero``: every output of ``forward`` replaced by zeros (blocks with outputs);
- ``roll``: outputs rolled by one sample along the batch (blocks with inputs; for sources without
  inputs a roll is an equivalent mutant: the same distribution of samples);
- ``sinkzero``: every value a metric sink returns set to 0 (sinks).

the tests marked ``@pytest.mark.block(TYPE)`` are run with ``-x`` (in this process, one pytest session per
mutant, selected by node id) with ``LINKSIM_MUTANT=TYPE:KIND`` set (see :mod:`.mutant_plugin`). A mutant
survives when all of its tests pass. Blocks without any marked test are reported as such. Exit status 1 if
a mutant survives or a block has no test, 0 otherwise.

    python -m linksim.testing.mutants [--blocks a,b] [--kinds zero,roll,sinkzero] [--tests tests] [--json F]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time

from .mutant_plugin import KINDS


def kinds_for(type_name: str) -> list[str]:
    from ..registry import BLOCKS, block_class

    if type_name not in BLOCKS:  # a library composite: its outputs zeroed or rolled
        return ["zero", "roll"]
    cls = block_class(type_name)
    out = []
    if cls.outputs:
        out.append("zero")
        if cls.inputs:
            out.append("roll")
    if cls.is_sink:
        out.append("sinkzero")
    return out


class _Collector:
    def __init__(self):
        self.by_type: dict[str, list[str]] = {}

    def pytest_collection_modifyitems(self, items):
        from .mutant_plugin import marked_types

        for it in items:
            for t in marked_types(it):
                self.by_type.setdefault(t, []).append(it.nodeid)


class _Outcome:
    def __init__(self):
        self.failed: list[str] = []
        self.passed = 0

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.failed.append(report.nodeid)
        elif report.when == "call" and report.passed:
            self.passed += 1


def _pytest(args: list[str], plugins: list, quiet: bool = True) -> int:
    import pytest

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf) if quiet else contextlib.nullcontext():
        return int(pytest.main(args, plugins=plugins))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m linksim.testing.mutants", description=__doc__.split("\n")[0])
    ap.add_argument("--blocks", help="comma-separated block types (default: every registered block)")
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated mutant kinds")
    ap.add_argument("--tests", default="tests", help="test folder or files to collect from")
    ap.add_argument("--json", help="write the results to this JSON file")
    ap.add_argument("-v", "--verbose", action="store_true", help="show pytest output")
    a = ap.parse_args(argv)

    from ..registry import BLOCKS

    from .mutant_plugin import library_composites

    comps = list(library_composites())  # composites of scenarios/lib: mutants of their output pads
    types = a.blocks.split(",") if a.blocks else list(BLOCKS) + comps
    unknown = [t for t in types if t not in BLOCKS and t not in comps]
    if unknown:
        print(f"unknown block types: {unknown}", file=sys.stderr)
        return 2
    kinds = a.kinds.split(",")
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        print(f"unknown kinds {bad} (choose from {KINDS})", file=sys.stderr)
        return 2
    os.environ.pop("LINKSIM_MUTANT", None)
    t0 = time.time()
    col = _Collector()
    _pytest(["--collect-only", "-q", "-p", "no:cacheprovider", a.tests], [col])
    results, untested, survivors = [], [], []
    for t in types:
        ids = sorted(set(col.by_type.get(t, [])))
        if not ids:
            untested.append(t)
            print(f"{t}: NO marked test", flush=True)
            continue
        for k in kinds_for(t):
            if k not in kinds:
                continue
            os.environ["LINKSIM_MUTANT"] = f"{t}:{k}"
            out = _Outcome()
            t1 = time.time()
            try:
                rc = _pytest(["-x", "-q", "-p", "no:cacheprovider", *ids], [out], quiet=not a.verbose)
            finally:
                os.environ.pop("LINKSIM_MUTANT", None)
            killed = bool(out.failed) or rc not in (0, 5)
            row = {"block": t, "kind": k, "killed": killed, "killed_by": out.failed[:1], "tests": len(ids),
                   "seconds": round(time.time() - t1, 1)}
            results.append(row)
            if not killed:
                survivors.append(f"{t}:{k}")
            print(f"{t}:{k}: {'killed by ' + out.failed[0] if out.failed else ('KILLED (rc %d)' % rc if killed else 'SURVIVED')}"
                  f" ({row['seconds']} s, {len(ids)} tests)", flush=True)
    wall = time.time() - t0
    print(f"\n{len(results)} mutants over {len(types) - len(untested)} blocks: {len(results) - len(survivors)} killed, "
          f"{len(survivors)} survived; {len(untested)} blocks without a marked test; {wall:.0f} s")
    if survivors:
        print("survivors: " + ", ".join(survivors))
    if untested:
        print("untested: " + ", ".join(untested))
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"mutants": results, "survivors": survivors, "untested": untested, "seconds": round(wall, 1)},
                      fh, indent=1)
    return 1 if survivors or untested else 0


if __name__ == "__main__":
    sys.exit(main())
