"""Stage 2 of paper 003: a VQ-VAE decoder on the frozen local encoder, its codebook indices sent as bits.

``vq_encoder`` (trainable): the frozen representation h is split into ``tokens`` vectors z_e of
nf/``tokens`` dims; each is replaced by the index of its nearest codebook vector e (``codebook_size``
entries); the indices are sent as ceil(log2 codebook_size) bits each. Training (Eq. 4 without the commitment
term, the encoder being frozen): reconstruction MSE of the decoder on z_q = e + codebook loss
||sg[z_e] - e||^2; the codebook starts from random training z_e. The decoder (linear to a 64-channel map at
1/4 resolution, two stride-2 transposed convs, sigmoid) lives in the same block and is shared with
``vq_decoder``, which maps received bits back to indices (an index >= codebook_size after bit errors is
clamped to the last entry: a defined output, never a crash) and reconstructs the image.
"""
from __future__ import annotations

import math

import pydantic
import torch
import torch.nn.functional as Fn
from torch import nn

from ..block import Block, Params, Port, Spec
from ..errors import PortError
from ..training import block_where, fit, isolated_rng, record


class _Decoder(nn.Module):
    def __init__(self, d_in: int, shape: tuple[int, int, int], width: int = 64):
        super().__init__()
        c, h, w = shape
        self.shape, self.h4, self.w4, self.width = shape, math.ceil(h / 4), math.ceil(w / 4), width
        self.fc = nn.Sequential(nn.Linear(d_in, width * self.h4 * self.w4), nn.ReLU(inplace=True))
        self.up = nn.Sequential(
            nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width // 2, c, 4, stride=2, padding=1))

    def forward(self, z):
        x = self.up(self.fc(z).view(-1, self.width, self.h4, self.w4))
        if tuple(x.shape[-2:]) != self.shape[1:]:
            x = Fn.interpolate(x, size=self.shape[1:], mode="bilinear", align_corners=False)
        return torch.sigmoid(x)


class VQEncoder(Block):
    """Frozen features -> VQ codebook indices -> bits (trains the codebook and the shared decoder)."""

    type_name = "vq_encoder"
    role = "transmitter"
    trainable = True
    memoize_eval = True
    inputs = {"features": Port(("real",), "frozen local-encoder representation"),
              "image": Port(("image",), "reconstruction target (training only)")}
    outputs = {"bits": "codebook indices, ceil(log2 codebook_size) bits each (MSB first)"}

    class Params(Params):
        tokens: pydantic.PositiveInt = pydantic.Field(8, description="latent vectors per image (nf divisible by it)")
        codebook_size: int = pydantic.Field(256, ge=2, description="codebook entries K")
        epochs: pydantic.PositiveInt = pydantic.Field(20, description="epoch cap")
        max_seconds: float | None = pydantic.Field(None, gt=0, description="wall-time cap for training")
        batch_size: pydantic.PositiveInt = 256
        lr: float = pydantic.Field(2e-3, gt=0, description="Adam learning rate")
        seed: int = 0

    def setup(self, specs):
        f = specs["features"]
        if len(f.shape) != 1 or f.shape[0] % self.p.tokens:
            raise ValueError(f"tokens: feature size {list(f.shape)} is not divisible by tokens = {self.p.tokens}")
        self.nf, self.shape = f.shape[0], tuple(specs["image"].shape)
        self.code_dim = self.nf // self.p.tokens
        self.nbits = max(1, math.ceil(math.log2(self.p.codebook_size)))
        self.bits_total = self.p.tokens * self.nbits
        self.weights = 2 ** torch.arange(self.nbits - 1, -1, -1)
        return {"bits": Spec("bits", (self.bits_total,), {"vqvae": self})}

    def _build(self):
        with isolated_rng(self.p.seed):
            self.codebook = nn.Parameter(torch.randn(self.p.codebook_size, self.code_dim, device=self.ctx.device))
            self.decoder = _Decoder(self.nf, self.shape).to(self.ctx.device)

    def tokens(self, features: torch.Tensor) -> torch.Tensor:
        return features.float().reshape(-1, self.p.tokens, self.code_dim)

    def indices(self, features: torch.Tensor) -> torch.Tensor:
        z = self.tokens(features)
        d = (z.pow(2).sum(-1, keepdim=True) - 2 * z @ self.codebook.T + self.codebook.pow(2).sum(-1))
        return d.argmin(-1)

    def reconstruct(self, idx: torch.Tensor) -> torch.Tensor:
        idx = idx.clamp(0, self.p.codebook_size - 1)
        return self.decoder(self.codebook[idx].reshape(idx.shape[0], -1))

    def fit(self, data, ctx):
        self._build()
        d = data.materialize()
        f, x = d["features"].float().to(ctx.device), d["image"].float().to(ctx.device)
        n = len(f)
        gen = torch.Generator().manual_seed(self.p.seed)
        with torch.no_grad():  # codebook init: random training z_e
            z = self.tokens(f).reshape(-1, self.code_dim)
            self.codebook.copy_(z[torch.randint(len(z), (self.p.codebook_size,), generator=gen).to(z.device)])
        opt = torch.optim.Adam([self.codebook, *self.decoder.parameters()], lr=self.p.lr)

        def step(idx, gen):
            idx = idx.to(ctx.device)
            ze = self.tokens(f[idx])
            e = self.codebook[self.indices(f[idx])]
            rec = self.decoder(e.reshape(len(idx), -1))
            return Fn.mse_loss(rec, x[idx]) + Fn.mse_loss(e, ze.detach())

        res = fit(step, n, optimizer=opt, epochs=self.p.epochs, batch_size=self.p.batch_size, generator=gen,
                  seed=self.p.seed, max_seconds=self.p.max_seconds, drop_last=True, modules=[self.decoder],
                  where=block_where(ctx, self.name), name=f"{self.name} (VQ-VAE)", progress=ctx.progress)
        self.summary = record(ctx, self.name, res, bits_per_sample=self.bits_total)
        ctx.log(f"{self.name}: {self.summary}")

    def state(self):
        return {"codebook": self.codebook.detach().cpu(), "decoder": self.decoder.state_dict(), "summary": self.summary}

    def load_state(self, state):
        self._build()
        with torch.no_grad():
            self.codebook.copy_(state["codebook"])
        self.decoder.load_state_dict(state["decoder"])
        self.summary = state.get("summary", {})

    def forward(self, features, image=None):
        with torch.no_grad():
            idx = self.indices(features)
        bits = (idx.unsqueeze(-1) // self.weights.to(idx.device)) % 2
        return {"bits": bits.reshape(len(idx), -1).float()}

    def report(self):
        return {"bits_per_sample": float(self.bits_total)}


class VQDecoder(Block):
    """Received bits -> codebook indices (out-of-range clamped) -> codebook vectors -> decoded image."""

    type_name = "vq_decoder"
    role = "receiver"
    inputs = {"bits": Port(("bits",), "received index bits (hard decisions)"),
              "vq": Port(("bits",), "the vq_encoder's output: names the shared codebook + decoder (values unused)")}
    outputs = {"image": "reconstructed image in [0,1]"}

    def setup(self, specs):
        self.vq = specs["vq"].meta.get("vqvae")
        if self.vq is None:
            raise PortError("'vq' must come from a vq_encoder block")
        if specs["bits"].shape[0] < self.vq.bits_total:
            raise PortError(f"bits {specs['bits']} shorter than the {self.vq.bits_total} index bits")
        return {"image": Spec("image", self.vq.shape)}

    def forward(self, bits, vq=None):
        b = (bits[:, : self.vq.bits_total] > 0.5).long().reshape(len(bits), self.vq.p.tokens, self.vq.nbits)
        idx = (b * self.vq.weights.to(b.device)).sum(-1)
        with torch.no_grad():
            return {"image": self.vq.reconstruct(idx)}
