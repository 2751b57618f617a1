"""``dataset_split`` source: one part of a dataset (classes and index ranges) per role of paper 003.

The server's public data, a device's private data and the held-out evaluation data are three sources in one
system, each picking its own classes and sample range for the graph's training and test passes, e.g.
public = training images of classes 0-4, private = training images of classes 5-9, held-out = the test split
(first half trains the probe, second half evaluates it).
"""
from __future__ import annotations

from typing import Literal

import pydantic
import torch

from ..data.source import DatasetSource
from ..errors import UserError


class DatasetSplit(DatasetSource):
    """Images and labels of selected classes / index ranges of a dataset split, per graph pass."""

    type_name = "dataset_split"

    class Params(DatasetSource.Params):
        classes: list[int] | None = pydantic.Field(None, description="keep only these class indices (default all)")
        train_split: Literal["train", "test"] = pydantic.Field(
            "train", description="dataset split read during the graph's training pass")
        train_range: tuple[int, int] | None = pydantic.Field(
            None, description="[start, stop) of the class-filtered training-pass samples (default all)")
        test_split: Literal["train", "test"] = pydantic.Field(
            "test", description="dataset split read during evaluation")
        test_range: tuple[int, int] | None = pydantic.Field(
            None, description="[start, stop) of the class-filtered evaluation samples (default all)")

    def __init__(self, name, params, ctx):
        super().__init__(name, params, ctx)
        bad = [c for c in params.classes or [] if not 0 <= c < self.info.num_classes]
        if bad:
            raise UserError(f"classes: {bad} out of range for {self.dataset} ({self.info.num_classes} classes)")
        for key in ("train_range", "test_range"):
            r = getattr(params, key)
            if r is not None and not 0 <= r[0] < r[1]:
                raise ValueError(f"{key} must be [start, stop) with 0 <= start < stop, got {list(r)}")

    def cache_salt(self):
        return [self.dataset, self.limits, self.p.model_dump(mode="json")]

    def _arrays(self, split: str):
        src = self.p.train_split if split == "train" else self.p.test_split
        rng = self.p.train_range if split == "train" else self.p.test_range
        key = ("dataset_split", self.dataset, self.root, src, tuple(self.p.classes or ()), rng,
               self.limits.get(split))
        if key not in self.ctx.shared:
            x, y = DatasetSource._arrays(self, src)  # full split (cached per run), data.*_samples applied
            if self.p.classes is not None:
                keep = torch.isin(y, torch.tensor(self.p.classes))
                x, y = x[keep], y[keep]
            if rng is not None:
                if rng[0] >= len(y):
                    raise UserError(f"{split}_range starts at {rng[0]} but only {len(y)} samples are selected",
                                    f"{self.ctx.where}: block {self.name}, params.{split}_range")
                x, y = x[rng[0]:rng[1]], y[rng[0]:rng[1]]
            self.ctx.shared[key] = (x, y)
        return self.ctx.shared[key]
