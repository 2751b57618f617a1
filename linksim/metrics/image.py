"""Image fidelity metrics (torchmetrics): PSNR (mean of per-image PSNR, peak 1.0) and SSIM."""
from __future__ import annotations

import pydantic
import torch

from ..block import Block, Metric, Params, Port
from ..errors import PortError


class _ImagePair(Block):
    role = "metric"
    is_sink = True
    inputs = {"image": Port(("image",), "reference"), "image_hat": Port(("image",), "reconstruction")}

    class Params(Params):
        name: str | None = pydantic.Field(None, description="'scheme' label of the rows (several schemes in one system)")

    def labels(self) -> dict:
        return {"scheme": self.p.name} if self.p.name else {}

    def setup(self, specs):
        if specs["image"].shape != specs["image_hat"].shape:
            raise PortError(f"image {specs['image']} and image_hat {specs['image_hat']} differ in shape")
        return {}

    def reset(self):
        self.vals = []


class PSNR(_ImagePair):
    """Peak signal-to-noise ratio in dB per image (data range 1), averaged over images."""

    type_name = "psnr"

    def update(self, image, image_hat):
        mse = (image - image_hat.clamp(0, 1)).pow(2).flatten(1).mean(1).clamp_min(1e-10)
        self.vals.append((10 * torch.log10(1.0 / mse)).cpu())

    def compute(self):
        return [Metric.mean("psnr_db", torch.cat(self.vals), self.labels())]


class SSIM(_ImagePair):
    """Structural similarity (torchmetrics, data range 1), averaged over images: the standard SSIM of Wang et
    al. (2004), an 11 x 11 Gaussian window with sigma 1.5 (torchmetrics' default; reflect-padded, so images
    need at least 6 x 6 pixels)."""

    type_name = "ssim"
    MIN_SIZE = 6  # the 11 x 11 window's padding of 5 must be smaller than the image

    def setup(self, specs):
        out = super().setup(specs)
        hw = specs["image"].shape[-2:]
        if min(hw) < self.MIN_SIZE:
            raise PortError(f"ssim's 11 x 11 Gaussian window needs images of at least {self.MIN_SIZE} x "
                            f"{self.MIN_SIZE} pixels, got {specs['image']}")
        return out

    def update(self, image, image_hat):
        from torchmetrics.functional.image import structural_similarity_index_measure as ssim

        # written out although they are torchmetrics' defaults: with gaussian_kernel=True torchmetrics ignores
        # kernel_size (an earlier version passed 7 believing it set the window; the value was always this one)
        v = ssim(image_hat.clamp(0, 1).float(), image.float(), data_range=1.0, reduction="none",
                 gaussian_kernel=True, sigma=1.5, kernel_size=11)
        self.vals.append(v.reshape(-1).cpu())

    def compute(self):
        return [Metric.mean("ssim", torch.cat(self.vals), self.labels())]
