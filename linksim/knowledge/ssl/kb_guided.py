"""``kb_guided_encoder``: the local encoder of paper 003 (CRLSC, Fig. 3), guided by a vector knowledge base.

Query branch: q = z(view 1) (the raw projector output); the KB is searched (FAISS PQ) with q plus Gaussian
noise N(0, ``noise_var``) per entry ("to broaden the search scope") for the ``top_n`` nearest vectors v
(PQ-decoded; keys k = values v); attention scores softmax(q k^T / sqrt(d)) (Eq. 1), q* = scores v (Eq. 2).
Other branch: p = z(view 2). Loss: the decoupled contrastive loss (DCL, Yeh et al. 2022; Eq. 3) between q*
and p, symmetrised: the positive pair is excluded from the denominator, whose terms are the other samples'
views of both branches. The noise only widens the retrieval; the attention uses the clean q.

Two optional terms are not in the paper (both off by default):
- ``instance_weight`` x DCL(q, p), the plain instance term;
- ``anchor_weight`` x (1 - cos(q(x_a), v_a)), an alignment term on anchor images x_a whose KB vectors v_a are
  known (the server's public images, from which the SKB was built; ``anchor_batch`` per step). The paper only
  matches the dimension of the local encoder to the SKB's; a randomly initialised encoder's q then has no
  relation to the teacher's space, and the top-n retrieval returns vectors of the query's class no more often
  than chance (``scripts/kb_diagnostics.py``). The anchors make Eq. 1 compare like with like.
``kb_weight`` scales the paper's term (0 = the ablation without retrieval).
"""
from __future__ import annotations

import math
from typing import Literal

import pydantic
import torch
import torch.nn.functional as Fn

from ...block import Port
from ...errors import PortError, UserError
from ...semantic.training import augment
from ...losses import dcl_loss
from .base import SSLEncoderBlock, augmented_view


def kb_scores(q: torch.Tensor, v: torch.Tensor, normalise: str = "softmax",
              scale: float | None = None) -> torch.Tensor:
    """Attention scores softmax(q k^T / scale) with k = v (Eq. 1): ``q [B, d]``, ``v [B, n, d]`` -> ``[B, n]``;
    scale = sqrt(d) by default. ``normalise="linear"`` drops the softmax (the paper's Eq. 1-2 as printed)."""
    scores = torch.einsum("bd,bnd->bn", q, v) / (scale or math.sqrt(q.shape[-1]))
    return torch.softmax(scores, dim=-1) if normalise == "softmax" else scores


def kb_attention(q: torch.Tensor, v: torch.Tensor, normalise: str = "softmax",
                 scale: float | None = None) -> torch.Tensor:
    """q* = scores v (Eq. 2), ``[B, d]``; with ``normalise="linear"`` a projection of q onto the span of the
    retrieved vectors."""
    return torch.einsum("bn,bnd->bd", kb_scores(q, v, normalise, scale), v)


