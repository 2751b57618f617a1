"""Deep JSCC (Bourtsoulatze et al.): CNN encoder -> power normalisation -> channel -> CNN decoder.

The encoder and decoder are trained end to end through a differentiable channel, while in a scenario the
channel is a separate, swept block between them. The transmitter block (``jscc_encoder``) therefore trains
encoder + companion decoder jointly in ``fit`` through its own training channel (``train_channel``,
``train_snr_db``), and publishes itself in the metadata of its output spec (``meta["jscc_encoder"]``), which
every symbol channel and ``power_normalize`` pass through. The receiver block (``jscc_decoder``) finds its
encoder there at setup (a PortError when 'y' does not come from one), and in ``fit`` takes the companion
decoder's weights (optionally fine-tuned on its own inputs). Both blocks cache their own weights: the
encoder's state holds encoder and companion decoders, the decoder's state its own network only; the
decoder's cache key covers the encoder's configuration (everything upstream), so they always match.
"""
from __future__ import annotations

import copy
import math
from typing import ClassVar, Literal

import pydantic
import torch

from ..block import Block, ModelState, Params, Port, Spec
from ..errors import PortError
from .models import DecoderStack, JSCCDecoder, JSCCEncoder
from ..training import block_where, isolated_rng, record
from .training import LayerLoss, tqdm_progress, train_jscc

META_KEY = "jscc_encoder"


class TrainParams(Params):
    """Training parameters shared by the JSCC transmitters."""

    width: pydantic.PositiveInt = pydantic.Field(64, description="conv channels of encoder trunk and decoders")
    train_channel: Literal["awgn", "rayleigh"] = pydantic.Field(
        "awgn", description="differentiable channel used in training (rayleigh: perfect CSI, taps per train_coherence)")
    train_coherence: Literal["sample", "symbol"] = pydantic.Field(
        "sample", description="rayleigh training taps: one per sample (block fading) or per symbol (fast fading), "
                              "as the rayleigh block's coherence")
    train_csi_error: float = pydantic.Field(
        0.0, ge=0, description="rayleigh training: the receiver equalises with h + e, e ~ CN(0, train_csi_error N0) "
                               "(1: LS at unit-energy pilots, no averaging; 0: perfect CSI)")
    train_snr_db: float | list[float] = pydantic.Field(
        10.0, description="training Es/N0 in dB: a value, or [lo, hi] drawn uniformly per sample")
    epochs: pydantic.PositiveInt = pydantic.Field(10, description="epoch cap")
    batch_size: pydantic.PositiveInt = 128
    lr: float = pydantic.Field(1e-3, gt=0, description="Adam learning rate")
    seed: int = pydantic.Field(0, description="initialisation / shuffling / training-noise seed")
    max_seconds: float | None = pydantic.Field(None, gt=0, description="wall-time cap for training")

    @pydantic.field_validator("train_snr_db")
    @classmethod
    def _snr_range(cls, v):
        if isinstance(v, list) and (len(v) != 2 or v[0] > v[1]):
            raise ValueError(f"train_snr_db must be a value or [lo, hi] with lo <= hi, got {v}")
        return v

    @pydantic.model_validator(mode="after")
    def _csi_error_needs_fading(self):
        if self.train_csi_error > 0 and self.train_channel != "rayleigh":
            raise ValueError("train_csi_error needs train_channel: rayleigh (there is no channel estimate over awgn)")
        return self

    def snr_range(self) -> tuple[float, float]:
        v = self.train_snr_db
        return (float(v[0]), float(v[1])) if isinstance(v, list) else (float(v), float(v))


def load_layers(stack: DecoderStack, states: list[dict]) -> None:
    """Per-layer weights (as ``state()`` stores them) into the decoders of ``stack``."""
    for dec, sd in zip(stack.layers, states, strict=True):
        dec.load_state_dict(sd)


def symbols_for_ratio(ratio: float, source_dims: int) -> int:
    """Complex channel uses for a bandwidth ratio (channel uses / source dimensions), rounded down."""
    return math.floor(ratio * source_dims + 1e-9)


