"""Network dissection of a representation (paper 000, Sec. IV-G/H, Figs. 6-7).

A linear classifier is trained on the training representations. On the test split the block reports:
accuracy with all features and with only the effective features (activation probability > 4.55 % on the
training split); accuracy as effective features are removed one by one (most active first); per-class
accuracy after removing each single effective feature (the index-accuracy matrix M, E x C). With a second
representation (``features_b``, e.g. the same encoder trained with another seed) it reports the consistency
between the two: |cosine| of the principal right singular vectors (class space) of M_a and M_b (the paper's
SVD of M^T M), and the same for the accuracy-drop matrices (full per-class accuracy minus M), which is not
dominated by the common per-class accuracy level.
"""
from __future__ import annotations

import pydantic
import torch

from ..block import Block, Metric, Params, Port


def _acc(name: str, hit: torch.Tensor, labels: dict) -> Metric:
    """An accuracy row (success rate with its interval) from per-sample hits."""
    return Metric.rate(name, int((~hit).sum()), len(hit), labels, success=True, value=float(hit.float().mean()))


def _per_class(pred: torch.Tensor, y: torch.Tensor, C: int) -> torch.Tensor:
    acc = torch.zeros(C)
    for c in range(C):
        m = y == c
        acc[c] = (pred[m] == c).float().mean() if m.any() else float("nan")
    return acc


class _Side:
    def __init__(self, x: torch.Tensor, y: torch.Tensor, C: int, threshold: float, max_features: int, seed: int):
        from ..semantic.training import train_classifier

        self.model = train_classifier(x, y, C, seed=seed, standardize=True, epochs=60, patience=5)
        p = (x > 0).float().mean(0)
        order = torch.sort(-p, stable=True).indices
        self.effective = [int(i) for i in order if p[i] > threshold][:max_features]

    @torch.no_grad()
    def pred(self, x):
        return self.model(x).argmax(1)


class Dissection(Block):
    """Accuracy under removal of effective features, per-class index-accuracy matrix, seed consistency."""

    type_name = "dissection"
    role = "analysis"
    trainable = True
    is_sink = True
    cacheable = False
    inputs = {"features": Port(("real",)), "label": Port(("label",)),
              "features_b": Port(("real",), "second representation (another seed)", optional=True)}

    class Params(Params):
        threshold: float = pydantic.Field(0.0455, gt=0, lt=1)
        max_features: pydantic.PositiveInt = pydantic.Field(64, description="effective features examined")
        train_samples: pydantic.PositiveInt | None = 20000
        seed: int = 0

    def setup(self, specs):
        self.C = specs["label"].meta["num_classes"]
        return {}

    def fit(self, data, ctx):
        d = data.materialize(self.p.train_samples)
        args = (d["label"], self.C, self.p.threshold, self.p.max_features, self.p.seed)
        self.a = _Side(d["features"].float(), *args)
        self.b = _Side(d["features_b"].float(), *args) if "features_b" in d else None

    def reset(self):
        self.xa, self.xb, self.y = [], [], []

    def update(self, features, label, features_b=None):
        self.xa.append(features.float().cpu())
        self.y.append(label.cpu())
        if features_b is not None:
            self.xb.append(features_b.float().cpu())

    def _matrix(self, side: _Side, x: torch.Tensor, y: torch.Tensor, tag: str, out: list) -> torch.Tensor:
        n = len(y)
        full = side.pred(x)
        out.append(_acc("accuracy", full == y, {"model": tag, "removed": 0}))
        keep = torch.zeros(x.shape[1], dtype=torch.bool)
        keep[side.effective] = True
        only = side.pred(x * keep)
        out.append(_acc("accuracy_effective_only", only == y, {"model": tag}))
        out.append(Metric("effective_features", float(len(side.effective)), n, {"model": tag}))
        xr = x.clone()
        for r, i in enumerate(side.effective, 1):
            xr[:, i] = 0
            out.append(_acc("accuracy", side.pred(xr) == y, {"model": tag, "removed": r}))
        rows = []
        for i in side.effective:
            xs = x.clone()
            xs[:, i] = 0
            pred = side.pred(xs)
            pc = _per_class(pred, y, self.C)
            rows.append(pc)
            for c in range(self.C):
                m = _acc("class_accuracy", (pred == y)[y == c], {"model": tag, "feature": i, "class": c})
                m.value = float(pc[c])
                out.append(m)
        M = torch.stack(rows) if rows else torch.zeros(0, self.C)
        return M, _per_class(full, y, self.C)

    def compute(self):
        y = torch.cat(self.y)
        out: list[Metric] = []
        Ma, fa = self._matrix(self.a, torch.cat(self.xa), y, "a", out)
        if self.b is not None and self.xb:
            Mb, fb = self._matrix(self.b, torch.cat(self.xb), y, "b", out)

            def principal(M):
                return torch.linalg.svd(torch.nan_to_num(M.double()), full_matrices=False).Vh[0]

            if len(Ma) and len(Mb):
                cos = float(abs(principal(Ma) @ principal(Mb)))
                cos_d = float(abs(principal(fa - Ma) @ principal(fb - Mb)))
                out.append(Metric("consistency_cosine", cos, len(y)))
                out.append(Metric("consistency_cosine_drop", cos_d, len(y)))
        return out
