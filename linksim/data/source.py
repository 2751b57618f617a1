"""Source blocks: dataset images/labels, random bits, and per-sensor pixel noise."""
from __future__ import annotations

import pydantic
import torch

from ..block import IN_TRAINING, Block, Impairment, Params, Port, Spec
from ..errors import UserError


class DatasetSource(Block):
    """Images and labels of the scenario's dataset (train split while training, test split when evaluating)."""

    type_name = "dataset"
    role = "source"
    outputs = {"image": "image in [0,1], (C,H,W)", "label": "class index"}

    class Params(Params):
        dataset: str | None = pydantic.Field(None, description="dataset name (default: scenario data.dataset)")
        root: str | None = pydantic.Field(None, description="data folder (default: scenario data.root)")

    def __init__(self, name, params, ctx):
        super().__init__(name, params, ctx)
        from .datasets import dataset_info, dataset_files

        data = ctx.data
        self.dataset = params.dataset or (data.dataset if data is not None else "fashion_mnist")
        self.root = params.root or (data.root if data is not None else None)
        try:
            self.info = dataset_info(self.dataset)
        except UserError as e:  # name it where it was written
            raise UserError(str(e), None if params.dataset else f"{ctx.where}: data.dataset") from None
        self.limits = {"train": getattr(data, "train_samples", None), "test": getattr(data, "test_samples", None)}
        missing = [f for f in dataset_files(self.dataset, self.root) if not f.exists()]
        if missing:
            self._arrays("test")  # raises the loader's UserError saying where it looked

    def setup(self, specs):
        c, h, w = self.info.shape
        return {"image": Spec("image", (c, h, w)),
                "label": Spec("label", (), {"num_classes": self.info.num_classes,
                                            "class_names": self.info.class_names})}

    def cache_salt(self):
        return [self.dataset, self.limits["train"]]  # the test-set size does not change what is trained

    def _arrays(self, split: str):
        key = ("dataset", self.dataset, self.root, split)
        if key not in self.ctx.shared:
            from .datasets import load_split

            x, y = load_split(self.dataset, split, self.root)
            lim = self.limits.get(split)
            if lim is not None and lim < len(y):
                # a fixed, class-balanced-in-expectation subset: seeded permutation of the split
                g = torch.Generator().manual_seed(12345)
                idx = torch.randperm(len(y), generator=g)[:lim].sort().values.numpy()
                x, y = x[idx], y[idx]
            self.ctx.shared[key] = (torch.from_numpy(x), torch.from_numpy(y).long())
        return self.ctx.shared[key]

    def num_samples(self, split):
        return len(self._arrays(split)[1])

    def forward(self):
        b = self.ctx.batch
        x, y = self._arrays(b.split)
        img = x[b.indices].to(self.ctx.device, torch.float32) / 255.0
        return {"image": img, "label": y[b.indices].to(self.ctx.device)}

    def report(self):
        return {"source_dims": float(torch.tensor(self.info.shape).prod())}


class BitSource(Block):
    """Uniform random bits, ``bits_per_sample`` per sample (one sample = one frame)."""

    type_name = "bit_source"
    role = "source"
    stochastic = True
    outputs = {"bits": "random 0/1 bits"}

    class Params(Params):
        bits_per_sample: pydantic.PositiveInt = pydantic.Field(description="bits in each frame")
        packed: bool = pydantic.Field(False, description="draw 31 bits per random integer (~4x faster on CPU; "
                                                         "a different random stream than the default)")

    _SHIFTS = torch.arange(31, dtype=torch.int32)

    def setup(self, specs):
        return {"bits": Spec("bits", (self.p.bits_per_sample,))}

    def forward(self):
        n, L = self.ctx.batch.size, self.p.bits_per_sample
        dev = self.ctx.device
        if self.p.packed:  # uniform integers in [0, 2^31): their 31 bits are independent and uniform
            words = torch.randint(0, 2 ** 31, (n, -(-L // 31)), device=dev, dtype=torch.int32)
            bits = (words.unsqueeze(-1) >> self._SHIFTS.to(dev)) & 1
            return {"bits": bits.reshape(n, -1)[:, :L].to(torch.float32)}
        # drawn directly as float32 (the same values as int64 + .float(), one pass less)
        return {"bits": torch.randint(0, 2, (n, L), device=dev, dtype=torch.float32)}


class PixelNoise(Impairment, Block):
    """Additive white Gaussian noise on images at an image SNR (dB, signal power = mean pixel power); clipped.

    Each copy (sensor) draws from its own generator seeded by (run seed, block name, SNR, split, batch), so
    sensor i sees the same noise at every number of nodes (paired comparisons across a nodes sweep) and
    downstream deterministic blocks can be memoised across sweep points.
    """

    type_name = "pixel_noise"
    role = "source"
    inputs = {"image": Port(("image",))}
    outputs = {"image": "noisy image in [0,1]"}

    class Params(Params):
        snr_db: float | None = pydantic.Field(description="image SNR in dB; null = no noise")
        clip: bool = pydantic.Field(True, description="clip the noisy image to [0,1]")
        in_training: bool = IN_TRAINING

    def setup(self, specs):
        return {"image": specs["image"]}

    def random_in_eval(self) -> bool:
        return False  # seeded per copy and batch: a deterministic function of (seed, name, SNR, batch)

    def random_in_training(self) -> bool:
        return False  # same (the epoch is part of the seed), so unshuffled training passes are memoised

    def train_signature(self):
        # the noise drawn depends on the copy's name: part of downstream cache keys when it acts in training
        return {**self.p.model_dump(mode="json"), "name": self.name} if self.p.in_training else {"bypassed": True}

    def forward(self, image):
        if self.p.snr_db is None or self.bypassed():
            return {"image": image}
        g = self.batch_generator(self.p.snr_db)
        power = image.pow(2).flatten(1).mean(1).clamp_min(1e-12)
        sigma = (power / 10 ** (self.p.snr_db / 10)).sqrt().view(-1, *([1] * (image.dim() - 1)))
        noise = torch.randn(image.shape, generator=g).to(image.device)
        noisy = image + sigma * noise
        return {"image": noisy.clamp(0, 1) if self.p.clip else noisy}
