"""Classifier block: a linear (or one-hidden-layer) classifier trained on frozen upstream features."""
from __future__ import annotations

import pydantic

from ..block import Block, Params, Port, Spec
from ..errors import PortError


class ClassifierBlock(Block):
    """Classifier on features (Adam + cross-entropy, early stopping); trained on whatever feeds it."""

    type_name = "classifier"
    role = "receiver"
    trainable = True
    inputs = {"features": Port(("real",)), "label": Port(("label",), "used for training", optional=True),
              "train_features": Port(("real",), "if connected, training reads these instead of 'features' (e.g. "
                                     "features of clean images where 'features' come from a decoded image)",
                                     optional=True)}
    outputs = {"logits": "class scores", "pred": "predicted class"}

    class Params(Params):
        hidden: int = pydantic.Field(0, ge=0, description="hidden units (0 = linear classifier)")
        epochs: pydantic.PositiveInt = pydantic.Field(60, description="epoch cap")
        patience: pydantic.PositiveInt = 5
        lr: float = pydantic.Field(1e-3, gt=0)
        batch_size: pydantic.PositiveInt = 256
        standardize: bool = pydantic.Field(True, description="standardise features with training statistics")
        seed: int = 0
        train_samples: pydantic.PositiveInt | None = pydantic.Field(None, description="fit on the first N training samples")

    def setup(self, specs):
        if "label" not in specs:
            raise PortError("connect 'label' (needed to train the classifier)")
        self.C = specs["label"].meta.get("num_classes")
        if not self.C:
            raise PortError("label port carries no num_classes")
        self.d = specs["features"].size
        self.clean_port = "train_features" in specs
        if self.clean_port and specs["train_features"].size != self.d:
            raise PortError(f"train_features {specs['train_features']} and features {specs['features']} differ in size")
        meta = {"num_classes": self.C, "class_names": specs["label"].meta.get("class_names")}
        return {"logits": Spec("real", (self.C,), meta), "pred": Spec("label", (), meta)}

    def cache_salt(self):
        return "std-floor-v2"  # standardisation changed: do not reuse classifiers cached before it

    def fit(self, data, ctx):
        from ..semantic.training import train_classifier
        from ..training import block_where, record

        d = data.materialize(self.p.train_samples)
        x = d["train_features" if self.clean_port else "features"].reshape(len(d["label"]), -1)
        res: dict = {}
        self.model = train_classifier(x, d["label"], self.C, hidden=self.p.hidden, epochs=self.p.epochs,
                                      batch_size=self.p.batch_size, lr=self.p.lr, seed=self.p.seed,
                                      patience=self.p.patience, standardize=self.p.standardize,
                                      where=block_where(ctx, self.name), name=self.name,
                                      show_progress=ctx.progress, summary=res)
        self.summary = record(ctx, self.name, res, samples=len(x))

    def state(self):
        return {"model": self.model.state_dict(), "summary": self.summary}

    def load_state(self, state):
        from ..semantic.training import make_classifier

        self.model = make_classifier(self.d, self.C, self.p.hidden, self.p.standardize).to(self.ctx.device)
        self.model.load_state_dict(state["model"])
        self.model.eval()
        self.summary = state.get("summary", {})

    def training_ports(self):
        return {"train_features", "label"} if self.clean_port else None

    def forward(self, features, label=None, train_features=None):
        logits = self.model(features.reshape(features.shape[0], -1).float())
        return {"logits": logits, "pred": logits.argmax(-1)}
