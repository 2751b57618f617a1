"""Result files: atomic writes, long-format results.csv, run.json provenance, per-point resume store."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

BASE_COLUMNS = ["system", "metric", "value", "n"]
# after ``n`` when present: errors counted (rates), 95 % interval (linksim.stats), stop rule outcome
STAT_COLUMNS = ["errors", "ci_low", "ci_high", "samples", "stopped_by"]


def atomic_write(path: str | Path, data: str | bytes) -> None:
    """Write via a temporary file in the same folder + rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fmt(v):
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return repr(v)
    return "" if v is None else str(v)


def columns_for(rows: list[dict], sweep_vars: list[str]) -> list[str]:
    extra = []
    for r in rows:
        for k in r:
            if k not in BASE_COLUMNS and k not in STAT_COLUMNS and k not in sweep_vars and k not in extra:
                extra.append(k)
    present = [v for v in sweep_vars if any(v in r for r in rows)]
    tail = [c for c in STAT_COLUMNS if any(c in r for r in rows)]
    return ["system"] + present + extra + ["metric", "value", "n"] + tail


def write_csv(path: str | Path, rows: list[dict], sweep_vars: list[str]) -> None:
    cols = columns_for(rows, sweep_vars)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_fmt(r.get(c)) for c in cols])
    atomic_write(path, buf.getvalue())


def read_csv(path: str | Path) -> list[dict]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for r in rows:
        d = {}
        for k, v in r.items():
            if v == "":
                continue
            try:
                d[k] = int(v) if k in ("n", "errors", "samples") else float(v)
            except ValueError:
                d[k] = v
        out.append(d)
    return out


def _git_commit() -> str | None:
    """HEAD, with ``-dirty`` when tracked files other than committed results differ from it (a run rewrites
    ``results/``, which alone does not make the code that produced them uncommitted)."""
    here = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)results"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (sha + ("-dirty" if dirty else "")) if sha else None
    except Exception:
        return None


def versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in ["linksim", "torch", "torchvision", "sionna-no-rt", "numpy", "scipy", "scikit-learn",
                "faiss-cpu", "open_clip_torch", "pillow-heif", "torchmetrics", "ldpc"]:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def run_info(scenario_path: str, resolved: dict, seed: int, wall_s: float, extra: dict) -> dict:
    return {
        "scenario": str(scenario_path),
        "command": " ".join(["linksim"] + sys.argv[1:]),
        "seed": seed,
        "git_commit": _git_commit(),
        "versions": versions(),
        "platform": platform.platform(),
        "wall_time_s": round(wall_s, 3),
        **extra,
        "resolved_scenario": resolved,
    }


def write_json(path: str | Path, obj: dict) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


class PointStore:
    """Finished sweep points, one JSON file each, so a killed run resumes where it stopped."""

    def __init__(self, out_dir: Path):
        self.dir = Path(out_dir) / "points"

    def _file(self, system: str, fp: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in system)
        return self.dir / f"{safe}-{fp}.json"

    def load(self, system: str, fp: str) -> list[dict] | None:
        f = self._file(system, fp)
        if not f.is_file():
            return None
        try:
            return json.loads(f.read_text())["rows"]
        except (ValueError, KeyError):
            return None

    def save(self, system: str, fp: str, rows: list[dict]) -> None:
        write_json(self._file(system, fp), {"system": system, "fingerprint": fp, "rows": rows})
