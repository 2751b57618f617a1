"""Neural index quantization (paper Sec. III): exact K-of-N index coding and per-feature value quantization.

A K-sparse representation is sent as ``index_bits(N, K) = ceil(log2 C(N, K))`` bits naming the set of K
selected features (combinatorial number system, :class:`CombinationCoder`) followed by ``K * n`` bits of
quantized values (:class:`ValueQuantizer`), in the order of increasing feature index. Total:
:func:`payload_bits` (paper Eq. 15, with the ceiling). Bits are ``uint8`` 0/1 arrays, most significant bit
first. Everything is numpy / Python ints and exact for any N, K (binomials beyond 2**63 use Python ints).
"""
from __future__ import annotations

import bisect
import math

import numpy as np

__all__ = [
    "index_bits", "payload_bits", "CombinationCoder", "ValueQuantizer", "select_maxamp", "select_fixed",
    "scatter_dense",
]


def index_bits(N: int, K: int) -> int:
    """``ceil(log2(C(N, K)))`` computed exactly with integers; 0 when ``C(N, K) == 1``."""
    N, K = int(N), int(K)
    if N < 0 or not 0 <= K <= N:
        raise ValueError(f"need 0 <= K <= N, got N={N}, K={K}")
    return (math.comb(N, K) - 1).bit_length()


