"""``nnclr_encoder``: NNCLR baseline (Dwibedi et al. 2021): the positive of a view is the nearest neighbour of
its projection in a support set (FIFO queue of past projections); predictor head on the other view;
symmetric InfoNCE with the other samples' predictions as negatives."""
from __future__ import annotations

import pydantic
import torch
import torch.nn.functional as Fn
from torch import nn

from .base import SSLEncoderBlock


class NNCLREncoder(SSLEncoderBlock):
    """Local encoder trained with NNCLR (nearest-neighbour positives from a support set)."""

    type_name = "nnclr_encoder"
    method = "nnclr"

    class Params(SSLEncoderBlock.Params):
        queue_size: pydantic.PositiveInt = pydantic.Field(8192, description="support-set size")

    def heads(self):
        d, h = self.dim, self.p.hidden
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.p.seed + 1)
            pred = nn.Sequential(nn.Linear(d, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True), nn.Linear(h, d))
        self.queue = torch.zeros(0, d, device=self.ctx.device)
        return {"predictor": pred}

    def _nn(self, z: torch.Tensor) -> torch.Tensor:
        if len(self.queue) == 0:
            return z
        idx = (z @ self.queue.T).argmax(dim=1)
        return self.queue[idx]

    @staticmethod
    def _info_nce(a, b, t):
        logits = a @ b.T / t
        return Fn.cross_entropy(logits, torch.arange(len(a), device=a.device))

    def loss(self, v1, v2, gen):
        _, z1 = self.model(v1)
        _, z2 = self.model(v2)
        p1, p2 = (Fn.normalize(self.extra["predictor"](z), dim=1) for z in (z1, z2))
        z1, z2 = Fn.normalize(z1, dim=1), Fn.normalize(z2, dim=1)
        nn1, nn2 = self._nn(z1.detach()), self._nn(z2.detach())
        loss = 0.5 * (self._info_nce(nn1, p2, self.p.temperature) + self._info_nce(nn2, p1, self.p.temperature))
        self.queue = torch.cat([z1.detach(), self.queue])[: self.p.queue_size]
        return loss
