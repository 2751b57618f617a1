"""Semantic encoder networks: CPU-cheap CNN / small-image ResNet backbones and the paper's mask-net.

Shapes: images ``[B, C, H, W]`` float in [0, 1]; a backbone returns a non-negative feature *map*
``[B, nf, h, w]``; :class:`SemanticEncoder` pools it to the feature vector ``F`` ``[B, nf]``, computes the
mask ``M = MaskNet(map)`` ``[B, nf]`` (paper Fig. 2) and the transmitted representation ``X = F * M``
(paper Fig. 1, Hadamard product).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["SmallCNN", "resnet_backbone", "MaskNet", "SemanticEncoder", "BACKBONES"]

BACKBONES = ("small_cnn", "resnet18", "resnet50")


class SmallCNN(nn.Module):
    """Three conv blocks (conv3x3-BN-ReLU) + a 1x1 conv + ReLU to ``nf`` non-negative channels.

    All three 3x3 convs have stride 2 (pooling by strided convolution): 28x28 -> 14 -> 7 -> 4, then the
    1x1 conv, so the map is ``[B, nf, 4, 4]``; 32x32 -> 4x4, 8x8 -> 1x1. A stride-1 stem + max-pool was
    several times slower on the shared 2-core CPU (the full-resolution 32-channel map's memory traffic);
    this design costs ~3.2 M multiply-accumulates per 28x28 image at the default widths.
    ``stem_stride=1`` keeps the full-resolution stem (map 7x7 for 28x28) when accuracy matters more.
    """

    def __init__(self, in_ch: int = 1, nf: int = 512, widths: Sequence[int] = (32, 64, 128), stem_stride: int = 2):
        super().__init__()
        if len(widths) != 3:
            raise ValueError("widths must have 3 entries")
        c1, c2, c3 = (int(w) for w in widths)
        self.in_ch, self.nf = int(in_ch), int(nf)
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, c1, 3, stride=stem_stride, padding=1, bias=False), nn.BatchNorm2d(c1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c2), nn.ReLU(inplace=True),
            nn.Conv2d(c2, c3, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c3), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Conv2d(c3, nf, 1), nn.ReLU(inplace=True))
        self.out_channels = self.nf

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class _ResNetMap(nn.Module):
    """torchvision ResNet trunk (no avg-pool / fc), optionally followed by 1x1 conv + ReLU to ``nf``."""

    def __init__(self, net: nn.Module, native: int, nf: int):
        super().__init__()
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layers = nn.Sequential(net.layer1, net.layer2, net.layer3, net.layer4)
        self.proj = nn.Identity() if nf == native else nn.Sequential(nn.Conv2d(native, nf, 1), nn.ReLU(inplace=True))
        self.out_channels = int(nf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.layers(self.stem(x)))


def resnet_backbone(arch: str, in_ch: int, nf: int) -> nn.Module:
    """``resnet18`` / ``resnet50`` (torchvision, ``weights=None``) adapted to small images.

    Stem = 3x3 stride-1 conv (``in_ch`` -> 64), no max-pool (the usual CIFAR variant). Returns a module
    mapping ``[B, in_ch, H, W]`` to a non-negative map ``[B, nf, H/8, W/8]``; the trunk ends in a ReLU, and a
    1x1 conv + ReLU is appended when ``nf`` differs from the native width (512 / 2048).
    """
    import torchvision

    arch = arch.lower()
    if arch == "resnet18":
        net, native = torchvision.models.resnet18(weights=None), 512
    elif arch == "resnet50":
        net, native = torchvision.models.resnet50(weights=None), 2048
    else:
        raise ValueError(f"unknown resnet arch {arch!r}; use 'resnet18' or 'resnet50'")
    net.conv1 = nn.Conv2d(in_ch, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return _ResNetMap(net, native, int(nf))


class MaskNet(nn.Module):
    """Mask-net of the paper's Fig. 2.

    ``fmap [B, C, H, W]`` (or ``[B, C]``) -> spatial max-pool and avg-pool give two C-vectors -> a *shared*
    MLP ``C -> hidden -> C/2`` (ReLU inside) maps each -> concatenate ``[mlp(max), mlp(avg)]`` -> C ->
    ReLU. The mask is non-negative and can be exactly 0. ``C`` must be even; ``hidden`` defaults to C/4.
    """

    def __init__(self, channels: int, hidden: int | None = None):
        super().__init__()
        if channels % 2:
            raise ValueError("MaskNet needs an even number of channels")
        hidden = max(1, channels // 4) if hidden is None else int(hidden)
        self.channels, self.hidden = int(channels), hidden
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels // 2))

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        if fmap.dim() == 2:
            f_max = f_avg = fmap
        else:
            flat = fmap.flatten(2)
            f_max, f_avg = flat.amax(dim=2), flat.mean(dim=2)
        return torch.relu(torch.cat([self.mlp(f_max), self.mlp(f_avg)], dim=1))


class SemanticEncoder(nn.Module):
    """Backbone + global average pooling + optional mask-net (paper Fig. 1).

    ``forward(x)`` returns ``{"F": [B, nf], "mask": [B, nf] or None, "X": [B, nf]}`` with ``F`` the pooled
    non-negative features and ``X = F * mask`` (``X is F`` when ``mask=False``). ``features(x)`` returns X.
    ``widths`` / ``stem_stride`` apply to ``small_cnn`` only; ``mask_hidden`` is the mask-net MLP width.
    """

    def __init__(self, backbone: str = "small_cnn", in_ch: int = 1, nf: int = 512, mask: bool = True,
                 mask_hidden: int | None = None, widths: Sequence[int] = (32, 64, 128), stem_stride: int = 2):
        super().__init__()
        if backbone == "small_cnn":
            self.backbone = SmallCNN(in_ch, nf, widths, stem_stride)
        elif backbone in ("resnet18", "resnet50"):
            self.backbone = resnet_backbone(backbone, in_ch, nf)
        else:
            raise ValueError(f"unknown backbone {backbone!r}; choose from {BACKBONES}")
        self.backbone_name, self.in_ch, self.nf = backbone, int(in_ch), int(nf)
        self.mask_net = MaskNet(nf, mask_hidden) if mask else None

    @property
    def has_mask(self) -> bool:
        return self.mask_net is not None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | None]:
        fmap = self.backbone(x)
        F = fmap.mean(dim=(2, 3))
        if self.mask_net is None:
            return {"F": F, "mask": None, "X": F}
        mask = self.mask_net(fmap)
        return {"F": F, "mask": mask, "X": F * mask}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)["X"]
