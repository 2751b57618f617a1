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
    """Structural similarity (torchmetrics, data range 1), averaged over images."""

    type_name = "ssim"

    def update(self, image, image_hat):
        from torchmetrics.functional.image import structural_similarity_index_measure as ssim

        k = 7 if min(image.shape[-2:]) >= 7 else 3
        v = ssim(image_hat.clamp(0, 1).float(), image.float(), data_range=1.0, reduction="none", kernel_size=k)
        self.vals.append(v.reshape(-1).cpu())

    def compute(self):
        return [Metric.mean("ssim", torch.cat(self.vals), self.labels())]
