"""The block contract: typed ports, explicit parameters, optional training and metric sinks.

A block is one small object with an explicit configuration (a pydantic model ``Params``), named input
ports (``inputs``) and named outputs. The engine (:mod:`linksim.graph`) calls, in order:

``setup(specs)``   shape/dtype inference: receives the :class:`Spec` of every connected input (a list of
                   specs for a ``multi`` port) and returns the spec of every output; raise
                   :class:`~linksim.errors.PortError` if the inputs do not fit.
``fit(data, ctx)`` only for ``trainable`` blocks, before evaluation; ``data`` streams this block's inputs
                   computed by the upstream graph on the training split.  ``state()``/``load_state()``
                   let the engine cache trained weights by a hash of config + upstream + data.
``forward(**x)``   one batch: tensors in, dict of tensors out (first dimension = batch).
``reset/update/compute``  metric sinks accumulate over the test split and return :class:`Metric` rows.
``report()``       static per-sample figures (``bits_per_sample``, ``channel_uses_per_sample``, ...), summed
                   over the blocks of a system; a key ``"bits_per_sample|maxpro"`` reports the figure
                   for the rows labelled ``system=maxpro`` (several schemes sharing one graph).
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Iterator

import pydantic

from .errors import PortError

# Kinds of data flowing on ports. Shapes exclude the batch dimension.
KINDS = {
    "bits": "float tensor of 0/1 values",
    "llr": "float log-likelihood ratios, log p(b=1)/p(b=0) (Sionna convention)",
    "complex": "complex baseband symbols (one complex channel use each)",
    "real": "real-valued vector (features, logits, noise variances)",
    "image": "float image in [0, 1], shape (C, H, W)",
    "label": "int64 class index",
}


@dataclasses.dataclass(frozen=True)
class Spec:
    """What flows on a port: kind, per-sample shape, and free-form metadata (e.g. ``num_classes``)."""

    kind: str
    shape: tuple[int, ...]
    meta: dict = dataclasses.field(default_factory=dict, compare=False, hash=False)

    def __str__(self) -> str:
        return f"{self.kind}{list(self.shape)}"

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


@dataclasses.dataclass(frozen=True)
class Port:
    """An input port: accepted kinds, whether it may stay unconnected, whether it takes several sources."""

    kinds: tuple[str, ...]
    doc: str = ""
    optional: bool = False
    multi: bool = False


@dataclasses.dataclass
class Metric:
    """One result row produced by a sink: ``labels`` add or override columns (e.g. ``system``, ``layer``).

    ``stat`` (:mod:`linksim.stats`) carries what the row's 95 % confidence interval needs: a ``Rate``
    (errors among trials, optionally per frame) or a ``Mean`` (count, sum, sum of squares of per-unit
    values). Rows without one (counts, figures such as ``effective_features``) get an empty interval. Build
    rows with a statistic through :meth:`rate` and :meth:`mean`, which also set ``value`` and ``n``.
    """

    name: str
    value: float
    n: int
    labels: dict = dataclasses.field(default_factory=dict)
    stat: Any = None  # linksim.stats.Rate | linksim.stats.Mean | None

    @classmethod
    def rate(cls, name: str, errors: int, trials: int, labels: dict | None = None, *, frames: int | None = None,
             frame_sq: float | None = None, success: bool = False, value: float | None = None) -> "Metric":
        """An error rate errors/trials (``success``: 1 - errors/trials, e.g. accuracy); ``frames`` and
        ``frame_sq`` (sum of squared per-frame error counts) make frames the unit of the interval.
        ``value`` overrides the reported value (e.g. a float32 figure kept as earlier runs printed it)."""
        from .stats import Rate

        st = Rate(int(errors), int(trials), frames, frame_sq, success)
        return cls(name, st.value if value is None else float(value), int(trials), dict(labels or {}), st)

    @classmethod
    def mean(cls, name: str, values, labels: dict | None = None) -> "Metric":
        """The mean of per-unit values (1-D tensor or array); a tensor's value is its own ``mean()`` (as
        earlier runs printed it), the interval is computed in float64."""
        from .stats import Mean

        value = float(values.mean()) if hasattr(values, "detach") and values.numel() else None
        if hasattr(values, "detach"):
            values = values.detach().cpu().double().numpy()
        st = Mean.of(values)
        return cls(name, st.value if value is None else value, st.count, dict(labels or {}), st)


class Impairment:
    """Mixin for blocks that add noise: ``in_training`` decides whether they act on the training split.

    Off by default: downstream trainable blocks (classifiers, quantizers) are trained on clean data, as in
    the papers, and their cached weights do not depend on the test SNR.
    """

    stochastic = True

    def random_in_training(self) -> bool:
        return bool(self.p.in_training)

    def bypassed(self) -> bool:
        b = getattr(self.ctx, "batch", None)
        return b is not None and b.split == "train" and not self.p.in_training

    def train_signature(self):
        return self.p.model_dump(mode="json") if self.p.in_training else {"bypassed": True}

    def batch_generator(self, *parts) -> torch.Generator | None:
        """A generator seeded by (run seed, block name, ``parts``, split, batch, epoch): the block's draws are
        then a deterministic function of the batch (memoisable downstream; copy i draws the same at every
        number of copies). None outside a graph pass (no batch): the global generator."""
        import torch

        from .context import derive_seed

        b = getattr(self.ctx, "batch", None)
        if b is None:
            return None
        return torch.Generator().manual_seed(
            derive_seed(self.ctx.seed, self.name, *parts, b.split, int(b.indices[0]), b.size, b.epoch))


IN_TRAINING = pydantic.Field(False, description="also impair the training data of downstream trainable blocks")
LABEL = pydantic.Field(None, description="report figures for rows with scheme=label (several schemes in one system)")


def labelled(block, figures: dict) -> dict:
    """Report keys ``name|label`` when the block has a ``label`` parameter set (see ``Block.report``)."""
    label = getattr(block.p, "label", None)
    return {f"{k}|{label}" if label else k: v for k, v in figures.items()}


class NoParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", allow_inf_nan=False)


class Params(pydantic.BaseModel):
    """Base for block parameter models: unknown keys and non-finite numbers are errors."""

    model_config = pydantic.ConfigDict(extra="forbid", allow_inf_nan=False)


class TrainData:
    """What a trainable block receives: its inputs computed by the upstream graph on the training split."""

    def __init__(self, epoch_fn, num_samples: int, batch_size: int):
        self._epoch_fn = epoch_fn
        self.num_samples = num_samples
        self.batch_size = batch_size

    def epoch(self, index: int = 0, shuffle: bool = True) -> Iterator[dict]:
        """Yield batches (dicts of this block's inputs) for one pass over the training data."""
        return self._epoch_fn(index, shuffle)

    def materialize(self, max_samples: int | None = None) -> dict:
        """All training inputs at once (one pass, no shuffling; the first ``max_samples`` if given)."""
        import torch

        parts: dict[str, list] = {}
        seen = 0
        for batch in self.epoch(0, shuffle=False):
            if max_samples is not None and seen >= max_samples:
                break
            seen += len(next(iter(batch.values())))
            for k, v in batch.items():
                parts.setdefault(k, []).append(v)
        out = {}
        for k, vs in parts.items():
            if isinstance(vs[0], list):  # multi port: list of tensors per batch
                out[k] = [torch.cat([b[i] for b in vs]) for i in range(len(vs[0]))]
            else:
                out[k] = torch.cat(vs)
        return out


class Block:
    """Base class of every block. Subclasses set the class attributes and override what they need."""

    type_name: ClassVar[str] = ""
    role: ClassVar[str] = ""  # source | transmitter | channel | link | receiver | metric | analysis
    Params: ClassVar[type[pydantic.BaseModel]] = NoParams
    inputs: ClassVar[dict[str, Port]] = {}
    outputs: ClassVar[dict[str, str]] = {}  # name -> description
    trainable: ClassVar[bool] = False
    cacheable: ClassVar[bool] = True  # False: fitted every run (e.g. scikit-learn models, not weights_only-safe)
    # run.json section of the block's ``summary`` (what fit recorded); the engine records it again, marked
    # from_cache, when the block's state comes from the weight cache
    summary_section: ClassVar[str] = "training"
    # expensive deterministic blocks: their test-split outputs are memoised across sweep points of a run
    # when everything upstream is deterministic (e.g. an encoder behind seeded per-node pixel noise)
    memoize_eval: ClassVar[bool] = False

    def __init__(self, name: str, params: pydantic.BaseModel, ctx: Any):
        self.name = name
        self.p = params
        self.ctx = ctx
        self.in_specs: dict = {}
        self.out_specs: dict[str, Spec] = {}

    # -- graph-time -------------------------------------------------------------------------------
    def setup(self, specs: dict) -> dict[str, Spec]:
        raise NotImplementedError

    # -- run-time ---------------------------------------------------------------------------------
    def forward(self, **x) -> dict:
        return {}

    def report(self) -> dict[str, float]:
        return {}

    def num_samples(self, split: str) -> int | None:
        """Sources that read a finite dataset say how many samples a split holds."""
        return None

    # -- training ---------------------------------------------------------------------------------
    def fit(self, data: TrainData, ctx: Any) -> None:
        raise NotImplementedError

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        pass

    stochastic: ClassVar[bool] = False  # draws random numbers in forward (then never memoised)
    # output ports some block reads, set by the engine around ``forward`` on its own passes (None: all)
    wanted: set[str] | None = None

    def wants(self, port: str) -> bool:
        """Whether ``forward`` must produce ``port``: an output nothing reads may be left out (a block whose
        outputs are all cheap need not ask)."""
        return self.wanted is None or port in self.wanted

    def random_in_training(self) -> bool:
        return self.stochastic

    def random_in_eval(self) -> bool:
        return self.stochastic

    def training_ports(self) -> set[str] | None:
        """The input ports ``fit`` reads (None = all). Only these feed the training pass and the cache key,
        e.g. an encoder with a clean ``train_image`` port ignores the noise on its evaluation input."""
        return None

    def train_signature(self) -> Any:
        """What determines this block's behaviour on the training split (part of downstream cache keys)."""
        return self.p.model_dump(mode="json")

    def cache_salt(self) -> Any:
        """Extra data that makes the training cache key unique (e.g. the dataset fingerprint)."""
        return None

    @classmethod
    def code_version(cls) -> str:
        """Hash of the code behind this block: its module and the modules of its package and of linksim that
        it imports (:mod:`linksim.codehash`). Part of the cache key, so changed training code retrains."""
        from .codehash import code_version

        return code_version(cls)

    # -- metric sinks -----------------------------------------------------------------------------
    is_sink: ClassVar[bool] = False

    def reset(self) -> None:
        pass

    def update(self, **x) -> None:
        pass

    def compute(self) -> list[Metric]:
        return []

    def error_counts(self) -> dict[str, int]:
        """Sinks of error rates: the running error count of each metric they count errors for (after
        ``reset``, before any batch, the keys alone); stop rules (``stop.metric``) read it after each batch."""
        return {}


class ModelState:
    """``state``/``load_state`` for a block whose weights are ``self.model`` (built by ``self._build()``)
    with a training summary ``self.summary``: tensors and primitives only (weights_only-safe)."""

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "summary": self.summary}

    def load_state(self, state: dict) -> None:
        self._build()
        self.model.load_state_dict(state["model"])
        self.model.eval()
        self.summary = state.get("summary", {})


