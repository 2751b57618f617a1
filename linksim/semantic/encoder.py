"""Semantic encoder block: backbone (+ mask-net) trained with CE or SupCon (+ FS/MS/WS sparsity).

Paper 000 (DNRL): X = F * mask, loss = basic + lambda * sparsity (Eq. 12); CE trains encoder + linear head
jointly (Alg. 1), CL trains the encoder with SupCon on two augmented views and drops the projection head
(Alg. 2, first stage); the classifier is a separate receiver block trained on the frozen encoder.
"""
from __future__ import annotations

from typing import Literal

import pydantic

from ..block import Block, ModelState, Params, Port, Spec
from ..errors import PortError


class SemanticEncoderBlock(ModelState, Block):
    """Learned semantic encoder: image -> non-negative Nf-dim representation X (trained, cached)."""

    type_name = "semantic_encoder"
    role = "transmitter"
    trainable = True
    memoize_eval = True
    inputs = {"image": Port(("image",)), "label": Port(("label",), "used for training only", optional=True),
              "train_image": Port(("image",), "if connected, training uses these (e.g. clean) images instead of "
                                  "'image', so noise on 'image' does not retrain the encoder", optional=True)}
    outputs = {"features": "representation X = F * mask (non-negative)"}

    class Params(Params):
        backbone: Literal["small_cnn", "resnet18", "resnet50"] = pydantic.Field(
            "small_cnn", description="small_cnn for 28x28; resnet18/50 (random init) for 32x32+")
        nf: pydantic.PositiveInt = pydantic.Field(512, description="feature dimension Nf")
        method: Literal["ce", "cl"] = pydantic.Field("cl", description="cross-entropy or supervised contrastive")
        sparsity: Literal["none", "fs", "ms", "ws"] = pydantic.Field(
            "ms", description="feature L1 (fs), mask L1 (ms), weighted |mask*F| (ws)")
        lam: float = pydantic.Field(1e-4, ge=0.0, description="sparsity weight lambda")
        epochs: pydantic.PositiveInt = pydantic.Field(30, description="epoch cap")
        patience: pydantic.PositiveInt = pydantic.Field(5, description="stop after this many epochs without improvement")
        batch_size: pydantic.PositiveInt = 256
        lr: float | None = pydantic.Field(None, gt=0, description="learning rate (default per optimiser)")
        optimizer: Literal["adam", "sgd"] = "adam"
        temperature: float = pydantic.Field(0.07, gt=0, description="SupCon temperature")
        seed: int = pydantic.Field(0, description="initialisation/shuffling seed (two seeds -> consistency)")
        max_seconds: float | None = pydantic.Field(None, gt=0, description="wall-time cap for training")

    def __init__(self, name, params, ctx):
        super().__init__(name, params, ctx)
        self.model = None

    def setup(self, specs):
        img = specs["image"]
        if self.p.backbone == "small_cnn" and min(img.shape[1:]) < 8:
            raise PortError(f"small_cnn needs images of at least 8x8, got {img}")
        if "label" not in specs:
            raise PortError("connect 'label' (needed to train the encoder)")
        if "train_image" in specs and specs["train_image"].shape != img.shape:
            raise PortError(f"train_image {specs['train_image']} and image {img} differ in shape")
        self.clean_port = "train_image" in specs
        self.num_classes = specs["label"].meta.get("num_classes")
        self.in_ch = img.shape[0]
        return {"features": Spec("real", (self.p.nf,), {"nonnegative": True})}

    def _build(self):
        from .models import SemanticEncoder

        from ..training import isolated_rng

        with isolated_rng(self.p.seed):
            self.model = SemanticEncoder(self.p.backbone, self.in_ch, self.p.nf,
                                         mask=self.p.sparsity in ("ms", "ws")).to(self.ctx.device)

    def fit(self, data, ctx):
        from ..training import block_where, record
        from .training import train_encoder

        self._build()
        d = data.materialize()
        images = d["train_image"] if self.clean_port else d["image"]
        summary = train_encoder(self.model, images, d["label"], method=self.p.method, sparsity=self.p.sparsity,
                                lam=self.p.lam, epochs_max=self.p.epochs, patience=self.p.patience,
                                batch_size=self.p.batch_size, lr=self.p.lr, temperature=self.p.temperature,
                                seed=self.p.seed, optimizer=self.p.optimizer, num_classes=self.num_classes,
                                device=ctx.device, max_seconds=self.p.max_seconds, where=block_where(ctx, self.name),
                                name=f"{self.name} ({self.p.method}-{self.p.sparsity})", show_progress=ctx.progress)
        self.summary = record(ctx, self.name, summary)
        ctx.log(f"{self.name}: {self.summary}")

    def training_ports(self):
        return {"train_image", "label"} if self.clean_port else None

    def forward(self, image, label=None, train_image=None):
        self.model.eval()
        return {"features": self.model.features(image)}
