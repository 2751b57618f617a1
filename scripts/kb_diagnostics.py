"""Diagnostics of a knowledge-base system of ``scenarios/knowledge_base.yaml`` (or another scenario).

Loads the system's trained blocks from the weight cache (trains them if absent), then reports:
- the teacher's own linear accuracy on the held-out split (logistic regression on its image embeddings,
  fitted on test 0-6000, scored on test 6000-10000);
- how the SKB is organised: mean cosine similarity of same-class and different-class SKB vectors;
- how well the local encoder's query space matches the SKB's: mean cosine between q(public image) and the SKB
  vector built from that image;
- whether the local encoder's queries retrieve semantically related knowledge: the fraction of the top-n SKB
  vectors retrieved for private images that share the image's class (0.1 = chance for ten classes), and the
  entropy of the attention weights (log n = uniform).

Usage: .venv/bin/python scripts/kb_diagnostics.py [system] [scenario] [seed]
"""
from __future__ import annotations

import math
import sys

import numpy as np
import torch
import torch.nn.functional as Fn

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

from linksim.data.datasets import load_split
from linksim.runner import Plan, make_context, train_point
from linksim.scenario import load_scenario


def main() -> None:
    sname = sys.argv[1] if len(sys.argv) > 1 else "kb_image"
    path = sys.argv[2] if len(sys.argv) > 2 else "scenarios/knowledge_base.yaml"
    point = {"seed": int(sys.argv[3])} if len(sys.argv) > 3 else {}
    cfg, _ = load_scenario(path, [], False)
    plan = Plan(cfg, path)
    ctx = make_context(cfg, path, device="cpu", progress=False)
    g = train_point(plan, sname, point or plan.systems[sname][1][0], ctx)
    teacher, skb, enc = g.blocks["teacher"], g.blocks["skb"], g.blocks["enc"]
    pub = g.blocks["public"].p.train_range
    prv = g.blocks["private"].p.train_range
    X, Y = load_split("fashion_mnist", "train")
    Xt, Yt = load_split("fashion_mnist", "test")
    img = lambda a: torch.tensor(a).float().div(255)
    from sklearn.linear_model import LogisticRegression

    with torch.no_grad():
        te = teacher.forward(image=img(Xt), label=torch.tensor(Yt))["image_embedding"].numpy()
        acc = LogisticRegression(max_iter=3000).fit(te[:6000], Yt[:6000]).score(te[6000:], Yt[6000:])
        print(f"teacher linear accuracy (held-out): {acc:.4f}")
        kbv = skb.decoded()
        if len(kbv) == pub[1] - pub[0]:
            ypub = torch.tensor(Y[pub[0]:pub[1]])
            tp = Fn.normalize(kbv, dim=1)
            same = (ypub[:, None] == ypub[None]).float()
            s = tp @ tp.T
            print(f"SKB cosine: same class {float((s * same).sum() / same.sum()):.3f}, "
                  f"different class {float((s * (1 - same)).sum() / (1 - same).sum()):.3f}")
            _, qp = enc.model(img(X[pub[0]:pub[0] + 2000]))
            print(f"alignment: cos(q(public image), its SKB vector) = "
                  f"{float(Fn.cosine_similarity(qp, kbv[:2000], dim=1).mean()):.3f}")
            n = enc.p.top_n
            _, q = enc.model(img(X[prv[0]:prv[0] + 2000]))
            yq = torch.tensor(Y[prv[0]:prv[0] + 2000])
            qa = enc.query(q)
            ids = skb.search(qa, n).clamp_min(0)  # without the query noise
            agree = float((ypub[ids] == yq[:, None]).float().mean())
            w = enc.scores(qa, kbv[ids])
            ent = float(-(w * w.clamp_min(1e-12).log()).sum(1).mean())
            print(f"retrieval: {agree:.3f} of the top-{n} SKB vectors share the query's class (chance 0.1); "
                  f"attention entropy {ent:.2f} (uniform {math.log(n):.2f}); |q| = {float(q.norm(dim=1).mean()):.1f}")
        h = enc.model(img(Xt))[0].numpy()
        acc = LogisticRegression(max_iter=3000).fit(h[:6000], Yt[:6000]).score(h[6000:], Yt[6000:])
        print(f"local encoder features, logistic regression (held-out): {acc:.4f}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
