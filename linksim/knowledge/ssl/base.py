"""Shared base of the self-supervised local encoders (KB-guided, SimCLR, NNCLR): one training loop.

Model: backbone (``small_cnn`` for 28x28, ``resnet18`` for 32x32+, random init, from
:mod:`linksim.semantic.models`) + global average pooling -> representation h (``nf`` dims; the probe and the
VQ-VAE use it) + projector MLP ``Linear(nf, hidden) - BN - ReLU - Linear(hidden, dim)`` -> embedding z (the
space of the contrastive loss and of the knowledge bases). Every method trains the same model on two
augmented views of each private image (random resized crop, horizontal flip, colour jitter, Gaussian blur,
random greyscale for RGB) with Adam + cosine annealing over ``epochs`` x batches in the one training loop
(:func:`linksim.training.fit`); a method supplies only its loss (and extra heads). Same seed -> same init, same batches,
same augmentations for every method.
"""
from __future__ import annotations

from typing import Callable, ClassVar, Literal

import pydantic
import torch
import torch.nn.functional as Fn
from torch import nn

from ...block import Block, ModelState, Params, Port, Spec
from ...errors import PortError
from ...semantic.training import augment
from ...losses import dcl_loss, nt_xent  # noqa: F401  (still importable from here)
from ...training import block_where, fit, isolated_rng, record


def two_views(x: torch.Tensor, gen: torch.Generator, blur_p: float = 0.5, gray_p: float = 0.2) -> tuple:
    """Two independently augmented views of ``x [B, C, H, W]`` in [0, 1]."""
    return augmented_view(x, gen, blur_p, gray_p), augmented_view(x, gen, blur_p, gray_p)


def augmented_view(x: torch.Tensor, gen: torch.Generator, blur_p: float = 0.5, gray_p: float = 0.2) -> torch.Tensor:
    """One augmented view of ``x [B, C, H, W]`` in [0, 1] (see :func:`two_views`)."""
    v = augment(x, gen, scale=(0.3, 1.0), brightness=0.4, contrast=0.4)
    b = v.shape[0]
    if v.shape[1] == 3:  # saturation-free colour jitter is above; greyscale only means something for RGB
        g = (torch.rand(b, generator=gen) < gray_p).to(v.device).view(b, 1, 1, 1)
        grey = (0.299 * v[:, :1] + 0.587 * v[:, 1:2] + 0.114 * v[:, 2:3]).expand_as(v)
        v = torch.where(g, grey, v)
    sigma = 0.1 + 0.9 * float(torch.rand(1, generator=gen))
    k = torch.arange(-1, 2, dtype=v.dtype)
    w = torch.exp(-k ** 2 / (2 * sigma ** 2))
    w = (w / w.sum()).to(v.device)
    c = v.shape[1]
    blurred = Fn.conv2d(Fn.pad(v, (1, 1, 1, 1), mode="replicate"), (w[:, None] * w[None, :]).expand(c, 1, 3, 3),
                        groups=c)
    m = (torch.rand(b, generator=gen) < blur_p).to(v.device).view(b, 1, 1, 1)
    return torch.where(m, blurred, v)


