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
print(f"{'module':40s} {'killed':>7s} {'survived':>9s} {'other':>6s} {'score':>6s}")
tot = collections.Counter()
for m in sorted(counts):
    c = counts[m]
    killed = c["killed"] + c.get("timeout", 0)
    other = sum(v for k, v in c.items() if k not in ("killed", "survived", "timeout"))
    done = killed + c["survived"]
    tot.update(c)
    print(f"{m:40s} {killed:7d} {c['survived']:9d} {other:6d} {100 * killed / max(done, 1):5.1f}%")
killed = tot["killed"] + tot.get("timeout", 0)
print(f"{'all':40s} {killed:7d} {tot['survived']:9d} {'':6s} {100 * killed / max(killed + tot['survived'], 1):5.1f}%")
