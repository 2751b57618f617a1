"""MaxAmp-K classification test (paper 000, Sec. IV-E, Table IV).

The representation is reduced to a binary vector with 1 at its K largest activations; scikit-learn
classifiers (naive Bayes, decision trees of max depth 21 and 80, a linear classifier, an SVM, a random forest
of 100 trees) are trained on the training split's binary vectors and tested on the test split.
"""
from __future__ import annotations

import numpy as np
import pydantic
import torch

from ..block import Block, Metric, Params, Port

CLASSIFIERS = ("naive_bayes", "tree21", "tree80", "linear", "svm", "random_forest")


def _make(name: str, seed: int):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import BernoulliNB
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    return {
        "naive_bayes": lambda: BernoulliNB(),
        "tree21": lambda: DecisionTreeClassifier(max_depth=21, criterion="entropy", random_state=seed),
        "tree80": lambda: DecisionTreeClassifier(max_depth=80, criterion="entropy", random_state=seed),
        "linear": lambda: LogisticRegression(max_iter=300),
        "svm": lambda: SVC(kernel="rbf", C=1.0, random_state=seed),
        "random_forest": lambda: RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=-1),
    }[name]()


def topk_binary(x: torch.Tensor, k: int) -> np.ndarray:
    x = x.reshape(x.shape[0], -1).float()
    idx = torch.topk(x, k, dim=1).indices
    b = torch.zeros_like(x, dtype=torch.uint8)
    b.scatter_(1, idx, 1)
    return b.cpu().numpy()


class MaxAmpKTest(Block):
    """MaxAmp-K test: accuracy of scikit-learn classifiers on 1-bit top-K representations (K = 1, 2, 3)."""

    type_name = "maxamp_k_test"
    role = "analysis"
    trainable = True
    cacheable = False  # scikit-learn models: refitted each run
    is_sink = True
    inputs = {"features": Port(("real",)), "label": Port(("label",))}

    class Params(Params):
        ks: list[pydantic.PositiveInt] = pydantic.Field([1, 2, 3], description="values of K")
        classifiers: list[str] = pydantic.Field(list(CLASSIFIERS), description=f"subset of {CLASSIFIERS}")
        train_samples: pydantic.PositiveInt | None = pydantic.Field(20000, description="training samples used (SVM cost)")
        seed: int = 0
        name: str | None = pydantic.Field(None, description="'model' label of the rows")

        @pydantic.field_validator("classifiers")
        @classmethod
        def _known(cls, v):
            bad = [c for c in v if c not in CLASSIFIERS]
            if bad:
                raise ValueError(f"unknown classifiers {bad}; choose from {CLASSIFIERS}")
            return v

    def setup(self, specs):
        from ..errors import PortError

        if max(self.p.ks) > specs["features"].size:
            raise PortError(f"K={max(self.p.ks)} > N ({specs['features'].size} features)")
        return {}

    def fit(self, data, ctx):
        d = data.materialize(self.p.train_samples)
        y = d["label"].cpu().numpy()
        self.models = {}
        for k in self.p.ks:
            xb = topk_binary(d["features"], k)
            for c in self.p.classifiers:
                self.models[(k, c)] = _make(c, self.p.seed).fit(xb, y)

    def reset(self):
        self.x, self.y = [], []

    def update(self, features, label):
        self.x.append(features.cpu())
        self.y.append(label.cpu())

    def compute(self):
        x, y = torch.cat(self.x), torch.cat(self.y).numpy()
        out = []
        for k in self.p.ks:
            xb = topk_binary(x, k)
            for c in self.p.classifiers:
                hit = self.models[(k, c)].predict(xb) == y
                labels = {"model": self.p.name} if self.p.name else {}
                out.append(Metric.rate("accuracy", int((~hit).sum()), len(y), {**labels, "k": k, "classifier": c},
                                       success=True, value=float(hit.mean())))
        return out