def expect(spec: Spec, kinds: tuple[str, ...] | str, what: str) -> None:
    """Helper for ``setup``: raise PortError unless ``spec.kind`` is one of ``kinds``."""
    kinds = (kinds,) if isinstance(kinds, str) else kinds
    if spec.kind not in kinds:
        raise PortError(f"{what} expects {' or '.join(kinds)}, got {spec}")


# -- paired blocks ---------------------------------------------------------------------------------
# A transmitter block puts itself in the metadata of what it sends (``pair:<type>``), which channels and
# other blocks pass on; its receiver finds it there and takes its configuration from it, as Sionna's
# ``Demapper(constellation=...)`` and ``LDPC5GDecoder(encoder)`` share one object. The previous entry of the
# same type is kept under ``pair:<type>:outer`` and restored by the receiver, so pairs may nest.
def push_pair(meta: dict, type_name: str, block: Any) -> dict:
    key = f"pair:{type_name}"
    out = {k: v for k, v in meta.items() if k != f"{key}:outer"}
    if key in meta:
        out[f"{key}:outer"] = (meta[key], meta.get(f"{key}:outer"))
    out[key] = block
    return out


def find_pair(meta: dict, type_name: str) -> Any:
    """The transmitter block of ``type_name`` paired with a receiver reading this metadata, or None."""
    return meta.get(f"pair:{type_name}")


def pop_pair(meta: dict, type_name: str) -> dict:
    """The metadata after the receiver of ``type_name``: that pair's entry replaced by the outer one."""
    key = f"pair:{type_name}"
    out = {k: v for k, v in meta.items() if k not in (key, f"{key}:outer")}
    if f"{key}:outer" in meta:
        outer, outer_outer = meta[f"{key}:outer"]
        out[key] = outer
        if outer_outer is not None:
            out[f"{key}:outer"] = outer_outer
    return out


def paired_value(own: Any, partner: Any, param: str, partner_name: str | None) -> Any:
    """A receiver's parameter: its partner's value when paired (writing a different one is an error naming
    the parameter), else its own (which must then be written)."""
    from .errors import ParamError

    if partner_name is None:
        if own is None:
            raise ParamError(param, f"set {param}, or connect this block (through any channel) to its "
                                    f"transmitter, from which it takes {param}")
        return own
    if own is not None and own != partner:
        raise ParamError(param, f"{param} = {own!r} differs from {partner!r} of '{partner_name}', the block it "
                                f"is paired with; write it once, there")
    return partner
