#!/usr/bin/env bash
# mutmut on the numeric core (channels, link, quantizers/index coding, metrics, derive, results): a benchmark,
# not part of CI. Runs in a scratch copy of the working tree (tracked + untracked, not ignored files: tests added
# but not committed yet are included; mutmut writes a mutants/ folder), niced at 15, and
# prints the score per module. Configuration: [tool.mutmut] in pyproject.toml.
#   [TESTS='tests/a.py tests/b.py'] bash benchmarks/mutmut/run.sh [only_mutate glob ...]
#   e.g.  TESTS=tests/blocks/test_metric_blocks.py bash benchmarks/mutmut/run.sh 'linksim/metrics/*'
# Needs mutmut in the venv (pip install mutmut). Results: $WORK/mutmut_results.txt and the summary printed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PY:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python)
WORK=${WORK:-$(mktemp -d /tmp/linksim-mutmut.XXXX)}
mkdir -p "$WORK"
cd "$ROOT"
git ls-files -co --exclude-standard -z | xargs -0 -I{} sh -c '[ -e "$1" ] && printf "%s\\0" "$1"' _ {} \
  | tar --null -cT - | tar -x -C "$WORK"
cd "$WORK"
# mutmut forks one child per mutant from a process that already ran torch: with the 2 intra-op threads of
# tests/conftest.py, a child that runs torch ops can block forever on a futex (OpenMP pool after fork), which
# mutmut then reports as a timeout. One thread in the scratch copy avoids the pool.
sed -i 's/torch.set_num_threads(2)/torch.set_num_threads(1)/' tests/conftest.py
if [ "$#" -gt 0 ]; then  # restrict only_mutate to the given globs
  "$PY" - "$@" <<'PY'
import re, sys
p = "pyproject.toml"
s = open(p).read()
globs = ", ".join(f'"{g}"' for g in sys.argv[1:])
s = re.sub(r"only_mutate = \[.*?\]", f"only_mutate = [{globs}]", s, flags=re.S)
open(p, "w").write(s)
PY
fi
if [ -n "${TESTS:-}" ]; then  # restrict the tests mutmut runs (space-separated paths)
  "$PY" - $TESTS <<'PY'
import re, sys
p = "pyproject.toml"
s = open(p).read()
tests = ", ".join(f'"{t}"' for t in sys.argv[1:])
s = re.sub(r"pytest_add_cli_args_test_selection = \[.*?\]", f"pytest_add_cli_args_test_selection = [{tests}]", s, flags=re.S)
open(p, "w").write(s)
PY
fi
export OMP_NUM_THREADS=1 PYTHONPATH=$WORK
MUTMUT=$(dirname "$PY")/mutmut
t0=$(date +%s)
nice -n 15 "$MUTMUT" run --max-children "${JOBS:-1}" > mutmut_run.log 2>&1 || true
echo "mutmut run: $(( $(date +%s) - t0 )) s (log $WORK/mutmut_run.log)"
nice -n 15 "$MUTMUT" results --all true > mutmut_results.txt 2>&1 || "$MUTMUT" results > mutmut_results.txt 2>&1 || true
"$PY" "$ROOT/benchmarks/mutmut/score.py" mutmut_results.txt
echo "work folder: $WORK"
