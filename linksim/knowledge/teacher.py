"""``clip_teacher``: the server-side model of paper 003 (CLIP) through open_clip.

``model`` names an open_clip architecture and ``pretrained`` an open_clip pretrained tag or a local
checkpoint file (e.g. ``ViT-B-32`` + ``openai`` or ``/path/ViT-B-32.pt``: the paper's setting). With no
``pretrained`` the teacher is pre-trained on the server's public split here: image-caption pairs
"a photo of a {label}" with open_clip's CLIP loss (symmetric InfoNCE over the batch, learned logit scale),
Adam, at most ``epochs`` epochs / ``max_seconds``. Two small open_clip configs sized for Fashion-MNIST on a CPU
are registered at import (text transformer: 2 layers of width 64; 128-dim joint space):
- ``linksim-tiny-clip`` (the default): ViT, 28x28 input, 7x7 patches, 2 layers of width 64;
- ``linksim-rn-clip``: open_clip's ModifiedResNet (CLIP's RN50 design: 3-conv stem, anti-aliased bottlenecks,
  attention pooling) with one block per stage, width 32, 32x32 input (28x28 images are resized).

Outputs per sample: the L2-normalised image embedding and the text embedding of the sample's class prompt
(the image SKB and the text SKB are built from these by ``knowledge_base``).
"""
from __future__ import annotations

import json
import logging
import sys
import tempfile
from pathlib import Path

import pydantic
import torch
import torch.nn.functional as Fn

from ..block import Block, Params, Port, Spec
from ..errors import PortError, UserError
from ..training import block_where, fit, isolated_rng, record

