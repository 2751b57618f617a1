"""Drive one block (or a tiny graph) directly, without a scenario file: tests of block contracts use this.

``make(type, params, specs)`` builds a registered block the way the engine does (pydantic params, ``setup``
with the given input specs); ``fwd`` runs one batch through ``forward``; ``sink`` feeds batches to a metric
sink and returns its rows by name; ``fit`` trains a block on given tensors through the engine's
:class:`~linksim.block.TrainData`; ``graph``/``run`` build and run a small graph of blocks (dict form).
"""
from __future__ import annotations

from typing import Any

import torch

from ..block import Block, Spec, TrainData
from ..context import RunContext, reseed
from ..graph import BatchInfo, Graph, NodeCfg
from ..registry import block_class


def ctx(**kw) -> RunContext:
    return RunContext(**kw)


def make(type_name: str, params: dict | None = None, specs: dict | None = None, context: RunContext | None = None,
         name: str = "b") -> Block:
    cls = block_class(type_name)
    blk = cls(name, cls.Params(**(params or {})), context or RunContext())
    blk.in_specs = dict(specs or {})
    blk.out_specs = blk.setup(dict(specs or {})) or {}
    return blk


def batch(blk: Block, n: int, split: str = "test", start: int = 0, epoch: int = 0) -> BatchInfo:
    b = BatchInfo(split, torch.arange(start, start + n), epoch)
    blk.ctx.batch = b
    return b


def fwd(blk: Block, split: str = "test", n: int | None = None, **x) -> dict:
    """One batch through ``blk.forward`` (batch size from the first input, or ``n`` for sources)."""
    if n is None:
        first = next((v[0] if isinstance(v, list) else v for v in x.values()), None)
        n = int(first.shape[0]) if first is not None else 1
    batch(blk, n, split)
    with torch.no_grad():
        return blk.forward(**x)


def sink(blk: Block, *batches: dict) -> dict[str, Any]:
    """Feed each dict of inputs to ``update`` and return ``compute``'s rows: name -> Metric (a list when a
    name occurs several times)."""
    blk.reset()
    for b in batches:
        blk.update(**b)
    out: dict[str, Any] = {}
    for m in blk.compute():
        if m.name in out:
            prev = out[m.name]
            out[m.name] = (prev if isinstance(prev, list) else [prev]) + [m]
        else:
            out[m.name] = m
    return out


def fit(blk: Block, batch_size: int = 64, **inputs) -> Block:
    """Train ``blk`` on given tensors (its input ports -> tensors [N, ...]), in batches of ``batch_size``."""
    n = int(next(iter(inputs.values())).shape[0])

    def epoch_fn(epoch: int, shuffle: bool):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch)) if shuffle else torch.arange(n)
        for lo in range(0, n, batch_size):
            idx = order[lo:lo + batch_size]
            blk.ctx.batch = BatchInfo("train", idx, epoch)
            yield {k: v[idx] for k, v in inputs.items()}

    blk.fit(TrainData(epoch_fn, n, batch_size), blk.ctx)
    return blk


def data_cfg(dataset: str = "digits", train_samples: int | None = None, test_samples: int | None = None):
    """A scenario ``data:`` section (what dataset sources read from the run context)."""
    from ..scenario import DataCfg

    return DataCfg(dataset=dataset, train_samples=train_samples, test_samples=test_samples)


def graph(blocks: dict, context: RunContext | None = None, data=None) -> Graph:
    """A graph from ``{name: {type, params, inputs, repeat}}`` (the YAML ``blocks:`` mapping); ``data``: a
    :func:`data_cfg` for dataset sources."""
    if context is None:
        context = RunContext(data=data)
    nodes = [NodeCfg(n, b["type"], b.get("params", {}), b.get("inputs", {}), f"blocks.{n}", b.get("repeat"))
             for n, b in blocks.items()]
    return Graph(nodes, context, "t: ")


def run(g: Graph, n: int, seed: int = 0, split: str = "test") -> dict:
    """One batch of ``n`` samples through a graph (no sinks); returns ``{(block, port): tensor}``."""
    reseed(seed)
    with torch.no_grad():
        return g.run_batch(BatchInfo(split, torch.arange(n)), sinks=False)


def spec(kind: str, *shape: int, **meta) -> Spec:
    return Spec(kind, tuple(shape), meta)


def assert_per_sample(blk: Block, split: str = "test", **x) -> dict:
    """Check that ``blk.forward`` treats samples independently of their place in the batch: the outputs of
    the batch in reverse order are the outputs in reverse order (a block that mixes up samples fails).
    Returns the outputs of the batch in order."""
    out = fwd(blk, split, **x)
    rev = fwd(blk, split, **{k: (v.flip(0) if isinstance(v, torch.Tensor) else [t.flip(0) for t in v])
                             for k, v in x.items()})
    for k, v in out.items():
        if isinstance(v, torch.Tensor) and v.dim() >= 1 and v.shape[0] > 1:
            assert torch.allclose(rev[k].flip(0), v, rtol=1e-4, atol=1e-5), f"{blk.type_name}.{k} depends on batch order"
    return out