class LocalEncoder(nn.Module):
    """Backbone -> h (pooled, nf) -> projector -> z (dim)."""

    def __init__(self, backbone: str, in_ch: int, nf: int, hidden: int, dim: int):
        super().__init__()
        from ...semantic.models import SemanticEncoder

        self.net = SemanticEncoder(backbone, in_ch, nf, mask=False)
        self.projector = nn.Sequential(nn.Linear(nf, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                       nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net(x)["F"]
        return h, self.projector(h)




class SSLEncoderBlock(ModelState, Block):
    """Base block of the self-supervised local encoders; subclasses set ``pair_loss`` or implement ``loss``
    (and ``heads``)."""

    role = "transmitter"
    trainable = True
    memoize_eval = True
    method = ""
    inputs = {"image": Port(("image",), "images to encode"),
              "train_image": Port(("image",), "images the encoder learns from (default: 'image')", optional=True)}
    outputs = {"features": "representation h (pooled backbone output; probe / VQ-VAE input)",
               "embedding": "L2-normalised projector output z (the knowledge-base space)"}

    class Params(Params):
        backbone: Literal["small_cnn", "resnet18"] = pydantic.Field(
            "small_cnn", description="small_cnn for 28x28, resnet18 for 32x32+ (random init)")
        nf: pydantic.PositiveInt = pydantic.Field(256, description="representation dimension")
        hidden: pydantic.PositiveInt = pydantic.Field(512, description="projector hidden width")
        dim: pydantic.PositiveInt | None = pydantic.Field(
            None, description="embedding dimension (default: the knowledge base's, else 128)")
        epochs: pydantic.PositiveInt = pydantic.Field(20, description="epoch cap")
        max_seconds: float | None = pydantic.Field(None, gt=0, description="wall-time cap for training")
        batch_size: pydantic.PositiveInt = 256
        lr: float = pydantic.Field(0.005, gt=0, description="Adam learning rate (cosine annealed to 0)")
        weight_decay: float = pydantic.Field(1e-6, ge=0)
        temperature: float = pydantic.Field(0.1, gt=0, description="contrastive temperature")
        seed: int = pydantic.Field(0, description="initialisation / batches / augmentation seed")

    def __init__(self, name, params, ctx):
        super().__init__(name, params, ctx)
        self.model = None
        self.summary: dict = {}

    def setup(self, specs):
        img = specs["image"]
        tr = specs.get("train_image", img)
        if tr.shape[0] != img.shape[0]:
            raise PortError(f"image {img} and train_image {tr} differ in channels")
        if self.p.backbone == "small_cnn" and min(img.shape[1:]) < 8:
            raise PortError(f"small_cnn needs images of at least 8x8, got {img}")
        self.in_ch = img.shape[0]
        self.dim = self.p.dim or self.default_dim(specs)
        return {"features": Spec("real", (self.p.nf,), {"nonnegative": True}),
                "embedding": Spec("real", (self.dim,), {"encoder": self.name})}

    def default_dim(self, specs) -> int:
        return 128

    def heads(self) -> dict[str, nn.Module]:
        """Extra trainable modules of the method (e.g. NNCLR's predictor); dropped after training."""
        return {}

    # loss(z1, z2, temperature) between the projections of the two views, for methods that need nothing more
    pair_loss: ClassVar[Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor] | None] = None

    def loss(self, v1: torch.Tensor, v2: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """The training loss of one batch of view pairs: ``pair_loss`` of the two projections by default."""
        if self.pair_loss is None:
            raise NotImplementedError(f"{type(self).__name__} sets neither pair_loss nor loss")
        _, z1 = self.model(v1)
        _, z2 = self.model(v2)
        return self.pair_loss(z1, z2, self.p.temperature)

    def prepare(self, data) -> None:
        """Hook before training (e.g. fetch the knowledge base)."""

    def _build(self):
        with isolated_rng(self.p.seed):
            self.model = LocalEncoder(self.p.backbone, self.in_ch, self.p.nf, self.p.hidden, self.dim).to(self.ctx.device)

    def fit(self, data, ctx):
        self._build()
        self.prepare(data)
        port = "train_image" if "train_image" in self.in_specs else "image"
        x = self._images(data, port)
        n = len(x)
        bs = min(self.p.batch_size, n)
        steps = n // bs
        self.extra = nn.ModuleDict(self.heads()).to(ctx.device)
        params = list(self.model.parameters()) + list(self.extra.parameters())
        opt = torch.optim.Adam(params, lr=self.p.lr, weight_decay=self.p.weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(self.p.epochs * steps, 1))

        def step(idx, gen):
            v1, v2 = two_views(x[idx].to(ctx.device), gen)
            return self.loss(v1, v2, gen)

        res = fit(step, n, optimizer=opt, scheduler=sched, epochs=self.p.epochs, batch_size=self.p.batch_size,
                  seed=self.p.seed, max_seconds=self.p.max_seconds, drop_last=True, modules=[self.model, self.extra],
                  where=block_where(ctx, self.name), name=f"{self.name} ({self.method})", progress=ctx.progress)
        self.summary = record(ctx, self.name, res, method=self.method, samples=n)
        ctx.log(f"{self.name}: {self.summary}")

    @staticmethod
    def _images(data, port: str) -> torch.Tensor:
        parts = [b[port].cpu() for b in data.epoch(0, shuffle=False)]
        return torch.cat(parts)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, z = self.model(x)
        return h, Fn.normalize(z, dim=1)

    def forward(self, image, train_image=None, **_):
        self.model.eval()
        h, z = self.encode(image)
        return {"features": h, "embedding": z}