def payload_bits(N: int, K: int, n: int) -> int:
    """Bits per sample of neural index quantization: ``index_bits(N, K) + K * n`` (paper Eq. 15)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    return index_bits(N, K) + int(K) * int(n)


def _ints_to_bits(ranks, nbits: int) -> np.ndarray:
    """Python/numpy non-negative ints -> ``uint8 [B, nbits]``, MSB first."""
    b = len(ranks)
    if nbits == 0:
        return np.zeros((b, 0), np.uint8)
    nbytes = (nbits + 7) // 8
    buf = b"".join(int(r).to_bytes(nbytes, "big") for r in ranks)
    by = np.frombuffer(buf, np.uint8).reshape(b, nbytes)
    return np.ascontiguousarray(np.unpackbits(by, axis=1)[:, 8 * nbytes - nbits:])


def _bits_to_ints(bits: np.ndarray) -> list[int]:
    """``[B, nbits]`` 0/1 -> list of Python ints (MSB first)."""
    b, nbits = bits.shape
    if nbits == 0:
        return [0] * b
    packed = np.packbits(bits.astype(np.uint8), axis=1)
    shift = 8 * packed.shape[1] - nbits
    return [int.from_bytes(row.tobytes(), "big") >> shift for row in packed]


def _check_bits(bits, nbits: int) -> np.ndarray:
    bits = np.asarray(bits)
    if bits.ndim != 2 or bits.shape[1] != nbits:
        raise ValueError(f"bits must be [B, {nbits}], got {bits.shape}")
    if bits.dtype.kind == "f":
        bits = bits > 0.5
    return bits.astype(np.uint8)


class CombinationCoder:
    """Exact rank/unrank of K-subsets of ``{0..N-1}`` (combinatorial number system), ``nbits = index_bits``.

    A set ``c_1 < ... < c_K`` has rank ``sum_j C(c_j, j)`` in ``[0, C(N, K))``, written as ``nbits`` bits MSB
    first. :meth:`decode` flags ranks ``>= C(N, K)`` (reachable after channel errors) as invalid. When
    all binomials ``C(N-1, j), j <= K`` are below 2**62 everything is vectorised int64 numpy; otherwise encode sums a Python-int table and
    decode walks it with ``bisect`` per row. The table holds ``K * N`` binomials (fine for K up to ~100s).
    """

    def __init__(self, N: int, K: int):
        self.N, self.K = int(N), int(K)
        self.nbits = index_bits(self.N, self.K)
        self.total = math.comb(self.N, self.K)
        # table[j][c] = C(c, j), j = 0..K, c = 0..N-1 (Pascal's rule, exact Python ints)
        K_, N_ = self.K, self.N
        rows = [[0] * N_ for _ in range(K_ + 1)]
        if N_:
            rows[0] = [1] * N_
            for c in range(1, N_):
                for j in range(1, min(c, K_) + 1):
                    rows[j][c] = rows[j - 1][c - 1] + rows[j][c - 1]
        self._rows = rows
        # int64 path when every table entry (max C(N-1, j), j <= K) and every rank fit comfortably
        self.fast = max((row[-1] for row in rows if row), default=0) < 2 ** 62 and self.total <= 2 ** 62
        if self.fast:
            self._tab = np.array(rows, dtype=np.int64).reshape(K_ + 1, N_)
        else:
            self._tab = np.empty((K_ + 1, N_), dtype=object)
            for j in range(K_ + 1):
                self._tab[j, :] = rows[j]

    def __repr__(self) -> str:
        return f"CombinationCoder(N={self.N}, K={self.K}, nbits={self.nbits})"

    def encode(self, idx) -> np.ndarray:
        """``idx [B, K]`` distinct ints in ``[0, N)`` (any order) -> ``uint8 [B, nbits]`` bits."""
        idx = np.asarray(idx)
        if idx.ndim != 2 or idx.shape[1] != self.K:
            raise ValueError(f"idx must be [B, {self.K}], got {idx.shape}")
        b = idx.shape[0]
        if self.K == 0 or b == 0:
            return np.zeros((b, self.nbits), np.uint8)
        s = np.sort(idx.astype(np.int64), axis=1)
        if s[:, 0].min() < 0 or s[:, -1].max() >= self.N:
            raise ValueError(f"indices must lie in [0, {self.N})")
        if self.K > 1 and not (np.diff(s, axis=1) > 0).all():
            raise ValueError("indices within a row must be distinct")
        j = np.arange(1, self.K + 1)[None, :]
        terms = self._tab[j, s]
        if self.fast:
            ranks = terms.sum(axis=1, dtype=np.int64)
            if self.nbits == 0:
                return np.zeros((b, 0), np.uint8)
            shifts = np.arange(self.nbits - 1, -1, -1, dtype=np.int64)
            return ((ranks[:, None] >> shifts) & 1).astype(np.uint8)
        return _ints_to_bits(terms.sum(axis=1), self.nbits)

    def decode(self, bits) -> tuple[np.ndarray, np.ndarray]:
        """``bits [B, nbits]`` (0/1; floats are thresholded at 0.5) -> ``(idx [B, K] int64 sorted
        ascending, valid [B] bool)``; invalid rows (rank >= C(N, K)) get ``idx = -1``."""
        bits = _check_bits(bits, self.nbits)
        b = bits.shape[0]
        out = np.full((b, self.K), -1, dtype=np.int64)
        if self.K == 0 or b == 0:
            return out, np.ones(b, bool)
        if self.fast:
            if self.nbits:
                shifts = np.arange(self.nbits - 1, -1, -1, dtype=np.int64)
                r = (bits.astype(np.int64) << shifts).sum(axis=1)
            else:
                r = np.zeros(b, np.int64)
            valid = r < self.total
            r = np.where(valid, r, 0)
            for j in range(self.K, 0, -1):
                col = self._tab[j]
                c = np.searchsorted(col, r, side="right") - 1
                out[:, j - 1] = c
                r = r - col[c]
            out[~valid] = -1
            return out, valid
        ranks = _bits_to_ints(bits)
        valid = np.zeros(b, bool)
        rows, total, K = self._rows, self.total, self.K
        br = bisect.bisect_right
        res = [None] * b
        for i, r in enumerate(ranks):
            if r >= total:
                res[i] = [-1] * K
                continue
            valid[i] = True
            row = [0] * K
            for j in range(K, 0, -1):
                col = rows[j]
                c = br(col, r) - 1
                row[j - 1] = c
                r -= col[c]
            res[i] = row
        return np.array(res, dtype=np.int64).reshape(b, K), valid


class ValueQuantizer:
    """Per-feature scalar quantizer with ``n_bits`` bits per value (paper Sec. III-A, second step).

    ``fit(X [N, d])`` uses, per feature, only its *active* (non-zero) training values: ``2**n`` bins with
    edges at the quantiles ``k / 2**n`` and reconstruction levels = mean of the values in each bin (empty bin:
    its edge). Features with fewer than ``min_count`` active values (default ``max(16, 4 * 2**n)``) use levels
    fitted on all active values pooled (``fallback``). Code of v = number of edges ``<= v``; an exact 0
    therefore maps to the lowest level, unless ``include_zero=True``, which reserves code 0 for an exact 0
    (decoded as 0.0) and fits ``2**n - 1`` bins on the active values (useful for MaxPro, where selected
    features are often inactive). ``n_bits == 0``: no bits, decodes each feature's mean active value.
    ``n_bits == 32``: float32 passed through bit-exactly (IEEE-754 bits, MSB first); needs no fit.
    Supported: 0..16 and 32.

    ``encode(values [B, K], feat_idx [B, K]) -> uint8 [B, K * n]`` (value k's n bits contiguous, MSB first);
    ``decode(bits, feat_idx) -> float32 [B, K]``; entries with ``feat_idx < 0`` (invalid index word) decode
    to 0.0. ``state()`` / ``load_state()`` are plain dicts of ints, bools, lists and numpy arrays.
    """

    def __init__(self, n_bits: int, include_zero: bool = False, min_count: int | None = None):
        n_bits = int(n_bits)
        if not (0 <= n_bits <= 16 or n_bits == 32):
            raise ValueError("n_bits must be in 0..16 or 32")
        if include_zero and n_bits == 0:
            raise ValueError("include_zero needs n_bits >= 1")
        self.n_bits = n_bits
        self.include_zero = bool(include_zero) and n_bits != 32
        self.min_count = max(16, 4 * 2 ** n_bits) if min_count is None else int(min_count)
        self.edges: np.ndarray | None = None    # [d, n_active_bins - 1]
        self.levels: np.ndarray | None = None   # [d, 2**n]  (column 0 = 0.0 when include_zero)
        self.fallback: np.ndarray | None = None  # [d] bool

    @property
    def fitted(self) -> bool:
        return self.n_bits == 32 or self.levels is not None

    @property
    def _n_active_bins(self) -> int:
        return 2 ** self.n_bits - (1 if self.include_zero else 0)

    def _fit_values(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nb = self._n_active_bins
        if v.size == 0:
            return np.zeros(nb - 1), np.zeros(nb)
        edges = np.quantile(v, np.arange(1, nb) / nb) if nb > 1 else np.zeros(0)
        codes = np.searchsorted(edges, v, side="right")
        sums = np.bincount(codes, weights=v, minlength=nb)
        cnts = np.bincount(codes, minlength=nb)
        left = np.concatenate([[edges[0] if nb > 1 else v.mean()], edges])
        levels = np.where(cnts > 0, sums / np.maximum(cnts, 1), left)
        return edges, levels

    def fit(self, X) -> "ValueQuantizer":
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError("X must be [N, d]")
        if self.n_bits == 32:
            return self
        d = X.shape[1]
        active = X != 0
        g_edges, g_levels = self._fit_values(X[active])
        nb = self._n_active_bins
        edges = np.empty((d, nb - 1))
        levels = np.empty((d, nb))
        fallback = np.zeros(d, bool)
        for i in range(d):
            v = X[active[:, i], i]
            if v.size >= self.min_count:
                edges[i], levels[i] = self._fit_values(v)
            else:
                edges[i], levels[i], fallback[i] = g_edges, g_levels, True
        if self.include_zero:
            levels = np.concatenate([np.zeros((d, 1)), levels], axis=1)
        self.edges, self.levels, self.fallback = edges, levels, fallback
        return self

    def _check(self, arr, feat_idx) -> tuple[np.ndarray, np.ndarray]:
        feat_idx = np.asarray(feat_idx, dtype=np.int64)
        if feat_idx.ndim != 2:
            raise ValueError("feat_idx must be [B, K]")
        if not self.fitted:
            raise RuntimeError("ValueQuantizer is not fitted")
        if self.levels is not None and feat_idx.size and feat_idx.max() >= self.levels.shape[0]:
            raise ValueError("feature index beyond the fitted dimension")
        return arr, feat_idx

    def encode(self, values, feat_idx) -> np.ndarray:
        values = np.asarray(values)
        values, feat_idx = self._check(values, feat_idx)
        if values.shape != feat_idx.shape:
            raise ValueError("values and feat_idx must have the same shape [B, K]")
        b, k = values.shape
        n = self.n_bits
        if n == 32:
            u = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
            shifts = np.arange(31, -1, -1, dtype=np.uint64)
            return ((u[..., None] >> shifts) & 1).astype(np.uint8).reshape(b, k * 32)
        if n == 0:
            return np.zeros((b, 0), np.uint8)
        v = values.astype(np.float64).ravel()
        f = np.maximum(feat_idx.ravel(), 0)
        codes = np.zeros(v.size, np.int64)
        order = np.argsort(f, kind="stable")
        fs = f[order]
        starts = np.flatnonzero(np.r_[True, fs[1:] != fs[:-1]]) if fs.size else np.zeros(0, np.int64)
        ends = np.r_[starts[1:], fs.size]
        for s, e in zip(starts, ends):
            pos = order[s:e]
            codes[pos] = np.searchsorted(self.edges[fs[s]], v[pos], side="right")
        if self.include_zero:
            codes = np.where(v == 0, 0, codes + 1)
        shifts = np.arange(n - 1, -1, -1, dtype=np.int64)
        return ((codes[:, None] >> shifts) & 1).astype(np.uint8).reshape(b, k * n)

    def decode(self, bits, feat_idx) -> np.ndarray:
        feat_idx = np.asarray(feat_idx, dtype=np.int64)
        _, feat_idx = self._check(None, feat_idx)
        b, k = feat_idx.shape
        n = self.n_bits
        bits = _check_bits(bits, k * n)
        if bits.shape[0] != b:
            raise ValueError("bits and feat_idx differ in batch size")
        bad = feat_idx < 0
        if n == 32:
            shifts = np.arange(31, -1, -1, dtype=np.uint64)
            u = (bits.reshape(b, k, 32).astype(np.uint64) << shifts).sum(axis=2).astype(np.uint32)
            out = u.view(np.float32).copy()
        else:
            if n:
                shifts = np.arange(n - 1, -1, -1, dtype=np.int64)
                codes = (bits.reshape(b, k, n).astype(np.int64) << shifts).sum(axis=2)
            else:
                codes = np.zeros((b, k), np.int64)
            out = self.levels[np.maximum(feat_idx, 0), codes].astype(np.float32)
        out[bad] = 0.0
        return out

    def state(self) -> dict:
        return {"n_bits": self.n_bits, "include_zero": self.include_zero, "min_count": self.min_count,
                "edges": None if self.edges is None else self.edges.copy(),
                "levels": None if self.levels is None else self.levels.copy(),
                "fallback": None if self.fallback is None else self.fallback.tolist()}

    def load_state(self, state: dict) -> "ValueQuantizer":
        self.__init__(state["n_bits"], state["include_zero"], state["min_count"])
        if state.get("levels") is not None:
            self.edges = np.asarray(state["edges"], dtype=np.float64)
            self.levels = np.asarray(state["levels"], dtype=np.float64)
            self.fallback = np.asarray(state["fallback"], dtype=bool)
        return self

    @classmethod
    def from_state(cls, state: dict) -> "ValueQuantizer":
        return cls(state["n_bits"]).load_state(state)


def select_maxamp(X, K: int) -> tuple[np.ndarray, np.ndarray]:
    """MaxAmp-K: per row, the K largest entries of ``X [B, N]`` (ties -> smaller index).

    Returns ``(idx [B, K] int64 sorted ascending, values [B, K])`` -- the order in which
    :class:`CombinationCoder` and :class:`ValueQuantizer` carry them. For MaxProAmp pass ``X[:, S]`` with S
    the MaxPro set; the returned indices are then positions in S (code them with ``CombinationCoder(len(S), K)``).
    """
    X = np.asarray(X)
    if not 0 <= K <= X.shape[1]:
        raise ValueError("need 0 <= K <= N")
    top = np.argsort(-X, axis=1, kind="stable")[:, :K]
    idx = np.sort(top, axis=1).astype(np.int64)
    return idx, np.take_along_axis(X, idx, axis=1)


def select_fixed(X, S) -> tuple[np.ndarray, np.ndarray]:
    """MaxPro-K: the fixed index set S (e.g. ``activation_order(X_train)[:K]``) for every row of ``X``.

    Returns ``(idx [B, K] sorted ascending, values [B, K])``; the set is known to the receiver, so it costs
    ``index_bits(K, K) = 0`` bits per sample.
    """
    X = np.asarray(X)
    s = np.sort(np.asarray(S, dtype=np.int64))
    idx = np.broadcast_to(s, (X.shape[0], s.size)).copy()
    return idx, X[:, s]


def scatter_dense(idx, values, N: int) -> np.ndarray:
    """Rebuild dense ``[B, N]`` float32 vectors (zeros elsewhere) from ``idx``/``values``; ``idx < 0`` ignored."""
    idx = np.asarray(idx, dtype=np.int64)
    values = np.asarray(values, dtype=np.float32)
    out = np.zeros((idx.shape[0], int(N)), np.float32)
    rows = np.broadcast_to(np.arange(idx.shape[0])[:, None], idx.shape)
    ok = idx >= 0
    out[rows[ok], idx[ok]] = values[ok]
    return out
