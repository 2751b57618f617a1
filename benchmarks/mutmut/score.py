"""Score per module from ``mutmut results --all true`` lines ``module.x_func__mutmut_N: status``."""
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
print(f"{'module':34s} {'killed':>6s} {'timeout':>7s} {'survived':>8s} {'unchecked':>9s} {'score':>6s} {'strict':>6s}")
tot = collections.Counter()
for m in sorted(counts):
    c = counts[m]
    k, t, sv = c["killed"], c["timeout"], c["survived"]
    other = sum(v for key, v in c.items() if key not in ("killed", "survived", "timeout"))
    tot.update(c)
    # score: (killed + timeout) / checked (mutmut's convention); strict: timeouts counted as survivors
    print(f"{m:34s} {k:6d} {t:7d} {sv:8d} {other:9d} {100 * (k + t) / max(k + t + sv, 1):5.1f}% "
          f"{100 * k / max(k + t + sv, 1):5.1f}%")
k, t, sv = tot["killed"], tot["timeout"], tot["survived"]
print(f"{'all':34s} {k:6d} {t:7d} {sv:8d} {'':9s} {100 * (k + t) / max(k + t + sv, 1):5.1f}% {100 * k / max(k + t + sv, 1):5.1f}%")
