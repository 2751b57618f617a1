#!/usr/bin/env bash
# The main job (scenarios/distributed_sensing.yaml) from an empty weight cache ("cold"), then again with the
# weights it cached ("warm", into a fresh output folder so no sweep point is resumed), each under
# /usr/bin/time -v. Writes benchmarks/mainjob.json: cold_wall_s, warm_wall_s, cold_peak_rss_mb, git_commit,
# plus CPU seconds (user + sys), the load average before each run and whether the two results.csv are
# byte-identical. Extra arguments go to `linksim run` (e.g. --quick; then set JSON=benchmarks/mainjob_quick.json).
# COLD_OUT=results/distributed_sensing makes the cold run write there (with --overwrite): the committed results.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
JSON=${JSON:-benchmarks/mainjob.json}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LINKSIM_CACHE="$work/cache"   # empty: the cold run trains every block
for phase in cold warm; do
  out="$work/$phase"; extra=()
  if [ "$phase" = cold ] && [ -n "${COLD_OUT:-}" ]; then out="$COLD_OUT"; extra=(--overwrite); fi
  echo "$out" > "$work/$phase.out"
  cut -d' ' -f1-3 /proc/loadavg > "$work/$phase.load"
  /usr/bin/time -v -o "$work/$phase.time" "$PY" -m linksim.cli run scenarios/distributed_sensing.yaml \
      --out "$out" "${extra[@]}" "$@" 2> "$work/$phase.err" || { cat "$work/$phase.err" >&2; exit 1; }
  tail -n 3 "$work/$phase.err" >&2
done
"$PY" - "$work" "$JSON" "$@" <<'PYEOF'
import json, os, subprocess, sys
from pathlib import Path

work, out, args = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]


def timing(phase):
    t = {}
    for line in (work / f"{phase}.time").read_text().splitlines():
        key, _, val = line.strip().rpartition(": ")
        t[key] = val
    h, m, s = (["0"] * 3 + t["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":"))[-3:]
    return {"wall_s": round(int(h) * 3600 + int(m) * 60 + float(s), 1),
            "cpu_s": round(float(t["User time (seconds)"]) + float(t["System time (seconds)"]), 1),
            "peak_rss_mb": round(int(t["Maximum resident set size (kbytes)"]) / 1024, 1),
            "load_before": (work / f"{phase}.load").read_text().split()}


cold, warm = timing("cold"), timing("warm")
commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "linksim", "scenarios"],
                       capture_output=True, text=True).stdout.strip()
cold_dir, warm_dir = (Path((work / f"{p}.out").read_text().strip()) for p in ("cold", "warm"))
run_cold = json.loads((cold_dir / "run.json").read_text())
res = {
    "scenario": "scenarios/distributed_sensing.yaml", "args": args,
    "cold_wall_s": cold["wall_s"], "warm_wall_s": warm["wall_s"], "cold_peak_rss_mb": cold["peak_rss_mb"],
    "warm_peak_rss_mb": warm["peak_rss_mb"], "cold_cpu_s": cold["cpu_s"], "warm_cpu_s": warm["cpu_s"],
    "load_before": {"cold": cold["load_before"], "warm": warm["load_before"]},
    "cold_seconds": run_cold.get("seconds"),
    "results_identical": (cold_dir / "results.csv").read_bytes() == (warm_dir / "results.csv").read_bytes(),
    "git_commit": commit + ("-dirty" if dirty else ""), "cpus": os.cpu_count(),
    "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    "memo_mb": {k: os.environ.get(k) for k in ("LINKSIM_MEMO_MB", "LINKSIM_TRAIN_MEMO_MB")},  # None: defaults
    "cpu_model": run_cold.get("cpu", {}).get("model"),  # as the cold run's run.json records it
}
out.write_text(json.dumps(res, indent=2) + "\n")
print(json.dumps(res, indent=2))
PYEOF
