"""Which README comparisons are significant: differences of two rates from committed results.csv files.

    python scripts/significance.py

The committed CSVs of the heavy scenarios predate the ``ci_low``/``ci_high`` columns; a rate row's ``value``
and ``n`` suffice (errors = round((1 - value) n)). Each comparison prints both rates with their 95 %
Clopper-Pearson intervals (linksim.stats) and the difference with a 95 % Wald interval and two-sided p-value
(unpooled normal approximation, ``scipy.stats.norm``). Both systems are scored on the *same* test images,
so the outcomes are positively correlated and this unpaired test is conservative: a difference called
significant here is significant; one called not significant might still be under a paired (McNemar) test,
which needs per-image outcomes the CSVs do not keep. Macro recall is treated like a proportion over the test
images (an approximation).
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

ROOT = Path(__file__).resolve().parents[1]


def _same(a, b) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def pick(rows, **want):
    got = [r for r in rows if all(_same(r.get(k), v) for k, v in want.items())]
    if not got:
        raise SystemExit(f"no row {want}")
    return got


def pooled(rows) -> tuple[float, int]:
    """Value and n of one or several rows (several seeds: pooled over their test images)."""
    n = sum(int(r["n"]) for r in rows)
    return sum(float(r["value"]) * int(r["n"]) for r in rows) / n, n


def compare(label, a, b) -> str:
    from scipy.stats import norm

    from linksim.stats import Rate

    (pa, na), (pb, nb) = pooled(a), pooled(b)
    ia = Rate(round((1 - pa) * na), na, success=True).interval()
    ib = Rate(round((1 - pb) * nb), nb, success=True).interval()
    d = pa - pb
    se = math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
    p = 2 * norm.sf(abs(d) / se) if se else 1.0
    verdict = "significant" if p < 0.05 else "not significant"
    return (f"{label}: {100 * pa:.2f} [{100 * ia[0]:.2f}, {100 * ia[1]:.2f}] vs {100 * pb:.2f} "
            f"[{100 * ib[0]:.2f}, {100 * ib[1]:.2f}] (n = {na} / {nb}): difference {100 * d:+.2f} points "
            f"[{100 * (d - 1.96 * se):+.2f}, {100 * (d + 1.96 * se):+.2f}], p = {p:.2g}, {verdict}")


def main() -> int:
    from linksim.results import read_csv

    kb = read_csv(ROOT / "results/knowledge_base/results.csv")
    top1 = dict(metric="top1_accuracy")
    print("Knowledge bases (held-out top-1, seeds 0-2 pooled):")
    for other in ("simclr", "simclr_long", "dcl", "kb_distill"):
        if any(r["system"] == other for r in kb):
            print("  " + compare(f"kb_image vs {other}", pick(kb, system="kb_image", **top1),
                                 pick(kb, system=other, **top1)))
    smrc = read_csv(ROOT / "results/multires_jscc/results.csv")
    print("SMRC (macro recall, layer 3 vs layer 2, 10 000 test images):")
    for snr in sorted({r["snr_db"] for r in smrc if r["system"] == "smrc" and r["metric"] == "recall_macro"}):
        print("  " + compare(f"{snr:g} dB", pick(smrc, system="smrc", snr_db=snr, scheme="L3", metric="recall_macro"),
                             pick(smrc, system="smrc", snr_db=snr, scheme="L2", metric="recall_macro")))
    ds = read_csv(ROOT / "results/distributed_sensing/results.csv")
    print("Distributed sensing (lossless links, accuracy, 10 000 test images):")
    for snr in (0, 12, 24):
        for scheme, n1, n2 in (("full_feature", 4, 1), ("full_feature", 4, 3), ("decision", 4, 3),
                               ("maxpro", 4, 1)):
            a = pick(ds, system="lossless", nodes=n1, image_snr_db=snr, scheme=scheme, metric="accuracy")[:1]
            b = pick(ds, system="lossless", nodes=n2, image_snr_db=snr, scheme=scheme, metric="accuracy")[:1]
            print("  " + compare(f"{scheme} {n1} vs {n2} nodes at {snr} dB", a, b))
        a = pick(ds, system="lossless", nodes=4, image_snr_db=snr, scheme="full_feature", metric="accuracy")[:1]
        b = pick(ds, system="lossless", nodes=4, image_snr_db=snr, scheme="decision", metric="accuracy")[:1]
        print("  " + compare(f"full feature vs decision, 4 nodes at {snr} dB", a, b))
    return 0


if __name__ == "__main__":
    sys.exit(main())