class KBGuidedEncoder(SSLEncoderBlock):
    """Local encoder trained by DCL between the KB-enhanced query q* and the other view p (paper 003)."""

    type_name = "kb_guided_encoder"
    method = "kb_guided"
    inputs = {**SSLEncoderBlock.inputs,
              "kb": Port(("real",), "a knowledge_base output (SKB or a peer's PKB)"),
              "anchor_image": Port(("image",), "the images whose embeddings are the knowledge base's entries, in "
                                   "the same order (the server's public images): alignment anchors", optional=True)}

    class Params(SSLEncoderBlock.Params):
        top_n: pydantic.PositiveInt = pydantic.Field(30, description="retrieved knowledge-base vectors per query")
        noise_var: float = pydantic.Field(0.2, ge=0, description="variance of the Gaussian noise added to queries")
        attention: Literal["softmax", "linear"] = pydantic.Field(
            "softmax", description="scores softmax(q k^T/sqrt d), or linear: the paper's Eq. 1-2 without softmax")
        query_norm: bool = pydantic.Field(
            False, description="L2-normalise q before retrieval and attention (the SKB vectors are unit vectors)")
        attention_temperature: float | None = pydantic.Field(
            None, gt=0, description="attention scores q k^T / temperature (default sqrt(d), Eq. 1)")
        instance_weight: float = pydantic.Field(
            0.0, ge=0, description="weight of an added instance term DCL(q, p) (0 = the paper's loss only)")
        kb_weight: float = pydantic.Field(
            1.0, ge=0, description="weight of the paper's term DCL(q*, p) (0 = ablation without retrieval)")
        anchor_weight: float = pydantic.Field(
            0.0, ge=0, description="weight of the alignment term 1 - cos(q(anchor view), its KB vector) on the "
                                   "anchor images (0 = the paper: nothing aligns q with the KB space)")
        anchor_batch: pydantic.PositiveInt = pydantic.Field(128, description="anchor images per training step")
        anchor_augment: Literal["views", "light", "none"] = pydantic.Field(
            "none", description="anchor augmentation: the contrastive views, light (flip + crop of 80-100 % of the "
                                 "area), or none (the clean image the KB vector was computed from)")

    def setup(self, specs):
        self.kb = specs["kb"].meta.get("knowledge_base")
        if self.kb is None:
            raise PortError("'kb' must come from a knowledge_base block")
        out = super().setup(specs)
        if self.p.anchor_weight > 0 and "anchor_image" not in specs:
            raise PortError("anchor_weight > 0 needs the 'anchor_image' input (the images behind the KB entries)")
        if self.dim != self.kb.d:
            raise PortError(f"embedding dim {self.dim} differs from the knowledge base's {self.kb.d}")
        return out

    def default_dim(self, specs):
        return specs["kb"].shape[0]

    def prepare(self, data):
        self.values = self.kb.decoded().to(self.ctx.device)
        self.anchors = None
        if self.p.anchor_weight > 0:
            self.anchors = self._images(data, "anchor_image")
            if len(self.anchors) != len(self.values):
                raise UserError(f"{len(self.anchors)} anchor images but {len(self.values)} knowledge-base entries: "
                                "anchors must be the images the KB was built from, in order",
                                f"{self.ctx.where}: {self.name}.inputs.anchor_image")

    def anchor_loss(self, gen: torch.Generator) -> torch.Tensor:
        """1 - cos(q, v) between the query of an augmented anchor image and the KB vector built from it."""
        idx = torch.randint(len(self.anchors), (min(self.p.anchor_batch, len(self.anchors)),), generator=gen)
        x = self.anchors[idx].to(self.ctx.device)
        if self.p.anchor_augment == "views":
            x = augmented_view(x, gen)
        elif self.p.anchor_augment == "light":
            x = augment(x, gen, scale=(0.8, 1.0), brightness=0.0, contrast=0.0)
        _, q = self.model(x)
        return 1 - Fn.cosine_similarity(q, self.values[idx.to(self.values.device)], dim=1).mean()

    def retrieve(self, q: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """The ``top_n`` knowledge-base vectors nearest to the noisy query, ``[B, n, d]``."""
        noise = torch.randn(q.shape, generator=gen).to(q.device) * math.sqrt(self.p.noise_var)
        ids = self.kb.search(q.detach() + noise, self.p.top_n).to(q.device)
        return self.values[ids.clamp_min(0)]

    def query(self, q: torch.Tensor) -> torch.Tensor:
        """The vector that searches the knowledge base and attends over the results (q, or q / |q|)."""
        return Fn.normalize(q, dim=1) if self.p.query_norm else q

    def scores(self, qa: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attention scores of queries ``qa`` (from :meth:`query`) over their retrieved vectors ``v``."""
        return kb_scores(qa, v, self.p.attention, self.p.attention_temperature)

    def loss(self, v1, v2, gen):
        _, q = self.model(v1)
        _, p = self.model(v2)
        loss = q.new_zeros(())
        if self.p.kb_weight > 0:
            qa = self.query(q)
            q_star = kb_attention(qa, self.retrieve(qa, gen), self.p.attention, self.p.attention_temperature)
            loss = loss + self.p.kb_weight * dcl_loss(q_star, p, self.p.temperature)
        if self.p.instance_weight > 0:
            loss = loss + self.p.instance_weight * dcl_loss(q, p, self.p.temperature)
        if self.p.anchor_weight > 0:
            loss = loss + self.p.anchor_weight * self.anchor_loss(gen)
        return loss
