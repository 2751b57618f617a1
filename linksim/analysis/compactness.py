"""Compactness of a representation (paper 000, Table I): N1(2 sigma) and N2 over the test split."""
from __future__ import annotations

import pydantic

from ..block import Block, Metric, Params, Port
from ..stats import Mean


class Compactness(Block):
    """N1(2 sigma) = features active (> 0) in more than 4.55 % of samples; N2 = mean active features per sample."""

    type_name = "compactness"
    role = "analysis"
    is_sink = True
    inputs = {"features": Port(("real",))}

    class Params(Params):
        threshold: float = pydantic.Field(0.0455, gt=0, lt=1, description="activation probability threshold")

    def setup(self, specs):
        return {}

    def reset(self):
        self.count = None
        self.active_sum = 0.0
        self.active_sq = 0.0
        self.n = 0

    def update(self, features):
        a = (features.reshape(features.shape[0], -1) > 0).float().cpu()
        self.count = a.sum(0) if self.count is None else self.count + a.sum(0)
        per = a.sum(1).double()
        self.active_sum += float(a.sum())
        self.active_sq += float((per * per).sum())
        self.n += a.shape[0]

    def compute(self):
        p = self.count / max(self.n, 1)
        return [Metric("n1_2sigma", float((p > self.p.threshold).sum()), self.n),
                Metric("n2", self.active_sum / max(self.n, 1), self.n, stat=Mean(self.n, self.active_sum, self.active_sq))]
