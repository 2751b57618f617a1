"""Small convolutional JSCC networks (Bourtsoulatze-style, GDN-free, sized for CPU training) and the differentiable training channel.

``JSCCEncoder``: image -> conv trunk (stride-2 5x5 and 3x3 convs, one 3x3 conv, PReLU) -> one linear head per
layer emitting exactly ``2 n_l`` reals = ``n_l`` complex symbols; every sub-block is power-normalised on its
own (mean |s|^2 = 1 per sub-block), so the concatenation has unit average energy per symbol. One head is deep
JSCC; L heads are the multi-resolution (SMRC) encoder.

``JSCCDecoder``: the first ``m`` received symbols (2m reals) -> linear -> PReLU -> mirror of the trunk (3x3
conv, two stride-2 transposed convs) -> sigmoid image; optionally a class head (linear - PReLU - linear) on the
hidden layer after the first linear map. Images whose side is not a multiple of 4 are zero-padded at the
encoder and cropped at the decoder, so any H x W (28x28 grey, 32x32x3) works.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as Fn
from torch import nn


def _pad4(h: int, w: int) -> tuple[int, int]:
    return 4 * math.ceil(h / 4), 4 * math.ceil(w / 4)


def power_normalize(z: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """Reals ``[B, 2 sum(sizes)]`` -> complex ``[B, sum(sizes)]``, each sub-block with mean |s|^2 = 1."""
    v = torch.view_as_complex(z.float().reshape(z.shape[0], -1, 2).contiguous())
    out, s = [], 0
    for n in sizes:
        blk = v[:, s:s + n]
        p = blk.abs().pow(2).mean(1, keepdim=True).clamp_min(1e-12)
        out.append(blk / p.sqrt())
        s += n
    return torch.cat(out, 1)


def complex_to_reals(y: torch.Tensor) -> torch.Tensor:
    """Complex ``[B, m]`` -> reals ``[B, 2m]`` (re, im interleaved: the inverse of the encoder's packing)."""
    return torch.view_as_real(y.reshape(y.shape[0], -1).to(torch.complex64)).reshape(y.shape[0], -1)


class JSCCEncoder(nn.Module):
    """Image ``[B, C, H, W]`` in [0, 1] -> complex symbols ``[B, sum(symbols)]``, sub-blocks power-normalised."""

    def __init__(self, in_ch: int, hw: tuple[int, int], symbols: list[int], width: int = 64):
        super().__init__()
        self.hw, self.symbols = tuple(hw), [int(n) for n in symbols]
        hp, wp = _pad4(*hw)
        half = max(width // 2, 1)
        self.trunk = nn.Sequential(
            nn.Conv2d(in_ch, half, 5, 2, 2), nn.PReLU(half),
            nn.Conv2d(half, width, 3, 2, 1), nn.PReLU(width),
            nn.Conv2d(width, width, 3, 1, 1), nn.PReLU(width),
            nn.Flatten())
        feat = width * (hp // 4) * (wp // 4)
        self.heads = nn.ModuleList(nn.Linear(feat, 2 * n) for n in self.symbols)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.hw
        hp, wp = _pad4(h, w)
        x = Fn.pad(x.float(), (0, wp - w, 0, hp - h))
        f = self.trunk(x)
        z = torch.cat([head(f) for head in self.heads], 1)
        return power_normalize(z, self.symbols)


class JSCCDecoder(nn.Module):
    """First ``m`` received symbols -> image in [0, 1] (and class scores when ``num_classes`` > 0)."""

    def __init__(self, m: int, out_ch: int, hw: tuple[int, int], width: int = 64, num_classes: int = 0,
                 class_hidden: int = 128):
        super().__init__()
        self.m, self.hw = int(m), tuple(hw)
        hp, wp = _pad4(*hw)
        self.grid = (width, hp // 4, wp // 4)
        half = max(width // 2, 1)
        hidden = width * (hp // 4) * (wp // 4)
        self.fc = nn.Sequential(nn.Linear(2 * self.m, hidden), nn.PReLU())
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1), nn.PReLU(width),
            nn.ConvTranspose2d(width, half, 4, 2, 1), nn.PReLU(half),
            nn.ConvTranspose2d(half, out_ch, 4, 2, 1), nn.Sigmoid())
        self.cls = (nn.Sequential(nn.Linear(hidden, class_hidden), nn.PReLU(), nn.Linear(class_hidden, num_classes))
                    if num_classes > 0 else None)

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        z = complex_to_reals(y[:, : self.m])
        hid = self.fc(z)
        img = self.body(hid.reshape(-1, *self.grid))[..., : self.hw[0], : self.hw[1]]
        logits = self.cls(hid) if self.cls is not None else None
        return img, logits


def training_channel(x: torch.Tensor, kind: str, snr_db: tuple[float, float], generator: torch.Generator,
                     csi_error: float = 0.0) -> torch.Tensor:
    """Differentiable channel used while training: ``x`` unit-energy complex ``[B, n]``.

    Es/N0 is drawn per sample, uniform in dB on ``snr_db = (lo, hi)`` (a single value when lo == hi).
    ``awgn``: y = x + n, n ~ CN(0, N0). ``rayleigh``/``rayleigh_sample``: one CN(0, 1) tap per sample (the
    ``rayleigh`` block's default ``coherence: sample``; ``rayleigh_symbol``: one per symbol, ``coherence:
    symbol``) and perfect-CSI equalisation y = (h x + n) / h, as in
    :mod:`linksim.channels.fading`. N0 = 10^(-snr_db/10) (README's SNR convention).
    ``csi_error`` > 0 (Rayleigh only): the receiver equalises with an estimate h + e, e ~ CN(0, csi_error N0)
    per tap, y = (h x + n) / (h + e): LS estimation at unit-energy pilots without averaging has csi_error 1.
    """
    b, n = x.shape
    lo, hi = snr_db
    snr = lo + (hi - lo) * torch.rand(b, generator=generator)
    std = torch.sqrt(10.0 ** (-snr / 10.0) / 2.0).to(x.device)[:, None]
    noise = torch.complex(torch.randn(b, n, generator=generator), torch.randn(b, n, generator=generator)).to(x.device)
    noise = noise * std
    if kind == "awgn":
        return x + noise
    if kind in ("rayleigh", "rayleigh_sample", "rayleigh_symbol"):
        shape = (b, 1) if kind != "rayleigh_symbol" else (b, n)  # one tap per sample, or per symbol (fast fading)
        h = torch.complex(torch.randn(*shape, generator=generator), torch.randn(*shape, generator=generator))
        h = (h / math.sqrt(2.0)).to(x.device)
        if csi_error <= 0:
            return x + noise / h
        e = torch.complex(torch.randn(*shape, generator=generator), torch.randn(*shape, generator=generator))
        e = e.to(x.device) * std * math.sqrt(csi_error)  # std = sqrt(N0 / 2) per real dimension
        return (h * x + noise) / (h + e)
    raise ValueError(f"unknown training channel {kind!r}; use 'awgn', 'rayleigh' or 'rayleigh_symbol'")


class DecoderStack(nn.Module):
    """The decoders of layers 1..L on one received vector (decoder l keeps its own prefix of symbols).

    With ``lifts`` (SMRC successive refinement), layer l's class scores are its own head's output plus layer
    l-1's scores lifted into layer l's class space: ``lifts[l][k]`` is the class of layer l-1 that contains
    class k of layer l (identity without pooling). The last linear map of such a head starts at zero and the
    lifted scores enter without gradient, so layer l begins as layer l-1's decision and learns only a
    correction from its extra symbols, while layer l-1 keeps learning from its own loss alone.
    ``forward`` returns ``[(image, logits)]`` for every layer.
    """

    def __init__(self, decoders: list[JSCCDecoder], lifts: list[torch.Tensor | None] | None = None):
        super().__init__()
        self.layers = nn.ModuleList(decoders)
        self.lifts = list(lifts) if lifts is not None else [None] * len(decoders)
        if len(self.lifts) != len(self.layers):
            raise ValueError(f"{len(self.lifts)} lifts for {len(self.layers)} decoders")
        for dec, lift in zip(self.layers, self.lifts):
            if lift is not None and dec.cls is not None:
                nn.init.zeros_(dec.cls[-1].weight)
                nn.init.zeros_(dec.cls[-1].bias)

    def forward(self, y: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        outs, prev = [], None
        for dec, lift in zip(self.layers, self.lifts):
            img, logits = dec(y)
            if lift is not None and prev is not None and logits is not None:
                logits = logits + prev.detach()[:, lift.to(prev.device)]
            outs.append((img, logits))
            prev = logits
        return outs
