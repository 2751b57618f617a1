"""Score per module from ``mutmut results --all true`` lines ``module.x_func__mutmut_N: status``.

score = (killed + timeout) / (killed + timeout + survived + no tests)   (a mutant no test reaches is a survivor)
strict = killed / same denominator (a timeout is not a proven kill: on a loaded machine mutmut's limits fire)
unchecked = not checked / skipped / suspicious / segfault etc. (not in the denominator)
"""
import collections
import sys

counts = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1]):
    line = line.strip()
    if ":" not in line or "__mutmut_" not in line:
        continue
    name, status = line.rsplit(":", 1)
    module = name.split(".x", 1)[0].split(".xǁ", 1)[0]
    counts[module][status.strip()] += 1
print(f"{'module':34s} {'killed':>6s} {'timeout':>7s} {'survived':>8s} {'no tests':>8s} {'unchecked':>9s} "
      f"{'score':>6s} {'strict':>6s}")
tot = collections.Counter()
for m in sorted(counts):
    c = counts[m]
    k, t, sv, nt = c["killed"], c["timeout"], c["survived"], c["no tests"]
    other = sum(v for key, v in c.items() if key not in ("killed", "survived", "timeout", "no tests"))
    tot.update(c)
    d = max(k + t + sv + nt, 1)
    print(f"{m:34s} {k:6d} {t:7d} {sv:8d} {nt:8d} {other:9d} {100 * (k + t) / d:5.1f}% {100 * k / d:5.1f}%")
k, t, sv, nt = tot["killed"], tot["timeout"], tot["survived"], tot["no tests"]
d = max(k + t + sv + nt, 1)
print(f"{'all':34s} {k:6d} {t:7d} {sv:8d} {nt:8d} {'':9s} {100 * (k + t) / d:5.1f}% {100 * k / d:5.1f}%")
