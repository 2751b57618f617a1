"""Graph engine: turns one system's block list into a validated DAG and runs it batch-wise.

It knows no concrete block: types are looked up in :mod:`linksim.registry`, and everything a block does
goes through the :class:`linksim.block.Block` contract. Errors in the description become
:class:`~linksim.errors.UserError` naming the YAML key.
"""
from __future__ import annotations

import dataclasses
import re
import time
from typing import Any, Callable, Iterator

import pydantic
import torch

from .block import Block, TrainData
from .errors import PortError, UserError
from .heap import release_free_heap, trim_if_grown
from .registry import block_class
from .results import digest as _digest

MAX_REPEAT = 4096  # copies of one block (checked after sweep substitution, so also for repeat: $var)
_CHUNK = 2**20  # sample indices made at a time (memory bounded by this, not by the number of samples)
_REF = re.compile(r"^(?P<block>[A-Za-z_][\w/-]*)(\[(?P<idx>\d+|\*)\])?\.(?P<port>[A-Za-z_]\w*)$")


@dataclasses.dataclass
class NodeCfg:
    """One block as written in YAML (after sweep substitution); ``key`` is its YAML path."""

    name: str
    type: str
    params: dict
    inputs: dict
    key: str
    repeat: int | None = None
    # set for blocks expanded from a composite (linksim.composite): the "file: " its key is in, where each
    # parameter written as a plain $param comes from (the instance's key), and a note for error messages
    file: str | None = None
    origins: dict = dataclasses.field(default_factory=dict)
    context: str | None = None
    copies: list | None = None  # per-copy parameters of a repeated block ($i, per_copy)


@dataclasses.dataclass
class BatchInfo:
    """What sources read during a batch: the split and the sample indices to emit."""

    split: str
    indices: torch.Tensor
    epoch: int = 0

    @property
    def size(self) -> int:
        return int(self.indices.numel())



def _params_key(key: str, err: Exception) -> str:
    """The YAML key a block's parameter error names: ``params.<param>`` for a ParamError, else ``params``."""
    param = getattr(err, "param", None)
    return f"{key}.params" + (f".{param}" if param else "")


class OutputMemo:
    """A run-wide memo of block outputs (``Block.memoize_eval``: one on the test split, one on unshuffled
    training passes), least recently used first out once it holds more than its budget of tensors
    (``LINKSIM_MEMO_MB``, default 512 MiB, for the test split; ``LINKSIM_TRAIN_MEMO_MB``, default 256 MiB,
    for training passes): memory is bounded by these budgets, not by the data set times the sweep. Dropping
    an entry only costs recomputing it. (functools.lru_cache bounds entries, not bytes, hence this class.)"""

    def __init__(self, budget_mb: float | None = None, env: str = "LINKSIM_MEMO_MB", default_mb: float = 512):
        import os
        from collections import OrderedDict

        mb = budget_mb if budget_mb is not None else float(os.environ.get(env, default_mb))
        self.budget = int(mb * 2**20)
        self.bytes = 0
        self._d: OrderedDict = OrderedDict()

    @staticmethod
    def _size(out: dict) -> int:
        return sum(v.numel() * v.element_size() for v in out.values() if isinstance(v, torch.Tensor))

    def get(self, key):
        out = self._d.get(key)
        if out is not None:
            self._d.move_to_end(key)
        return out

    def __contains__(self, key) -> bool:
        return key in self._d

    def __len__(self) -> int:
        return len(self._d)

    def __setitem__(self, key, out: dict) -> None:
        if key in self._d:
            self.bytes -= self._size(self._d.pop(key))
        size = self._size(out)
        if size > self.budget:
            return  # larger than the whole budget: not kept
        self._d[key] = out
        self.bytes += size
        while self.bytes > self.budget:
            _, old = self._d.popitem(last=False)
            self.bytes -= self._size(old)


