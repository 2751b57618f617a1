"""Classification metrics (torchmetrics): accuracy, macro recall and macro precision."""
from __future__ import annotations

import pydantic
import torch

from ..block import Block, Metric, Params, Port
from ..errors import PortError


class Accuracy(Block):
    """Top-1 accuracy (and optionally macro recall/precision) of class scores or predicted labels."""

    type_name = "accuracy"
    role = "metric"
    is_sink = True
    inputs = {"label": Port(("label",), "true class"), "pred": Port(("real", "label"), "class scores or labels")}

    class Params(Params):
        macro: bool = pydantic.Field(False, description="also report recall_macro and precision_macro")
        name: str | None = pydantic.Field(None, description="'scheme' label of the rows (several schemes in one system)")

    def setup(self, specs):
        self.C = specs["label"].meta.get("num_classes")
        p = specs["pred"]
        if p.kind == "real":
            if len(p.shape) != 1:
                raise PortError(f"class scores must be a vector, got {p}")
            self.C = self.C or p.shape[0]
        if self.C is None:
            raise PortError("number of classes unknown")
        return {}

    def error_counts(self):
        return {"accuracy": self.wrong}

    def reset(self):
        self.y, self.yh = [], []
        self.wrong = 0

    def update(self, label, pred):
        y = label.reshape(-1).cpu()
        yh = (pred.argmax(-1) if pred.is_floating_point() else pred).reshape(-1).cpu()
        self.y.append(y)
        self.yh.append(yh)
        self.wrong += int((y != yh.clamp(0, self.C - 1)).sum())

    def compute(self):
        from torchmetrics.functional.classification import multiclass_precision, multiclass_recall

        y, yh = torch.cat(self.y), torch.cat(self.yh).clamp(0, self.C - 1)
        labels = {"scheme": self.p.name} if self.p.name else {}
        hit = y == yh
        out = [Metric.rate("accuracy", int((~hit).sum()), len(y), labels, success=True,
                           value=float(hit.float().mean()))]
        if self.p.macro:
            for name, fn, by in (("recall_macro", multiclass_recall, y), ("precision_macro", multiclass_precision, yh)):
                m = Metric.mean(name, macro_terms(hit, by, self.C), labels)
                m.value = float(fn(yh, y, self.C, average="macro"))
                out.append(m)
        return out


def macro_terms(hit: torch.Tensor, group: torch.Tensor, C: int) -> torch.Tensor:
    """Per-sample terms whose mean is the macro average over classes of the per-class hit rate, grouping
    samples by ``group`` (true class: macro recall; predicted class: macro precision): sample i adds
    N * hit_i / (C * n_group(i)). Their t-interval is the macro figure's interval given the class counts
    (a linearisation; torchmetrics gives the reported value)."""
    counts = torch.bincount(group, minlength=C).double()
    return len(hit) * hit.double() / (C * counts[group])
