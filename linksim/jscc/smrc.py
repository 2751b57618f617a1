"""Semantic multi-resolution JSCC (SMRC, paper 001): L encoder heads, decoder l sees sub-blocks 1..l.

Successive refinement (``nested``, default): decoder l's class scores are decoder l-1's scores, lifted into
layer l's class space and held fixed (no gradient), plus a correction computed from sub-blocks 1..l (zero at
initialisation), so a layer starts from the previous layer's decision and learns what its extra symbols add; the ``smrc_decoder`` of
layer l therefore holds the decoders of layers 1..l. With pooling, the lift exists when every class of layer
l lies inside one class of layer l-1 (growing important sets); otherwise that layer's head is independent.

``smrc_encoder`` emits all L sub-blocks concatenated as one complex vector (sub-block l has n_l symbols and
mean |s|^2 = 1 on its own, so the whole vector has unit average energy per symbol; total channel uses
sum n_l). It trains all heads and the L companion decoders jointly through its training channel with

    loss = sum_l  alpha_l * MSE(x, x_hat_l) + mean_i beta_l[y_i] * CE(scores_l(i), y_i)

(the cross-entropy of each sample weighted by the weight of its true class in layer l's class space).
``beta_l`` is a uniform weight, a per-class weight list, or a class pooling
``{important_classes: [...], weight, other_weight}``: the other classes are merged into one dummy class
("other", last index), so layer l classifies among |important| + 1 classes.

``smrc_decoder`` (one instance per layer, ``layer: l``) uses the first n_1 + ... + n_l received symbols and
outputs ``image``, ``logits`` and ``label``, the true label mapped into the layer's class space (identity
without pooling). Wire ``accuracy(label=dec.label, pred=dec.logits, macro: true)``: with pooling, recall and
precision are then macro averages over the important classes and the dummy class, the space the layer was
trained to decide in (a dummy prediction cannot be scored against the original ten classes without counting
it wrong for every pooled class). Pooling trades recall of the pooled classes (they only need to be told
apart from the important ones) for higher precision on the important classes.
"""
from __future__ import annotations

import pydantic
import torch

from ..block import LABEL, Params, Port, Spec, labelled
from ..errors import PortError
from .deep_jscc import (
    FINETUNE,
    JSCCEncoderBase,
    PairedDecoder,
    TrainParams,
    symbols_for_ratio,
)
from .training import LayerLoss


class ClassPool(Params):
    """Class pooling for one layer: the listed classes keep their own output, the others share one."""

    important_classes: list[int] = pydantic.Field(min_length=1, description="class indices kept apart")
    weight: float = pydantic.Field(1.0, ge=0, description="cross-entropy weight of each important class")
    other_weight: float = pydantic.Field(1.0, ge=0, description="cross-entropy weight of the dummy class")


def split_symbols(total: int, weights: list[float]) -> list[int]:
    """``total`` symbols split in proportion to ``weights`` (largest remainder; ties go to earlier layers)."""
    s = float(sum(weights))
    raw = [total * w / s for w in weights]
    out = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - out[i]), i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


