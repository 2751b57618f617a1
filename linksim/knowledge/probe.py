"""Linear evaluation (paper 003, Sec. 4): a 3-layer MLP probe on a frozen encoder; top-1 / top-5 accuracy."""
from __future__ import annotations

import pydantic
import torch
import torch.nn.functional as Fn
from torch import nn

from ..block import Block, Metric, Params, Port, Spec
from ..errors import PortError
from ..training import block_where, fit, isolated_rng, record


class LinearProbe(Block):
    """3-layer MLP (Linear-ReLU-Linear-ReLU-Linear) on frozen, standardised features -> class scores."""

    type_name = "linear_probe"
    role = "receiver"
    trainable = True
    inputs = {"features": Port(("real",), "frozen representation"),
              "label": Port(("label",), "used for training only")}
    outputs = {"logits": "class scores"}

    class Params(Params):
        hidden: pydantic.PositiveInt = pydantic.Field(512, description="width of the two hidden layers")
        epochs: pydantic.PositiveInt = pydantic.Field(50, description="epoch cap")
        patience: pydantic.PositiveInt = pydantic.Field(5, description="stop after this many epochs without improvement")
        batch_size: pydantic.PositiveInt = 256
        lr: float = pydantic.Field(1e-3, gt=0, description="Adam learning rate")
        weight_decay: float = pydantic.Field(1e-4, ge=0)
        max_seconds: float | None = pydantic.Field(None, gt=0, description="wall-time cap for training")
        seed: int = 0

    def setup(self, specs):
        f = specs["features"]
        if len(f.shape) != 1:
            raise PortError(f"expects feature vectors, got {f}")
        self.C = specs["label"].meta.get("num_classes")
        if not self.C:
            raise PortError("number of classes unknown")
        self.d = f.shape[0]
        return {"logits": Spec("real", (self.C,))}

    def _build(self):
        with isolated_rng(self.p.seed):
            h = self.p.hidden
            self.net = nn.Sequential(nn.Linear(self.d, h), nn.ReLU(inplace=True), nn.Linear(h, h),
                                     nn.ReLU(inplace=True), nn.Linear(h, self.C)).to(self.ctx.device)
        self.register = {"mean": torch.zeros(self.d, device=self.ctx.device),
                         "std": torch.ones(self.d, device=self.ctx.device)}

    def fit(self, data, ctx):
        self._build()
        d = data.materialize()
        x, y = d["features"].float().to(ctx.device), d["label"].long().to(ctx.device)
        self.register = {"mean": x.mean(0), "std": x.std(0, unbiased=False).clamp_min(1e-6)}
        x = (x - self.register["mean"]) / self.register["std"]
        opt = torch.optim.Adam(self.net.parameters(), lr=self.p.lr, weight_decay=self.p.weight_decay)

        def step(idx, gen):
            idx = idx.to(ctx.device)
            return Fn.cross_entropy(self.net(x[idx]), y[idx])

        res = fit(step, len(y), optimizer=opt, epochs=self.p.epochs, batch_size=self.p.batch_size, seed=self.p.seed,
                  patience=self.p.patience, min_delta=1e-4, max_seconds=self.p.max_seconds, drop_last=False,
                  weighted=True, modules=[self.net], where=block_where(ctx, self.name), name=self.name,
                  progress=ctx.progress)
        self.summary = record(ctx, self.name, res, samples=len(y))

    def state(self):
        return {"net": self.net.state_dict(), **{k: v.cpu() for k, v in self.register.items()},
                "summary": getattr(self, "summary", {})}

    def load_state(self, state):
        self._build()
        self.net.load_state_dict(state["net"])
        self.register = {k: state[k].to(self.ctx.device) for k in ("mean", "std")}
        self.net.eval()
        self.summary = state.get("summary", {})

    def forward(self, features, label=None):
        return {"logits": self.net((features.float() - self.register["mean"]) / self.register["std"])}


class TopKAccuracy(Block):
    """Top-k accuracy of class scores for each k in ``k`` (metrics ``top1_accuracy``, ``top5_accuracy``, ...)."""

    type_name = "topk_accuracy"
    role = "metric"
    is_sink = True
    inputs = {"label": Port(("label",), "true class"), "pred": Port(("real",), "class scores")}

    class Params(Params):
        k: list[pydantic.PositiveInt] = pydantic.Field([1, 5], description="the k values")
        name: str | None = pydantic.Field(None, description="'scheme' label of the rows")

    def setup(self, specs):
        c = specs["pred"].shape[0]
        if max(self.p.k) > c:
            raise ValueError(f"k: {max(self.p.k)} exceeds the {c} classes")
        return {}

    def reset(self):
        self.hits = {k: 0 for k in self.p.k}
        self.n = 0

    def update(self, label, pred):
        top = pred.topk(max(self.p.k), dim=-1).indices
        hit = top == label.reshape(-1, 1)
        for k in self.p.k:
            self.hits[k] += int(hit[:, :k].any(dim=1).sum())
        self.n += len(label)

    def compute(self):
        labels = {"scheme": self.p.name} if self.p.name else {}
        return [Metric.rate(f"top{k}_accuracy", self.n - self.hits[k], self.n, labels, success=True,
                            value=self.hits[k] / max(self.n, 1)) for k in self.p.k]

    def error_counts(self):
        return {f"top{k}_accuracy": self.n - self.hits[k] for k in self.p.k}