class Graph:
    """A validated DAG of blocks. ``where`` prefixes error keys (file name and system path)."""

    def __init__(self, nodes: list[NodeCfg], ctx: Any, where: str):
        self.ctx = ctx
        self.where = where
        self.cfg: dict[str, NodeCfg] = {}
        self.blocks: dict[str, Block] = {}
        # block -> port -> list of (src_block, src_port); multi flag kept per port
        self.edges: dict[str, dict[str, list[tuple[str, str]]]] = {}
        self._build(self._expand(nodes))

    # ---------------------------------------------------------------- construction / validation
    def _fail(self, key: str, msg: str):
        node = getattr(self, "_cur", None)
        if node is not None:
            if node.file is not None and (key == node.key or key.startswith(node.key + ".")):
                rest = key[len(node.key) + 1:]
                head = rest.split(".")[1] if rest.startswith("params.") else None
                if head in node.origins:  # the value was written at the composite instance
                    raise UserError(f"{msg} (inner block {node.name}.params.{head})", node.origins[head])
                if f"@{rest}" in node.origins:
                    raise UserError(f"{msg} (inner block {node.name}.{rest})", node.origins[f"@{rest}"])
                inst = {o.rsplit(".", 1)[0] for o in node.origins.values() if ".params." in o}
                if rest.rstrip(".") == "params" and len(inst) == 1:  # a check of several parameters
                    raise UserError(f"{msg} (inner block {node.name})", inst.pop())
                raise UserError(f"{msg} ({node.context})" if node.context else msg, f"{node.file}{key}")
        raise UserError(msg, f"{self.where}{key}")

    def _expand(self, nodes: list[NodeCfg]) -> list[NodeCfg]:
        self.repeats: dict[str, int | None] = {}
        out = []
        for n in nodes:
            self._cur = n
            if n.repeat is None:
                self.repeats[n.name] = None
                out.append(n)
                continue
            if not isinstance(n.repeat, int) or isinstance(n.repeat, bool) or not 1 <= n.repeat <= MAX_REPEAT:
                self._fail(f"{n.key}.repeat", f"must be an integer from 1 to {MAX_REPEAT}, got {n.repeat!r}")
            self.repeats[n.name] = n.repeat
            if n.copies is not None and len(n.copies) != n.repeat:
                self._fail(f"{n.key}.per_copy", f"holds {len(n.copies)} values per parameter but the block is "
                                                f"repeated {n.repeat} times")
            for i in range(n.repeat):
                out.append(dataclasses.replace(n, name=f"{n.name}[{i}]",
                                               params=n.params if n.copies is None else n.copies[i]))
        return out

    def _resolve_ref(self, node: NodeCfg, port: str, ref: Any, multi: bool) -> list[tuple[str, str]]:
        key = f"{node.key}.inputs.{port}"
        if not isinstance(ref, str) or not _REF.match(ref):
            self._fail(key, f"expected 'block.port' (or 'block[i].port'), got {ref!r}")
        m = _REF.match(ref)
        src, idx, sport = m["block"], m["idx"], m["port"]
        if src not in self.repeats:
            self._fail(key, f"unknown block '{src}'")
        rep = self.repeats[src]
        if rep is None:
            if idx is not None:
                self._fail(key, f"block '{src}' is not repeated; drop the [{idx}]")
            names = [src]
        elif idx == "*" or (idx is None and multi and "[" not in node.name):
            names = [f"{src}[{i}]" for i in range(rep)]
        elif idx is not None:
            if int(idx) >= rep:
                self._fail(key, f"'{src}' has {rep} copies; index {idx} is out of range")
            names = [f"{src}[{idx}]"]
        else:
            own = re.search(r"\[(\d+)\]$", node.name)
            if own is None:
                self._fail(key, f"'{src}' is repeated {rep} times; connect it to a multi-input port "
                                f"or pick one copy with '{src}[i].{sport}'")
            names = [f"{src}[{own.group(1)}]"]
        return [(n, sport) for n in names]

    def _build(self, nodes: list[NodeCfg]) -> None:
        for node in nodes:
            self._cur = node
            if node.name in self.cfg:
                self._fail(node.key, f"duplicate block name '{node.name}'")
            self.cfg[node.name] = node
        # instantiate with validated parameters
        for node in nodes:
            self._cur = node
            cls = block_class(node.type, f"{self.where}{node.key}.type")
            if not isinstance(node.params, dict):
                self._fail(f"{node.key}.params", "must be a mapping of parameter names to values")
            try:
                params = cls.Params.model_validate(node.params)
            except pydantic.ValidationError as e:
                err = e.errors()[0]
                loc = ".".join(str(x) for x in err["loc"])
                msg = err["msg"]
                if err["type"] == "extra_forbidden":
                    known = ", ".join(cls.Params.model_fields) or "none"
                    msg = f"unknown parameter for block type '{node.type}' (known: {known})"
                elif err["type"] == "missing":
                    msg = f"missing required parameter of block type '{node.type}'"
                else:
                    msg = f"{msg} (got {err.get('input')!r})"
                self._fail(f"{node.key}.params.{loc}", msg)
            try:
                self.blocks[node.name] = cls(node.name, params, self.ctx)
            except (ValueError, PortError) as e:
                self._fail(_params_key(node.key, e), str(e))
            except UserError as e:
                if e.where:
                    raise
                self._fail(f"{node.key}.params", str(e))
        # wire inputs
        for node in nodes:
            self._cur = node
            cls = type(self.blocks[node.name])
            if not isinstance(node.inputs, dict):
                self._fail(f"{node.key}.inputs", "must be a mapping of port names to 'block.port'")
            wired: dict[str, list[tuple[str, str]]] = {}
            for port, ref in node.inputs.items():
                if port not in cls.inputs:
                    known = ", ".join(cls.inputs) or "none"
                    self._fail(f"{node.key}.inputs.{port}",
                               f"block type '{node.type}' has no input port '{port}' (ports: {known})")
                spec = cls.inputs[port]
                refs = ref if isinstance(ref, list) else [ref]
                if isinstance(ref, list) and not spec.multi:
                    self._fail(f"{node.key}.inputs.{port}", "takes one source, got a list")
                srcs = [s for r in refs for s in self._resolve_ref(node, port, r, spec.multi)]
                if len(srcs) > 1 and not spec.multi:
                    self._fail(f"{node.key}.inputs.{port}", "takes one source")
                for sblock, sport in srcs:
                    outs = type(self.blocks[sblock]).outputs
                    if sport not in outs:
                        self._fail(f"{node.key}.inputs.{port}",
                                   f"block '{sblock}' has no output '{sport}' (outputs: {', '.join(outs) or 'none'})")
                wired[port] = srcs
            for port, spec in cls.inputs.items():
                if port not in wired and not spec.optional:
                    self._fail(f"{node.key}.inputs", f"input '{port}' of block '{node.name}' is not connected")
            self.edges[node.name] = wired
        self.order = self._toposort()
        # shape / dtype inference
        for name in self.order:
            self._cur = self.cfg[name]
            blk = self.blocks[name]
            specs = {}
            for port, srcs in self.edges[name].items():
                got = [self.blocks[b].out_specs[p] for b, p in srcs]
                specs[port] = got if type(blk).inputs[port].multi else got[0]
                for s, (b, p) in zip(got, srcs):
                    allowed = type(blk).inputs[port].kinds
                    if allowed and s.kind not in allowed:
                        self._fail(f"{self.cfg[name].key}.inputs.{port}",
                                   f"expects {' or '.join(allowed)}, but '{b}.{p}' gives {s}")
            blk.in_specs = specs
            try:
                out = blk.setup(specs) or {}
            except PortError as e:
                self._fail(f"{self.cfg[name].key}.inputs", str(e))
            except ValueError as e:
                self._fail(_params_key(self.cfg[name].key, e), str(e))
            missing = set(type(blk).outputs) - set(out)
            if missing:
                raise RuntimeError(f"block type {type(blk).__name__} did not declare outputs {missing}")
            blk.out_specs = out

    def _toposort(self) -> list[str]:
        state: dict[str, int] = {}
        order: list[str] = []

        def visit(n: str, stack: list[str]):
            if state.get(n) == 2:
                return
            if state.get(n) == 1:
                cyc = stack[stack.index(n):] + [n]
                self._fail(f"{self.cfg[n].key}.inputs", "cycle in the graph: " + " -> ".join(cyc))
            state[n] = 1
            for srcs in self.edges[n].values():
                for b, _ in srcs:
                    visit(b, stack + [n])
            state[n] = 2
            order.append(n)

        for n in self.cfg:
            visit(n, [])
        return order

    # ---------------------------------------------------------------- execution
    def _train_edges(self, name: str) -> dict:
        """The input edges a block's ``fit`` reads (``Block.training_ports``; all by default)."""
        ports = self.blocks[name].training_ports()
        return self.edges[name] if ports is None else {p: s for p, s in self.edges[name].items() if p in ports}

    def ancestors(self, name: str, training: bool = False) -> set[str]:
        """Blocks upstream of ``name`` (through the ports its ``fit`` reads, with ``training``)."""
        seen: set[str] = set()
        first = self._train_edges(name) if training else self.edges[name]
        todo = [b for srcs in first.values() for b, _ in srcs]
        while todo:
            b = todo.pop()
            if b not in seen:
                seen.add(b)
                todo.extend(x for srcs in self.edges[b].values() for x, _ in srcs)
        return seen

    def num_samples(self, split: str, default: int | None) -> int:
        counts = [n for b in self.blocks.values() if (n := b.num_samples(split)) is not None]
        if counts:
            return min(counts)
        if default is None:
            raise UserError("system has no dataset source; set 'samples' (number of frames per point)",
                            f"{self.where.rstrip('.')}")
        return default

    def _inputs_of(self, name: str, values: dict, training: bool = False) -> dict:
        ins = {}
        for port, srcs in (self._train_edges(name) if training else self.edges[name]).items():
            got = [values[s] for s in srcs]
            ins[port] = got if type(self.blocks[name]).inputs[port].multi else got[0]
        return ins

    def consumed(self, name: str) -> set[str]:
        """The output ports of ``name`` that some block of this graph reads."""
        if not hasattr(self, "_consumed"):
            self._consumed = {n: set() for n in self.order}
            for srcs in (s for e in self.edges.values() for s in e.values()):
                for b, p in srcs:
                    self._consumed[b].add(p)
        return self._consumed[name]

    def run_batch(self, batch: BatchInfo, only: set[str] | None = None, sinks: bool = True,
                  memo: dict | None = None, prune: bool = False, roots: set[str] | None = None) -> dict:
        """Forward one batch through the blocks (all, or ``only`` these); returns all port values.

        ``memo`` (training passes only) reuses the outputs of blocks whose training-time behaviour is
        identical (same cache key, no randomness upstream), e.g. the N copies of a sensor encoder.
        ``prune`` (the engine's own training and evaluation passes) lets a block skip outputs no block of this
        graph reads (``Block.wants``); the returned values then lack them. Memoised outputs are never pruned
        (another graph may read another port of the same memo entry). With ``prune``, an evaluation pass (or
        a training pass with a ``memo``, reading the blocks ``roots``) also skips the blocks whose readers reuse
        memoised outputs.
        """
        self.ctx.batch = batch
        values: dict[tuple[str, str], Any] = {}
        reused: dict = {}
        if prune and only is None and memo is None and batch.split == "test":
            only, reused = self._demanded(batch, None)  # evaluation: skip what memoised outputs make unnecessary
        elif prune and memo is not None and roots is not None:
            only, reused = self._demanded(batch, memo, roots)
        for name in self.order:
            if only is not None and name not in only:
                continue
            blk = self.blocks[name]
            if name in reused:
                for port, v in reused[name].items():
                    values[(name, port)] = v
                continue
            ins = self._inputs_of(name, values)
            if blk.is_sink:
                if sinks:
                    blk.update(**ins)
                continue
            store, key = self._memo_slot(name, batch, memo)
            out = store.get(key) if store is not None else None
            if out is None:
                blk.wanted = self.consumed(name) if prune and store is None else None
                try:
                    out = blk.forward(**ins)
                finally:
                    blk.wanted = None
                if store is not None:
                    store[key] = out
            for port, v in out.items():
                values[(name, port)] = v
        return values

    def _memo_slot(self, name: str, batch: BatchInfo, memo: dict | None) -> tuple[dict | None, tuple | None]:
        """Where a block's outputs for this batch may be reused: the training-pass memo (blocks with no
        randomness upstream, keyed by training behaviour) or the run-wide test memo (``memoize_eval``
        blocks, keyed by everything that determines their test outputs); (None, None) otherwise."""
        where = (int(batch.indices[0]), batch.size)
        if memo is not None:
            # only the expensive deterministic blocks (``memoize_eval``: encoders, teachers): memory is bounded
            # by their outputs on the training pass, not by every port of the graph (a float payload alone is
            # 16384 values per sample); the cheap blocks are recomputed
            keep = self.blocks[name].memoize_eval and name not in self._random_upstream()
            key = (self.flow_key(name), getattr(self, "_data_key", None), *where, batch.epoch)
            return (memo, key) if keep else (None, None)
        if batch.split == "test" and name in self._eval_memoizable():
            store = self.ctx.shared.get("eval_memo")
            if store is None:
                store = self.ctx.shared["eval_memo"] = OutputMemo()
            return store, (self.eval_key(name), *where)
        return None, None

    def _demanded(self, batch: BatchInfo, memo: dict | None, roots: set[str] | None = None) -> tuple[set[str], dict]:
        """The blocks a batch must run, and the memoised outputs it reuses. The ``roots`` (default: sinks and
        blocks no block reads) run; another block runs when a running block reads it and its own outputs are
        not memoised. The memoised outputs are taken now, so the memo may evict them during the batch."""
        if not hasattr(self, "_readers"):
            self._readers = {n: set() for n in self.order}
            for n, ports in self.edges.items():
                for srcs in ports.values():
                    for b, _ in srcs:
                        self._readers[b].add(n)
        need, reused = set(), {}
        for name in reversed(self.order):
            readers = self._readers[name]
            root = name in roots if roots is not None else (not readers or self.blocks[name].is_sink)
            if not root and not any(r in need and r not in reused for r in readers):
                continue
            need.add(name)
            store, key = self._memo_slot(name, batch, memo)
            if store is not None and (out := store.get(key)) is not None:
                reused[name] = out
        return need, reused

    def batches(self, split: str, n: int, batch_size: int, shuffle_seed: int | None = None) -> Iterator[BatchInfo]:
        """Batches of sample indices. In order, each batch's indices are made when it is yielded, so memory
        is bounded by the batch whatever ``n``; a shuffled pass permutes ``n`` indices (the training split
        of a dataset, which is in memory anyway)."""
        from .interrupt import check_interrupt

        g = None if shuffle_seed is None else torch.Generator().manual_seed(shuffle_seed)
        if g is not None and n <= _CHUNK:
            chunks = iter([torch.randperm(n, generator=g)])
        else:  # in order, or beyond 2**20 samples: chunks in random order, each permuted
            starts = range(0, n, _CHUNK)
            if g is not None:
                starts = [starts[i] for i in torch.randperm(len(starts), generator=g).tolist()]
            chunks = (torch.arange(lo, min(lo + _CHUNK, n)) for lo in starts)
            if g is not None:
                chunks = (c[torch.randperm(c.numel(), generator=g)] for c in chunks)
        rest = torch.empty(0, dtype=torch.long)
        for chunk in chunks:
            rest = torch.cat([rest, chunk]) if rest.numel() else chunk
            while rest.numel() >= batch_size:
                check_interrupt()  # SIGINT/SIGTERM stop the run here, at a batch boundary
                yield BatchInfo(split, rest[:batch_size])
                rest = rest[batch_size:]
        if rest.numel():
            check_interrupt()
            yield BatchInfo(split, rest)

    def eval_key(self, name: str, _memo: dict | None = None) -> str:
        """Hash of everything that determines a block's test-split outputs (all params, trained state)."""
        if _memo is None:  # static once the graph is built: kept
            _memo = self.__dict__.setdefault("_eval_keys", {})
        memo = _memo
        if name not in memo:
            blk = self.blocks[name]
            ups = {p: [(self.eval_key(b, memo), sp) for b, sp in srcs] for p, srcs in sorted(self.edges[name].items())}
            memo[name] = _digest([name, self.cfg[name].type, blk.p.model_dump(mode="json"), self.block_key(name), ups])
        return memo[name]

    def _eval_memoizable(self) -> set[str]:
        if not hasattr(self, "_evm"):
            rand = {n for n, b in self.blocks.items() if b.random_in_eval()}
            self._evm = {n for n, b in self.blocks.items()
                         if b.memoize_eval and n not in rand and not (self.ancestors(n) & rand)}
        return self._evm

    def _random_upstream(self) -> set[str]:
        """Blocks that are random on the training split, or downstream of such a block."""
        if not hasattr(self, "_rand"):
            rand = {n for n, b in self.blocks.items() if b.random_in_training()}
            self._rand = {n for n in self.order if n in rand or self.ancestors(n) & rand}
        return self._rand

    # ---------------------------------------------------------------- training
    def block_key(self, name: str, _memo: dict | None = None) -> str:
        """Hash of a block's type, parameters, code (``Block.code_version``) and everything upstream of the
        ports its ``fit`` reads (used to cache trained weights: an encoder trained on clean images keeps its
        key when noise is added on its evaluation input)."""
        memo = {} if _memo is None else _memo
        if name in memo:
            return memo[name]
        node = self.cfg[name]
        blk = self.blocks[name]
        ups = {p: [(self.flow_key(b, memo), sp) for b, sp in srcs] for p, srcs in sorted(self._train_edges(name).items())}
        memo[name] = _digest([node.type, blk.train_signature(), blk.cache_salt(), blk.code_version(), ups])
        return memo[name]

    def flow_key(self, name: str, _memo: dict | None = None) -> str:
        """Hash of what a block outputs on the training split: its trained state (``block_key``) and
        everything upstream of all its inputs."""
        memo = self.__dict__.setdefault("_flow_keys", {}) if _memo is None else _memo  # static: kept
        k = ("flow", name)
        if k not in memo:
            ups = {p: [(self.flow_key(b, memo), sp) for b, sp in srcs] for p, srcs in sorted(self.edges[name].items())}
            memo[k] = _digest([self.block_key(name, memo), ups])
        return memo[k]

    def train(self, cache, data_key: Any, train_samples: int | None, batch_size: int, seed: int,
              progress: Callable | None = None) -> None:
        # outputs of deterministic blocks on unshuffled training passes, run-wide (LRU-bounded like the test
        # memo): node i's encoder features at one image SNR are computed once for every node count
        memo = self.ctx.shared.get("train_memo")
        if memo is None:
            # its working set is one sweep group's training features; later groups never reuse older entries
            # (their classifiers come from the weight cache), so it is kept small
            memo = self.ctx.shared["train_memo"] = OutputMemo(env="LINKSIM_TRAIN_MEMO_MB", default_mb=256)
        self._data_key = _digest([data_key])
        for name in self.order:
            blk = self.blocks[name]
            if not blk.trainable:
                continue
            key = _digest([self.block_key(name), data_key])
            use_cache = cache is not None and blk.cacheable
            state = cache.get(key) if use_cache else None
            if state is not None:
                blk.load_state(state)
                summary = getattr(blk, "summary", None)
                if isinstance(summary, dict) and summary:  # run.json still says how the weights were trained
                    self.ctx.record(name, {**summary, "from_cache": True}, blk.summary_section, keep_existing=True)
                continue
            ups = self.ancestors(name, training=True)
            roots = {b for srcs in self._train_edges(name).values() for b, _ in srcs}
            n = self.num_samples("train", train_samples)

            def epoch_fn(epoch: int, shuffle: bool, _name=name, _ups=ups, _n=n, _roots=roots):
                gseed = seed * 1_000_003 + epoch if shuffle else None
                for b in self.batches("train", _n, batch_size, gseed):
                    b.epoch = epoch
                    with torch.no_grad():
                        vals = self.run_batch(b, only=_ups, sinks=False, memo=None if shuffle else memo,
                                              prune=True, roots=None if shuffle else _roots)
                    yield self._inputs_of(_name, vals, training=True)

            if progress:
                progress(f"training {name} ({self.cfg[name].type})")
            self.ctx.training_key = f"{self.where}{self.cfg[name].key}"  # named by the loop's errors
            t0 = time.perf_counter()
            try:
                blk.fit(TrainData(epoch_fn, n, batch_size), self.ctx)
            finally:
                self.ctx.training_key = None
            dt = time.perf_counter() - t0
            release_free_heap()  # a fit's transients leave heap holes between the memo's entries
            if hasattr(self.ctx, "trained"):
                self.ctx.trained(name, self.cfg[name].type, dt)
            if use_cache:
                cache.put(key, blk.state())

    # ---------------------------------------------------------------- evaluation
    def evaluate(self, n: int, batch_size: int, progress_bar=None, stop: Callable[[int], bool] | None = None) -> int:
        """Run up to ``n`` test samples through the graph; ``stop(samples_so_far)``, asked after every batch,
        may end the pass early (error-count stopping). Returns the number of samples used."""
        for blk in self.blocks.values():
            if blk.is_sink:
                blk.reset()
        used = 0
        with torch.no_grad():
            for b in self.batches("test", n, batch_size):
                self.run_batch(b, prune=True)
                trim_if_grown()  # the freed payloads of earlier batches go back to the OS as the heap grows
                used += b.size
                if progress_bar is not None:
                    progress_bar.update(b.size)
                if stop is not None and stop(used):
                    break
        return used

    def reports(self) -> dict[str, float]:
        """Per-sample figures summed over blocks (e.g. channel uses of all links of a system)."""
        total: dict[str, float] = {}
        for blk in self.blocks.values():
            for k, v in blk.report().items():
                total[k] = total.get(k, 0.0) + float(v)
        return total
