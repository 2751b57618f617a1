"""Every dependency a shipped scenario needs is a core dependency: with the packages that only the extras
bring made unimportable, every shipped scenario (and its --quick variant) still validates, which builds every
block of every system at every sweep point (the LDPC decoders build their numba decoder there)."""
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _dist(req: str) -> str:
    return re.split(r"[\s<>=!~;\[]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _extra_only() -> tuple[set[str], set[str]]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_dist(d) for d in meta["dependencies"]}
    extra = {_dist(d) for name, ds in meta["optional-dependencies"].items() if name != "dev" for d in ds}
    return core, extra - core


def test_numba_is_core_and_extras_hold_only_optional_packages():
    core, extra_only = _extra_only()
    assert "numba" in core
    assert extra_only and "numba" not in extra_only


BLOCKER = r"""
import importlib.abc, importlib.metadata, sys
dists = set(sys.argv[1].split(","))
mods = {m for m, ds in importlib.metadata.packages_distributions().items()
        if any(d.lower().replace("_", "-") in dists for d in ds)} | dists
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in mods:
            raise ImportError(f"{name} comes only with an extra")
sys.meta_path.insert(0, Block())
from linksim.runner import validate_scenario
for path in sys.argv[2:]:
    for quick in (False, True):
        validate_scenario(path, quick=quick)
    print("ok", path)
"""


def test_no_shipped_scenario_needs_an_extra():
    _, extra_only = _extra_only()
    scenarios = sorted(str(p) for p in (ROOT / "scenarios").glob("*.yaml"))
    assert scenarios
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", BLOCKER, ",".join(sorted(extra_only)), *scenarios],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("ok ") == len(scenarios)
