"""N1(2 sigma) of a scenario's semantic encoder (paper 000: K of MaxPro-K = N1(2 sigma)), from the weight cache.

    python scripts/encoder_n1.py scenarios/distributed_sensing.yaml [--system lossless] [--block enc[0]] [--set k=v]

Builds the system's graph at its first sweep point, loads the block's trained weights from the weight cache
(run the scenario first: the key is the one `linksim run` uses), encodes the clean training split and prints
N1 (features active on more than 4.55 % of the samples), N2 (mean active features per sample) and the
activation frequency of the first features in MaxPro order.
"""
from __future__ import annotations

import argparse
import sys

import torch


def main() -> int:
    from linksim.results import digest
    from linksim.runner import Plan, make_context
    from linksim.scenario import load_scenario
    from linksim.semantic.training import activation_order, compactness

    ap = argparse.ArgumentParser()
    ap.add_argument("scenario")
    ap.add_argument("--system", default="lossless")
    ap.add_argument("--block", default="enc[0]")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--samples", type=int, default=None, help="training samples to encode (default: all)")
    a = ap.parse_args()
    cfg, _ = load_scenario(a.scenario, a.overrides)
    plan = Plan(cfg, a.scenario)
    ctx = make_context(cfg, a.scenario, device="cpu", progress=False)
    _, points = plan.systems[a.system]
    graph = plan.graph(a.system, points[0], ctx)
    bs = cfg.systems[a.system].batch_size or cfg.data.batch_size
    data_key = [cfg.data.model_dump(exclude={"test_samples", "batch_size"}), bs, cfg.seed]  # as runner.train_point
    state = ctx.cache.get(digest([graph.block_key(a.block), data_key]))
    if state is None:
        print(f"no cached weights for {a.system}/{a.block}: run the scenario first", file=sys.stderr)
        return 2
    blk = graph.blocks[a.block]
    blk.load_state(state)
    from linksim.data.datasets import load_split

    x, _ = load_split(cfg.data.dataset, "train", root=cfg.data.root)
    x = torch.from_numpy(x)
    if a.samples:
        x = x[: a.samples]
    feats = []
    with torch.no_grad():
        for k in range(0, len(x), 1000):
            xb = x[k:k + 1000].float().div(255.0)
            feats.append(blk.model.features(xb))
    X = torch.cat(feats)
    n1, n2, p = compactness(X)
    order = activation_order(X)
    print(f"{a.system}/{a.block}: N1(2 sigma) = {n1}, N2 = {n2:.2f} (of Nf = {X.shape[1]}, {len(X)} clean training samples)")
    print("activation frequency in MaxPro order:", " ".join(f"{float(p[i]):.3f}" for i in order[: n1 + 4]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