TINY = "linksim-tiny-clip"
_TEXT = {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}
CONFIGS = {
    TINY: {"embed_dim": 128, "text_cfg": _TEXT,
           "vision_cfg": {"image_size": 28, "layers": 2, "width": 64, "patch_size": 7, "head_width": 32}},
    "linksim-rn-clip": {"embed_dim": 128, "text_cfg": _TEXT,
                        "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 32, "head_width": 32}},
}
_registered = False


def register_configs() -> None:
    """Make the linksim configs known to open_clip (its model-config mechanism reads JSON files)."""
    global _registered
    if _registered:
        return
    import open_clip

    # open_clip reads the files into its registry at once (later rescans skip a folder that is gone), so the
    # folder is removed again: one was left in /tmp by every process that used a teacher
    with tempfile.TemporaryDirectory(prefix="linksim-openclip-") as tmp:
        folder = Path(tmp)
        for name, cfg in CONFIGS.items():
            (folder / f"{name}.json").write_text(json.dumps(cfg))
        open_clip.add_model_config(folder)
    _registered = True


def prompts(class_names) -> list[str]:
    return [f"a photo of a {n.lower()}" for n in class_names]


class CLIPTeacher(Block):
    """Server model: images -> CLIP image embeddings (and class-prompt text embeddings); pre-trained or fitted."""

    type_name = "clip_teacher"
    role = "transmitter"
    trainable = True
    memoize_eval = True
    inputs = {"image": Port(("image",), "public images"),
              "label": Port(("label",), "class of each image (captions 'a photo of a {label}')")}
    outputs = {"image_embedding": "L2-normalised CLIP image embedding",
               "text_embedding": "L2-normalised CLIP text embedding of the sample's class prompt"}

    class Params(Params):
        model: str = pydantic.Field(TINY, description="open_clip architecture (e.g. ViT-B-32)")
        pretrained: str | None = pydantic.Field(
            None, description="open_clip pretrained tag or local checkpoint path; null = pre-train here")
        epochs: pydantic.PositiveInt = pydantic.Field(5, description="pre-training epoch cap (no pretrained)")
        max_seconds: float | None = pydantic.Field(None, gt=0, description="pre-training wall-time cap")
        batch_size: pydantic.PositiveInt = 256
        lr: float = pydantic.Field(1e-3, gt=0, description="Adam learning rate of the pre-training")
        seed: int = 0

    def __init__(self, name, params, ctx):
        super().__init__(name, params, ctx)
        p = params.pretrained
        if p is not None and ("/" in p or p.endswith((".pt", ".pth", ".bin", ".safetensors"))) and not Path(p).is_file():
            raise UserError(f"pretrained: checkpoint file not found: {p}")
        self.model = None
        self.summary: dict = {}

    def setup(self, specs):
        img = specs["image"]
        if len(img.shape) != 3 or img.shape[0] not in (1, 3):
            raise PortError(f"expects grey or RGB images (C, H, W), got {img}")
        self.class_names = specs["label"].meta.get("class_names")
        if not self.class_names:
            raise PortError("the label port carries no class names (needed for the captions)")
        register_configs()
        import open_clip

        if self.p.model not in open_clip.list_models():
            known = ", ".join(CONFIGS)
            raise ValueError(f"unknown open_clip model '{self.p.model}' (e.g. {known}, ViT-B-32, RN50)")
        self.dim = int(open_clip.get_model_config(self.p.model)["embed_dim"])
        return {"image_embedding": Spec("real", (self.dim,), {"teacher": self.p.model}),
                "text_embedding": Spec("real", (self.dim,), {"teacher": self.p.model})}

    def cache_salt(self):
        # a local checkpoint is part of the configuration: its size and mtime change the cache key
        p = self.p.pretrained
        if p and Path(p).is_file():
            st = Path(p).stat()
            return [p, st.st_size, st.st_mtime_ns]
        return None

    # -- model ------------------------------------------------------------------------------------
    def _build(self) -> None:
        import open_clip

        with isolated_rng(self.p.seed):
            quiet = logging.getLogger().level
            if not self.p.pretrained:  # open_clip warns that a randomly initialised model has no weights
                logging.getLogger().setLevel(logging.ERROR)
            try:
                model = open_clip.create_model(self.p.model, pretrained=self.p.pretrained)
            except Exception as e:  # noqa: BLE001 -- a tag that needs a download (offline), a broken checkpoint
                raise UserError(f"cannot load open_clip weights '{self.p.pretrained}' for {self.p.model}: "
                                f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
                                f"(offline: give a local checkpoint path)",
                                f"{self.ctx.where}: {self.name}.params.pretrained") from None
            finally:
                logging.getLogger().setLevel(quiet)
        self.model = model.to(self.ctx.device)
        self.tokenizer = open_clip.get_tokenizer(self.p.model)
        vis = self.model.visual
        size = getattr(vis, "image_size", 224)
        self.image_size = tuple(size) if isinstance(size, (tuple, list)) else (int(size), int(size))
        self.mean = torch.tensor(getattr(vis, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(getattr(vis, "image_std", None) or open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)

    def _prep(self, image: torch.Tensor) -> torch.Tensor:
        x = image.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if tuple(x.shape[-2:]) != self.image_size:
            x = Fn.interpolate(x, size=self.image_size, mode="bilinear", align_corners=False)
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def _text(self) -> torch.Tensor:
        tokens = self.tokenizer(prompts(self.class_names)).to(self.ctx.device)
        return self.model.encode_text(tokens, normalize=True)

    def describe(self) -> str:
        if self.p.pretrained:
            return f"open_clip {self.p.model} pretrained={self.p.pretrained}"
        return f"open_clip {self.p.model} pre-trained here on the public split (CLIP loss)"

    def _record(self, ctx) -> None:
        ctx.record(self.name, self.summary)
        self._announce(ctx)

    def _announce(self, ctx) -> None:
        said = ctx.shared.setdefault("teachers_announced", set())
        if self.summary["teacher"] not in said:  # once per run, also when the console is not a terminal
            said.add(self.summary["teacher"])
            print(f"[linksim] {self.name}: teacher = {self.summary['teacher']}", file=sys.stderr, flush=True)

    # -- training ---------------------------------------------------------------------------------
    def fit(self, data, ctx):
        self._build()
        if self.p.pretrained:
            self.summary = {"teacher": self.describe(), "epochs": 0}
            self.model.eval()
            self._record(ctx)
            return
        import open_clip

        d = data.materialize()
        x, y = d["image"], d["label"].long()
        n = len(y)
        loss_fn = open_clip.ClipLoss()
        opt = torch.optim.Adam(self.model.parameters(), lr=self.p.lr)

        def step(idx, gen):
            img = self.model.encode_image(self._prep(x[idx].to(ctx.device)), normalize=True)
            txt = self._text()[y[idx].to(ctx.device)]
            return loss_fn(img, txt, self.model.logit_scale.exp())

        def clamp_scale():
            with torch.no_grad():
                self.model.logit_scale.clamp_(0, 4.6052)  # CLIP: logit scale at most 100

        res = fit(step, n, optimizer=opt, after_step=clamp_scale, epochs=self.p.epochs, batch_size=self.p.batch_size,
                  seed=self.p.seed, max_seconds=self.p.max_seconds, drop_last=True, modules=[self.model],
                  where=block_where(ctx, self.name), name=f"pre-train teacher {self.name}", progress=ctx.progress)
        self.summary = {"teacher": self.describe(), **record(None, self.name, res)}
        self._record(ctx)

    def state(self):
        if self.p.pretrained:  # the checkpoint is on disk already: do not copy it into the cache
            return {"summary": self.summary}
        return {"model": self.model.state_dict(), "summary": self.summary}

    def load_state(self, state):
        self._build()
        if "model" in state:
            self.model.load_state_dict(state["model"])
        self.model.eval()
        self.summary = state.get("summary", {})
        self.summary["teacher"] = self.describe()
        self._announce(self.ctx)  # the engine records the summary of a cached block

    @torch.no_grad()
    def forward(self, image, label):
        self.model.eval()
        img = self.model.encode_image(self._prep(image), normalize=True)
        txt = self._text()[label.long()]
        return {"image_embedding": img.float(), "text_embedding": txt.float()}