class SMRCEncoderBlock(JSCCEncoderBase):
    """Multi-resolution JSCC transmitter: image -> L power-normalised sub-blocks (trained with its L decoders)."""

    type_name = "smrc_encoder"
    uses_labels = True
    inputs = {"image": Port(("image",), "source image"),
              "label": Port(("label",), "true class (training only)")}
    outputs = {"symbols": "sub-blocks 1..L concatenated (complex, unit average energy per symbol)"}

    class Params(TrainParams):
        layers: pydantic.PositiveInt | None = pydantic.Field(
            None, description="number of layers L (default: length of symbols / split)")
        symbols: list[pydantic.PositiveInt] | None = pydantic.Field(None, description="n_l per layer")
        bandwidth_ratio: float | None = pydantic.Field(
            None, gt=0, description="total channel uses / source dims (instead of symbols), split by 'split'")
        split: list[float] | None = pydantic.Field(
            None, description="relative share of the total per layer (default equal)")
        alpha: float | list[float] = pydantic.Field(
            1.0, description="MSE weight per layer (one value for all layers, or a list of L)")
        beta: float | list[float | list[float] | ClassPool] = pydantic.Field(
            0.01, description="cross-entropy weights per layer: a value (all classes, all layers) or a list of L "
                              "entries, each a value, a per-class list or {important_classes, weight, other_weight}")
        nested: bool = pydantic.Field(
            True, description="successive refinement: layer l's class scores = layer l-1's (lifted to layer "
                              "l's classes, no gradient) + a correction from decoder l, its last layer "
                              "zero-initialised; false = independent class heads")

        @pydantic.model_validator(mode="after")
        def _layers(self):
            if (self.symbols is None) == (self.bandwidth_ratio is None):
                raise ValueError("set exactly one of symbols and bandwidth_ratio")
            if self.symbols is not None:
                if self.split is not None:
                    raise ValueError("split applies to bandwidth_ratio only; drop it or use bandwidth_ratio")
                L = len(self.symbols)
                if L == 0:
                    raise ValueError("symbols must list at least one layer")
            else:
                L = len(self.split) if self.split is not None else self.layers
                if L is None:
                    raise ValueError("with bandwidth_ratio, set layers (equal split) or split")
                if self.split is not None and any(w <= 0 for w in self.split):
                    raise ValueError(f"split entries must be > 0, got {self.split}")
            if self.layers is not None and self.layers != L:
                raise ValueError(f"layers ({self.layers}) does not match the {L} entries of symbols/split")
            self.layers = L
            for key in ("alpha", "beta"):
                v = getattr(self, key)
                if isinstance(v, list) and len(v) != L:
                    raise ValueError(f"{key} needs one entry per layer ({L}), got {len(v)}")
            alphas = self.alpha if isinstance(self.alpha, list) else [self.alpha]
            if any(a < 0 for a in alphas):
                raise ValueError(f"alpha must be >= 0, got {self.alpha}")
            return self

    def setup(self, specs):
        self._image_spec(specs)
        lab = specs["label"]
        C = lab.meta.get("num_classes")
        if not C:
            raise PortError(f"'label' must carry num_classes (connect a dataset label), got {lab}")
        L = self.p.layers
        if self.p.symbols is not None:
            self.sizes = list(self.p.symbols)
        else:
            total = symbols_for_ratio(self.p.bandwidth_ratio, self.source_dims)
            self.sizes = split_symbols(total, self.p.split or [1.0] * L)
            if min(self.sizes) < 1:
                raise ValueError(f"bandwidth_ratio {self.p.bandwidth_ratio} ({total} symbols for "
                                 f"{self.source_dims} source dims) leaves a layer without symbols: {self.sizes}")
        self.prefix = [sum(self.sizes[:l + 1]) for l in range(L)]
        self.num_classes = C
        names = list(lab.meta.get("class_names") or [str(c) for c in range(C)])
        alphas = self.p.alpha if isinstance(self.p.alpha, list) else [self.p.alpha] * L
        betas = self.p.beta if isinstance(self.p.beta, list) else [self.p.beta] * L
        self.classes, self.losses, self.label_specs = [], [], []
        for l, (a, b) in enumerate(zip(alphas, betas)):
            label_map, cls_names = None, names
            if isinstance(b, ClassPool):
                imp = b.important_classes
                bad = [c for c in imp if not 0 <= c < C]
                if bad or len(set(imp)) != len(imp):
                    raise ValueError(f"beta[{l}].important_classes must be distinct classes in 0..{C - 1}, got {imp}")
                if len(imp) == C:
                    raise ValueError(f"beta[{l}].important_classes lists every class; use a weight list instead")
                label_map = torch.full((C,), len(imp), dtype=torch.long)
                label_map[torch.tensor(imp)] = torch.arange(len(imp))
                weights = torch.tensor([b.weight] * len(imp) + [b.other_weight])
                cls_names = [names[c] for c in imp] + ["other"]
            elif isinstance(b, list):
                if len(b) != C:
                    raise ValueError(f"beta[{l}] needs one weight per class ({C}), got {len(b)}")
                if any(w < 0 for w in b):
                    raise ValueError(f"beta[{l}] weights must be >= 0, got {b}")
                weights = torch.tensor(b, dtype=torch.float32)
            else:
                if b < 0:
                    raise ValueError(f"beta must be >= 0, got {b}")
                weights = torch.full((C,), float(b))
            K = len(cls_names)
            self.classes.append(K)
            self.losses.append(LayerLoss(alpha=float(a), class_weights=weights.float(), label_map=label_map))
            self.label_specs.append(Spec("label", (), {"num_classes": K, "class_names": cls_names}))
        return self._out({"layers": L, "prefix": list(self.prefix)})

    def cache_salt(self):
        # trained weights depend on how the layers are wired, not only on the parameters
        return "refine-detached" if self.p.nested else None

    def lifts(self) -> list[torch.Tensor | None]:
        """For layer l >= 2: index of the layer l-1 class containing each class of layer l, when layer l-1's
        classes are unions of layer l's (always without pooling; pooling with growing important sets)."""
        out: list[torch.Tensor | None] = [None]
        ident = torch.arange(self.num_classes)
        for l in range(1, len(self.losses)):
            lift = None
            if self.p.nested:
                cur = self.losses[l].label_map if self.losses[l].label_map is not None else ident
                prev = self.losses[l - 1].label_map if self.losses[l - 1].label_map is not None else ident
                parents = [set(prev[cur == k].tolist()) for k in range(self.classes[l])]
                if all(len(p) == 1 for p in parents):
                    lift = torch.tensor([p.pop() for p in parents], dtype=torch.long)
            out.append(lift)
        return out


