"""Fusion centres: feature fusion (sum of received feature vectors) and decision fusion (majority vote)."""
from __future__ import annotations

import torch


from ..block import LABEL, Block, Params, Port, labelled


class _FusionParams(Params):
    label: str | None = LABEL
from ..errors import PortError


class FeatureSum(Block):
    """Feature fusion: the element-wise sum of the feature vectors received from all nodes."""

    type_name = "feature_sum"
    role = "receiver"
    inputs = {"features": Port(("real",), "one per node", multi=True)}
    outputs = {"features": "summed features"}
    Params = _FusionParams

    def setup(self, specs):
        shapes = {s.shape for s in specs["features"]}
        if len(shapes) != 1:
            raise PortError(f"all nodes must send features of one shape, got {sorted(shapes)}")
        self.nodes = len(specs["features"])
        return {"features": specs["features"][0]}

    def forward(self, features):
        return {"features": torch.stack(features).sum(0)}

    def report(self):
        return labelled(self, {"nodes": float(self.nodes)})


class MajorityVote(Block):
    """Decision fusion: majority vote of node decisions; ties go to the tied class voted by the lowest node.

    Invalid decisions (class index outside [0, C), e.g. after a corrupted link) do not vote; a sample with
    no valid vote gets class 0.
    """

    type_name = "majority_vote"
    role = "receiver"
    inputs = {"pred": Port(("label",), "one decision per node", multi=True)}
    outputs = {"pred": "fused decision"}
    Params = _FusionParams

    def setup(self, specs):
        self.C = specs["pred"][0].meta.get("num_classes")
        if not self.C:
            raise PortError("node decisions carry no num_classes")
        self.nodes = len(specs["pred"])
        return {"pred": specs["pred"][0]}

    def forward(self, pred):
        votes = torch.stack([p.reshape(-1).long() for p in pred], 1)  # [B, nodes]
        valid = (votes >= 0) & (votes < self.C)
        v = votes.clamp(0, self.C - 1)
        counts = torch.zeros(votes.shape[0], self.C, device=votes.device)
        counts.scatter_add_(1, v, valid.float())
        top = counts.max(1, keepdim=True).values
        tied = (counts == top) & (top > 0)  # [B, C]
        # first node (lowest index) whose valid vote is a tied class
        hit = valid & tied.gather(1, v)  # [B, nodes]
        first = torch.where(hit.any(1), hit.float().argmax(1), torch.zeros_like(hit[:, 0], dtype=torch.long))
        out = v.gather(1, first[:, None]).squeeze(1)
        return {"pred": torch.where(hit.any(1), out, torch.zeros_like(out))}

    def report(self):
        return labelled(self, {"nodes": float(self.nodes)})