class JSCCEncoderBase(Block):
    """Shared transmitter machinery: L sub-blocks of ``self.sizes`` symbols, decoder l sees the first
    ``self.prefix[l]`` symbols; subclasses set ``sizes``, ``prefix``, ``classes`` and ``losses`` in setup."""

    role = "transmitter"
    trainable = True
    memoize_eval = True
    uses_labels: ClassVar[bool] = False

    def __init__(self, name, params, ctx):
        super().__init__(name, params, ctx)
        self.encoder = None
        self.decoders: DecoderStack | None = None
        self.summary: dict = {}

    def _image_spec(self, specs) -> Spec:
        img = specs["image"]
        if len(img.shape) != 3:
            raise PortError(f"image must be (C, H, W), got {img}")
        self.image_shape = tuple(int(s) for s in img.shape)
        self.source_dims = img.size
        return img

    def _out(self, extra: dict) -> dict:
        total = sum(self.sizes)
        return {"symbols": Spec("complex", (total,), {META_KEY: self, "sub_blocks": list(self.sizes), **extra})}

    def decoder_args(self, layer: int) -> dict:
        """Constructor arguments of the companion decoder of ``layer`` (1-based)."""
        c, h, w = self.image_shape
        return {"m": self.prefix[layer - 1], "out_ch": c, "hw": (h, w), "width": self.p.width,
                "num_classes": self.classes[layer - 1]}

    def lifts(self) -> list[torch.Tensor | None]:
        """Per layer, how layer l-1's class scores enter layer l's (see DecoderStack); None = independent."""
        return [None] * len(self.sizes)

    def decoder_stack(self, layers: int) -> DecoderStack:
        """Fresh decoders of layers 1..``layers``, wired as in training."""
        return DecoderStack([JSCCDecoder(**self.decoder_args(l + 1)) for l in range(layers)],
                            self.lifts()[:layers]).to(self.ctx.device)

    def _build(self):
        c, h, w = self.image_shape
        with isolated_rng(self.p.seed):
            self.encoder = JSCCEncoder(c, (h, w), self.sizes, self.p.width).to(self.ctx.device)
            self.decoders = self.decoder_stack(len(self.sizes))

    def train_channel_kind(self) -> str:
        return "awgn" if self.p.train_channel == "awgn" else f"rayleigh_{self.p.train_coherence}"

    def fit(self, data, ctx):
        self._build()
        d = data.materialize()
        cb, close = tqdm_progress(ctx.progress, self.p.epochs, f"train {self.name} ({self.type_name})")
        try:
            s = train_jscc(self.encoder, self.decoders, self.losses, d["image"], d["image"],
                           d.get("label") if self.uses_labels else None, channel=self.train_channel_kind(),
                           snr_db=self.p.snr_range(), epochs=self.p.epochs, lr=self.p.lr,
                           batch_size=self.p.batch_size, seed=self.p.seed, max_seconds=self.p.max_seconds,
                           device=ctx.device, progress=cb, where=block_where(ctx, self.name), name=self.name,
                           csi_error=self.p.train_csi_error)
        finally:
            close()
        self.summary = record(ctx, self.name, s, final_mse=round(float(s["mse"][-1]), 6))
        ctx.log(f"{self.name}: {self.summary}")

    def state(self):
        return {"encoder": self.encoder.state_dict(), "decoders": [d.state_dict() for d in self.decoders.layers],
                "summary": self.summary}

    def load_state(self, state):
        self._build()
        self.encoder.load_state_dict(state["encoder"])
        load_layers(self.decoders, state["decoders"])
        self.encoder.eval()
        self.summary = state.get("summary", {})

    def companion_state(self, layer: int) -> list[dict]:
        """Copies of the trained weights of the companion decoders 1..``layer`` (1-based), one per layer."""
        if self.decoders is None:
            raise RuntimeError(f"{self.name} has not been trained or loaded yet")
        return [copy.deepcopy(d.state_dict()) for d in self.decoders.layers[:layer]]

    def forward(self, image, label=None):
        self.encoder.eval()
        return {"symbols": self.encoder(image)}


class JSCCEncoderBlock(JSCCEncoderBase):
    """Deep JSCC transmitter: image -> n unit-energy complex symbols (trained end to end with its decoder)."""

    type_name = "jscc_encoder"
    inputs = {"image": Port(("image",), "source image")}
    outputs = {"symbols": "complex symbols, mean |s|^2 = 1 per sample (plug into awgn / rayleigh)"}

    class Params(TrainParams):
        bandwidth_ratio: float | None = pydantic.Field(
            None, gt=0, description="channel uses / source dimensions (n = floor(ratio * C*H*W))")
        symbols: pydantic.PositiveInt | None = pydantic.Field(None, description="complex channel uses n (instead of bandwidth_ratio)")

        @pydantic.model_validator(mode="after")
        def _one_size(self):
            if (self.bandwidth_ratio is None) == (self.symbols is None):
                raise ValueError("set exactly one of bandwidth_ratio and symbols")
            return self

    def setup(self, specs):
        self._image_spec(specs)
        n = self.p.symbols or symbols_for_ratio(self.p.bandwidth_ratio, self.source_dims)
        if n < 1:
            raise ValueError(f"bandwidth_ratio {self.p.bandwidth_ratio} gives no channel use for "
                             f"{self.source_dims} source dimensions")
        self.sizes, self.prefix, self.classes = [n], [n], [0]
        self.losses = [LayerLoss(alpha=1.0)]
        return self._out({})


