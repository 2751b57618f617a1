"""Result files: atomic writes, long-format results.csv, run.json provenance, per-point resume store."""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from .errors import UserError

BASE_COLUMNS = ["system", "metric", "value", "n"]


def digest(obj) -> str:
    """A short stable hash of JSON-like data (point fingerprints, cache keys, configuration fingerprints)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:20]
# after ``n`` when present: errors counted (rates), 95 % interval (linksim.stats), stop rule outcome
STAT_COLUMNS = ["errors", "ci_low", "ci_high", "samples", "stopped_by"]


def atomic_write(path: str | Path, data: str | bytes) -> None:
    """Write via a temporary file in the same folder + rename: readers never see half a file. A failure
    (full disk, read-only folder, a file where a folder should be) leaves no partial file and raises a
    UserError naming the path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise UserError(f"cannot write: {e.strerror or e}", str(path)) from None


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
                "faiss-cpu", "open_clip_torch", "pillow-heif", "torchmetrics", "ldpc", "numba", "llvmlite"]:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def cpu_info() -> dict:
    """The processor a run computed on: float results of training (and of vectorised kernels) can differ
    between processors at the same code, seed and versions, so run.json says which one it was."""
    info = {"count": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        info["model"] = platform.processor() or None
    try:
        import torch

        info["torch_capability"] = torch.backends.cpu.get_cpu_capability()
    except Exception:
        pass
    return info


def run_info(scenario_path: str, resolved: dict, seed: int, wall_s: float, extra: dict) -> dict:
    return {
        "scenario": str(scenario_path),
        "command": " ".join(["linksim"] + sys.argv[1:]),
        "seed": seed,
        "git_commit": _git_commit(),
        "versions": versions(),
        "platform": platform.platform(),
        "cpu": cpu_info(),
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


# ------------------------------------------------------------------------------- the output folder
CONFIG_FILE = "config.json"  # written before the first point: which configuration the folder's results are of


def config_fingerprint(raw: dict, quick: bool) -> str:
    """What decides a run's numbers: the resolved scenario without its presentation (name, descriptions,
    plots, the quick section, derived envelopes) and whether it ran with --quick."""
    keep = {k: v for k, v in raw.items() if k not in ("name", "description", "plots", "quick", "defs", "envelopes", "normal_approx", "include")}
    systems = keep.get("systems")
    if isinstance(systems, dict):
        keep["systems"] = {k: ({a: b for a, b in v.items() if a != "description"} if isinstance(v, dict) else v)
                           for k, v in systems.items()}
    return digest([keep, bool(quick)])


def _held_config(out: Path) -> tuple[str | None, str] | None:
    """(fingerprint or None, description) of the results a folder holds; None when it holds none."""
    cfg_file, run_file = out / CONFIG_FILE, out / "run.json"
    try:
        if cfg_file.is_file():
            d = json.loads(cfg_file.read_text())
            return d.get("fingerprint"), f"scenario {d.get('scenario')}, quick={d.get('quick')}"
        if run_file.is_file():  # results written before config.json existed
            d = json.loads(run_file.read_text())
            return (config_fingerprint(d["resolved_scenario"], d.get("quick", False)),
                    f"scenario {d.get('scenario')}, quick={d.get('quick', False)}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, "an unreadable record of their configuration"
    if (out / "results.csv").exists() or any((out / "points").glob("*.json")):
        return None, "no record of their configuration"
    return None


def clear_results(out: Path) -> None:
    """Remove what linksim writes into a results folder (not other files, nor a quick/ subfolder)."""
    import shutil

    for name in ("results.csv", "run.json", CONFIG_FILE):
        with contextlib.suppress(FileNotFoundError):
            (out / name).unlink()
    shutil.rmtree(out / "points", ignore_errors=True)
    for png in out.glob("*.png"):
        png.unlink()


def prepare_out(out: Path, fingerprint: str, scenario: str, quick: bool, overwrite: bool) -> None:
    """Make the output folder ready for a run of this configuration: created, writable, and not holding
    results of another configuration (those are replaced only with ``overwrite``). Without ``overwrite`` the
    same configuration resumes from its finished points; with it, the run starts afresh."""
    where = str(out)
    try:
        if out.exists() and not out.is_dir():
            raise UserError("--out names a file, not a folder", where)
        out.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        raise UserError(f"cannot create the output folder: {getattr(e, 'strerror', None) or e}", where) from None
    held = _held_config(out)
    if held is not None and (overwrite or held[0] != fingerprint):
        if not overwrite:
            raise UserError(f"holds results of another configuration ({held[1]}); pass --overwrite to replace "
                            f"them, or choose another --out", where)
        try:  # --overwrite replaces whatever the folder holds (the same configuration too: a fresh run)
            clear_results(out)
        except OSError as e:
            raise UserError(f"cannot remove the old results: {e.strerror or e}", where) from None
    write_json(out / CONFIG_FILE, {"fingerprint": fingerprint, "scenario": scenario, "quick": bool(quick)})
