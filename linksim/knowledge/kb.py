"""Vector knowledge bases (SKB / PKB of paper 003): a FAISS product-quantisation index.

A d-dim vector is split into ``m`` sub-vectors of d* = d/m dims; each sub-space has k* = 2^nbits centroids
(k-means). The codebook holds m x d* x k* floats (= d x k*), each stored vector is m codes of nbits bits, and
(k*)^m distinct vectors are representable. Retrieval is FAISS's asymmetric-distance search (exact query vs
decoded vectors). The trained index is serialised into the weight cache (``faiss.serialize_index``, a
uint8 tensor) and optionally written to ``save_path`` with ``faiss.write_index``.

``knowledge_base`` (trainable) builds the index from its input vectors on the training pass and outputs the
PQ reconstruction of each input; downstream blocks get the index object itself through the output spec's
``meta["knowledge_base"]`` (the port also orders training and keys the downstream weight cache).
``kb_stats`` (metric sink) reports storage, size and a save -> reload -> search round trip.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Literal

import numpy as np
import pydantic
import torch

from ..block import Block, Metric, Params, Port, Spec
from ..errors import PortError, UserError


def save_index(index, path: str | Path) -> None:
    import faiss

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(path))


def load_index(path: str | Path):
    import faiss

    if not Path(path).is_file():
        raise UserError(f"knowledge-base index not found: {path}")
    return faiss.read_index(str(path))


def pq_figures(index) -> dict[str, float]:
    """Storage and capacity of an IndexPQ: codebook floats m x d* x k*, bytes, representable vectors k*^m."""
    pq = index.pq
    m, dsub, ksub = int(pq.M), int(pq.dsub), int(pq.ksub)
    floats = m * dsub * ksub
    return {"kb_vectors": float(index.ntotal), "kb_codebook_floats": float(floats),
            "kb_codebook_bytes": float(4 * floats), "kb_code_bytes": float(index.ntotal * pq.code_size),
            "kb_storage_bytes": float(4 * floats + index.ntotal * pq.code_size),
            "kb_code_bits": float(m * pq.nbits), "kb_representable_vectors": float(ksub) ** m}


class KnowledgeBase(Block):
    """FAISS PQ vector knowledge base built from its input vectors (image/text SKB, or a device's PKB)."""

    type_name = "knowledge_base"
    role = "transmitter"
    trainable = True
    summary_section = "knowledge_bases"
    inputs = {"vectors": Port(("real",), "vectors to store (teacher or local-encoder embeddings)")}
    outputs = {"vectors": "PQ reconstruction of each input vector (index object in spec meta)"}

    class Params(Params):
        m: pydantic.PositiveInt = pydantic.Field(8, description="sub-vectors per vector (d must be divisible by m)")
        nbits: int = pydantic.Field(8, ge=1, le=16, description="bits per sub-vector code: k* = 2^nbits centroids")
        unique: bool = pydantic.Field(False, description="store each distinct vector once (text SKB: one per class)")
        metric: Literal["l2", "ip"] = pydantic.Field("l2", description="search metric")
        save_path: str | None = pydantic.Field(None, description="also write the index here (faiss.write_index)")
        seed: int = pydantic.Field(0, description="k-means seed")

    def __init__(self, name, params, ctx):
        super().__init__(name, params, ctx)
        self.index = None
        self._decoded = None
        self.summary: dict = {}

    def setup(self, specs):
        v = specs["vectors"]
        if len(v.shape) != 1:
            raise PortError(f"expects vectors, got {v}")
        self.d = v.shape[0]
        if self.d % self.p.m:
            raise ValueError(f"m: vector dimension {self.d} is not divisible by m = {self.p.m}")
        return {"vectors": Spec("real", (self.d,), {"knowledge_base": self})}

    # -- index --------------------------------------------------------------------------------------
    def fit(self, data, ctx):
        import faiss

        t0 = time.time()
        x = data.materialize()["vectors"].float().cpu()
        if self.p.unique:
            x = torch.unique(x, dim=0)
        k = 2 ** self.p.nbits
        if len(x) < k:
            raise UserError(f"{len(x)} vectors cannot train k* = 2^nbits = {k} centroids per sub-space; "
                            f"lower nbits to at most {max(int(np.log2(max(len(x), 1))), 0)}",
                            f"{ctx.where}: {self.name}.params.nbits")
        metric = faiss.METRIC_L2 if self.p.metric == "l2" else faiss.METRIC_INNER_PRODUCT
        index = faiss.IndexPQ(self.d, self.p.m, self.p.nbits, metric)
        index.pq.cp.seed = int(self.p.seed)
        index.pq.cp.min_points_per_centroid = 1  # small KBs are fine here: no "provide more points" warning
        xs = np.ascontiguousarray(x.numpy(), dtype=np.float32)
        index.train(xs)
        index.add(xs)
        self._set(index)
        self.summary = {**{k: v for k, v in pq_figures(index).items()}, "seconds": round(time.time() - t0, 2)}
        ctx.record(self.name, self.summary, self.summary_section)
        self._log(ctx)

    def _log(self, ctx):
        ctx.log(f"{self.name}: {int(self.index.ntotal)} vectors, PQ m={self.p.m} k*={2 ** self.p.nbits}, "
                f"{int(self.summary['kb_storage_bytes'])} bytes")

    def _set(self, index) -> None:
        self.index = index
        self._decoded = None
        if self.p.save_path:
            save_index(index, self.p.save_path)

    def state(self):
        import faiss

        return {"index": torch.from_numpy(faiss.serialize_index(self.index).copy()), "summary": self.summary}

    def load_state(self, state):
        import faiss

        self._set(faiss.deserialize_index(state["index"].numpy()))
        self.summary = state.get("summary", {})
        self._log(self.ctx)  # the engine records the summary of a cached block

    def decoded(self) -> torch.Tensor:
        """All stored vectors as the index reconstructs them (PQ-decoded), ``[ntotal, d]``."""
        if self._decoded is None:
            self._decoded = torch.from_numpy(self.index.reconstruct_n(0, self.index.ntotal)).float()
        return self._decoded

    def search(self, queries: torch.Tensor, n: int) -> torch.Tensor:
        """Ids ``[B, n]`` of the ``n`` nearest stored vectors of each query (FAISS PQ search)."""
        q = np.ascontiguousarray(queries.detach().float().cpu().numpy())
        _, ids = self.index.search(q, min(int(n), int(self.index.ntotal)))
        return torch.from_numpy(ids).long()

    def forward(self, vectors):
        x = np.ascontiguousarray(vectors.detach().float().cpu().numpy())
        rec = self.index.sa_decode(self.index.sa_encode(x))
        return {"vectors": torch.from_numpy(rec).to(vectors.device)}


class KBStats(Block):
    """Storage and capacity of a knowledge base, and whether a saved and reloaded index returns identical
    neighbours (``kb_reload_identical`` = 1.0) for the evaluated vectors."""

    type_name = "kb_stats"
    role = "metric"
    is_sink = True
    inputs = {"kb": Port(("real",), "a knowledge_base output (queries for the round trip)")}

    class Params(Params):
        neighbours: pydantic.PositiveInt = pydantic.Field(10, description="neighbours compared after reloading")
        name: str | None = pydantic.Field(None, description="'scheme' label of the rows")

    def setup(self, specs):
        self.kb = specs["kb"].meta.get("knowledge_base")
        if self.kb is None:
            raise PortError("connect the output of a knowledge_base block")
        return {}

    def reset(self):
        self.queries = []

    def update(self, kb):
        self.queries.append(kb.detach().float().cpu())

    def compute(self):
        q = torch.cat(self.queries) if self.queries else torch.zeros(0, self.kb.d)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "kb.faiss"
            save_index(self.kb.index, path)
            again = load_index(path)
        qs = np.ascontiguousarray(q.numpy())
        n = min(self.p.neighbours, int(self.kb.index.ntotal))
        d1, i1 = self.kb.index.search(qs, n)
        d2, i2 = again.search(qs, n)
        same = float(np.array_equal(i1, i2) and np.array_equal(d1, d2))
        labels = {"scheme": self.p.name} if self.p.name else {}
        rows = [Metric(k, v, int(self.kb.index.ntotal), labels) for k, v in pq_figures(self.kb.index).items()]
        rows.append(Metric("kb_reload_identical", same, len(q), labels))
        return rows
