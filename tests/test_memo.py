"""The engine's output memo: byte-bounded LRU, and evaluation passes that skip what memoised outputs make
unnecessary (the quantizer and link upstream of a memoised dequantizer at the other points of a node sweep)."""

import pytest
import torch

from linksim.block import Block, Port, Spec
from linksim.context import RunContext
from linksim.graph import BatchInfo, Graph, NodeCfg, OutputMemo

CALLS: dict[str, int] = {}


class Ramp(Block):
    """Deterministic source: sample i -> [i, i+1, ..., i+7]."""

    type_name = "test_ramp"
    outputs = {"x": "ramp"}

    def setup(self, specs):
        return {"x": Spec("real", (8,))}

    def forward(self):
        CALLS["src"] = CALLS.get("src", 0) + 1
        i = self.ctx.batch.indices.float().unsqueeze(1)
        return {"x": i + torch.arange(8.0)}


class Double(Block):
    """Deterministic, counted; memoised on the test split when ``memoize_eval``."""

    type_name = "test_double"
    inputs = {"x": Port(("real",))}
    outputs = {"x": "2x"}

    def setup(self, specs):
        return {"x": specs["x"]}

    def forward(self, x):
        CALLS[self.name] = CALLS.get(self.name, 0) + 1
        return {"x": 2 * x}


class MemoDouble(Double):
    memoize_eval = True


def _graph(ctx):
    blocks = {"src": {"type": "test_memo:Ramp"},
              "pre": {"type": "test_memo:Double", "inputs": {"x": "src.x"}},
              "mid": {"type": "test_memo:MemoDouble", "inputs": {"x": "pre.x"}},
              "post": {"type": "test_memo:Double", "inputs": {"x": "mid.x"}}}
    nodes = [NodeCfg(n, b["type"], {}, b.get("inputs", {}), f"blocks.{n}") for n, b in blocks.items()]
    return Graph(nodes, ctx, "t: ")


def test_evaluation_skips_blocks_behind_a_memo_hit():
    CALLS.clear()
    ctx = RunContext()
    first, second = _graph(ctx), _graph(ctx)  # two sweep points of one run share the memo
    b = BatchInfo("test", torch.arange(4))
    with torch.no_grad():
        v1 = first.run_batch(b, prune=True)
        v2 = second.run_batch(b, prune=True)
    assert CALLS == {"src": 1, "pre": 1, "mid": 1, "post": 2}  # second point: src and pre skipped
    assert torch.equal(v1[("post", "x")], v2[("post", "x")])
    assert torch.equal(v2[("post", "x")], 8 * (torch.arange(4.0).unsqueeze(1) + torch.arange(8.0)))
    with torch.no_grad():  # a full pass (no prune) still runs everything
        second.run_batch(b)
    assert CALLS["src"] == 2 and CALLS["pre"] == 2


def test_output_memo_is_lru_bounded_in_bytes():
    m = OutputMemo(budget_mb=3 / 1024)  # 3 KiB
    kib = lambda: {"x": torch.zeros(256)}  # noqa: E731 - 1 KiB of float32
    for k in "abc":
        m[k] = kib()
    assert len(m) == 3 and m.bytes == 3072
    assert m.get("a") is not None  # a is now the most recent
    m["d"] = kib()  # evicts b, the least recently used
    assert "b" not in m and all(k in m for k in "acd") and m.bytes == 3072
    m["big"] = {"x": torch.zeros(2048)}  # larger than the budget: not kept, nothing evicted
    assert "big" not in m and len(m) == 3


def test_limit_arenas_caps_glibc_unless_the_user_set_it(monkeypatch):
    import os

    from linksim import heap

    if heap._libc() is None:
        pytest.skip("not glibc")
    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    monkeypatch.setattr(heap, "_libc", lambda: FakeLibc())
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5})
    assert heap.limit_arenas() == 3 and calls == [(-8, 3)]  # M_ARENA_MAX = -8 in glibc's malloc.h
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert heap.limit_arenas() is None and len(calls) == 1  # the user's setting wins
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    calls.clear()
    FakeLibc.mallopt = lambda self, p, v: calls.append((p, v)) or 0  # glibc refused
    assert heap.limit_arenas() is None and calls == [(-8, 3)]


def test_trim_if_grown_trims_once_memory_grew_by_the_step(monkeypatch):
    from linksim import heap

    if heap._libc() is None:
        pytest.skip("not glibc")
    rss = [1000.0]
    trims = []

    class FakeLibc:
        def malloc_trim(self, pad):
            trims.append(pad)
            rss[0] -= 300.0  # what the trim gave back

    monkeypatch.setattr(heap, "_libc", lambda: FakeLibc())
    monkeypatch.setattr(heap, "rss_mb", lambda: rss[0])
    heap.release_free_heap()
    assert trims == [0] and heap._trimmed_at == 700.0
    rss[0] = 700.0 + 512.0
    assert not heap.trim_if_grown(512.0) and len(trims) == 1  # grew by the step, not more
    rss[0] += 1.0
    assert heap.trim_if_grown(512.0) and len(trims) == 2 and heap._trimmed_at == rss[0] == 913.0
    assert not heap.trim_if_grown(512.0)  # measured from the last trim
    rss[0] = 913.0 + 512.0
    assert not heap.trim_if_grown()  # the default step is 512 MiB
    rss[0] += 1.0
    assert heap.trim_if_grown() and len(trims) == 3
    monkeypatch.setattr(heap, "rss_mb", lambda: None)  # no /proc: never trims on growth, marks 0 after a trim
    assert not heap.trim_if_grown()
    heap.release_free_heap()
    assert heap._trimmed_at == 0.0
    monkeypatch.setattr(heap, "_libc", lambda: None)  # not glibc: nothing to trim
    monkeypatch.setattr(heap, "rss_mb", lambda: 1e6)
    assert heap.trim_if_grown() is False and len(trims) == 4


def test_rss_mb_reads_this_process():
    from linksim import heap

    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("reads /proc/self/statm")
    r = heap.rss_mb()
    status = open("/proc/self/status").read()
    vmrss = int(status.split("VmRSS:")[1].split()[0]) / 1024  # kB -> MiB, the kernel's own figure
    assert r is not None and abs(r - vmrss) < 0.1 * vmrss + 8
    big = b"\x01" * (200 * 2**20)  # written: resident
    assert heap.rss_mb() - r > 150
    del big