class SMRCDecoderBlock(PairedDecoder):
    """SMRC receiver of one layer: first n_1+..+n_l symbols -> image, class scores, label in the layer's classes."""

    type_name = "smrc_decoder"
    encoder_type = "smrc_encoder"
    inputs = {"y": Port(("complex",), "received symbols of an smrc_encoder (through any channel)"),
              "label": Port(("label",), "true class: mapped to this layer's classes (output 'label'); fine-tuning"),
              "image": Port(("image",), "reference image, needed only for fine-tuning", optional=True)}
    outputs = {"image": "reconstruction of layer l in [0, 1]",
               "logits": "class scores in this layer's class space (pooled classes: last = 'other')",
               "label": "true label mapped into this layer's class space (for the accuracy metric)"}

    class Params(Params):
        layer: pydantic.PositiveInt = pydantic.Field(description="decoder layer l (uses sub-blocks 1..l)")
        label: str | None = LABEL
        finetune_epochs: int = FINETUNE
        batch_size: pydantic.PositiveInt = 128
        lr: float = pydantic.Field(1e-4, gt=0, description="fine-tuning learning rate (Adam)")
        seed: int = pydantic.Field(0, description="fine-tuning shuffling seed")
        max_seconds: float | None = pydantic.Field(None, gt=0, description="wall-time cap for fine-tuning")

    @property
    def layer(self) -> int:
        return self.p.layer

    def setup(self, specs):
        enc = self._pair(specs)
        L = len(enc.sizes)
        if self.p.layer > L:
            raise ValueError(f"layer {self.p.layer} > the {L} layers of {enc.name}")
        C = specs["label"].meta.get("num_classes")
        lm = enc.losses[self.layer - 1].label_map
        if lm is not None and C != len(lm):
            raise PortError(f"'label' has {C} classes, {enc.name} was set up for {len(lm)}")
        self.label_map = lm
        self.uses = enc.prefix[self.layer - 1]
        ls = enc.label_specs[self.layer - 1]
        return {"image": Spec("image", enc.image_shape),
                "logits": Spec("real", (enc.classes[self.layer - 1],), {"class_names": ls.meta["class_names"]}),
                "label": ls}

    def forward(self, y, label, image=None):
        img, logits = self.decode(y)
        mapped = label if self.label_map is None else self.label_map.to(label.device)[label]
        return {"image": img, "logits": logits, "label": mapped}

    def report(self):
        # channel uses behind this layer's output, for the rows labelled scheme=label (and its bandwidth_ratio);
        # without a label the system total comes from the channel block alone
        return labelled(self, {"channel_uses_per_sample": float(self.uses)}) if self.p.label else {}