class PairedDecoder(ModelState, Block):
    """Receiver half of a JSCC pair: finds its encoder in the metadata of 'y', takes its trained companion
    decoder in ``fit`` (fine-tuned for ``finetune_epochs`` on its own inputs, if > 0) and caches its own weights."""

    role = "receiver"
    trainable = True
    encoder_type: ClassVar[str] = ""

    def __init__(self, name, params, ctx):
        super().__init__(name, params, ctx)
        self.model = None

    @property
    def layer(self) -> int:
        return 1

    def _pair(self, specs) -> JSCCEncoderBase:
        y = specs["y"]
        enc = y.meta.get(META_KEY)
        if not isinstance(enc, JSCCEncoderBase) or enc.type_name != self.encoder_type:
            raise PortError(f"'y' must come (through any channel) from a {self.encoder_type}, got {y}")
        if y.size != sum(enc.sizes):
            raise PortError(f"'y' has {y.size} symbols but {enc.name} sends {sum(enc.sizes)}")
        if self.p.finetune_epochs > 0 and "image" not in specs:
            raise PortError("finetune_epochs > 0 needs 'image' (the reference image) connected")
        if "image" in specs and tuple(specs["image"].shape) != enc.image_shape:
            raise PortError(f"'image' {specs['image']} differs from the encoded image shape {list(enc.image_shape)}")
        self.enc = enc
        return enc

    def cache_salt(self):
        return "decoder-stack"  # weights saved as a DecoderStack of layers 1..l (earlier: one JSCCDecoder)

    def _build(self):
        with isolated_rng(self.p.seed):
            self.model = self.enc.decoder_stack(self.layer)

    def finetune_losses(self) -> list[LayerLoss | None]:
        """Fine-tuning scores this block's own layer only (the lower layers feed its class scores)."""
        return [None] * (self.layer - 1) + [self.enc.losses[self.layer - 1]]

    def decode(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.model(y)[-1]

    def fit(self, data, ctx):
        self._build()
        load_layers(self.model, self.enc.companion_state(self.layer))
        self.summary = {"from": self.enc.name, "finetune_epochs": 0}
        if self.p.finetune_epochs > 0:
            d = data.materialize()
            cb, close = tqdm_progress(ctx.progress, self.p.finetune_epochs, f"fine-tune {self.name}")
            try:
                s = train_jscc(None, self.model, self.finetune_losses(), d["y"], d["image"], d.get("label"),
                               channel=None, snr_db=(0.0, 0.0), epochs=self.p.finetune_epochs, lr=self.p.lr,
                               batch_size=self.p.batch_size, seed=self.p.seed, max_seconds=self.p.max_seconds,
                               device=ctx.device, progress=cb, where=block_where(ctx, self.name), name=self.name)
            finally:
                close()
            self.summary = {"from": self.enc.name, "finetune_epochs": int(s["epochs"]), **record(None, self.name, s)}
            ctx.record(self.name, self.summary)
        self.model.eval()


FINETUNE = pydantic.Field(0, ge=0, description="epochs of decoder-only fine-tuning on its own (training-split) "
                                               "inputs; channels pass training data clean unless in_training")


class JSCCDecoderBlock(PairedDecoder):
    """Deep JSCC receiver: received symbols -> reconstructed image (companion decoder of its jscc_encoder)."""

    type_name = "jscc_decoder"
    encoder_type = "jscc_encoder"
    inputs = {"y": Port(("complex",), "received symbols of a jscc_encoder (through any channel)"),
              "image": Port(("image",), "reference image, needed only for fine-tuning", optional=True)}
    outputs = {"image": "reconstructed image in [0, 1]"}

    class Params(Params):
        finetune_epochs: int = FINETUNE
        batch_size: pydantic.PositiveInt = 128
        lr: float = pydantic.Field(1e-4, gt=0, description="fine-tuning learning rate (Adam)")
        seed: int = pydantic.Field(0, description="fine-tuning shuffling seed")
        max_seconds: float | None = pydantic.Field(None, gt=0, description="wall-time cap for fine-tuning")

    def setup(self, specs):
        enc = self._pair(specs)
        return {"image": Spec("image", enc.image_shape)}

    def forward(self, y, image=None):
        img, _ = self.decode(y)
        return {"image": img}
