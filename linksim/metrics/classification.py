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

    def reset(self):
        self.y, self.yh = [], []

    def update(self, label, pred):
        self.y.append(label.reshape(-1).cpu())
        self.yh.append((pred.argmax(-1) if pred.is_floating_point() else pred).reshape(-1).cpu())

    def compute(self):
        from torchmetrics.functional.classification import multiclass_precision, multiclass_recall

        y, yh = torch.cat(self.y), torch.cat(self.yh).clamp(0, self.C - 1)
        labels = {"scheme": self.p.name} if self.p.name else {}
        out = [Metric("accuracy", float((y == yh).float().mean()), len(y), labels)]
        if self.p.macro:
            out.append(Metric("recall_macro", float(multiclass_recall(yh, y, self.C, average="macro")), len(y), labels))
            out.append(Metric("precision_macro", float(multiclass_precision(yh, y, self.C, average="macro")),
                              len(y), labels))
        return out
