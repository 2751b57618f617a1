"""Feature codecs: a representation X [B, Nf] <-> a fixed-length bit payload per sample.

Schemes (paper 000, Sec. III and Table III):
- ``float``: every feature as float32, 32*Nf bits.
- ``scalar``: every feature uniformly quantised to n bits on [0, v_max(i)] (v_max = 99.9th percentile of
  the training values of feature i; level 0 is exactly 0), Nf*n bits.
- ``maxpro``: the fixed set S of the K features most often active over the training data; its values with
  n bits each (per-feature quantile quantiser with a reserved exact-zero code, or float32 for n=32);
  ceil(log2 C(K, K)) + K*n = K*n bits.
- ``maxamp``: per sample the K largest activations: ceil(log2 C(Nf, K)) bits for the index set
  (combinatorial number system) + K*n bits for the values.
- ``maxproamp``: MaxAmp-K inside the MaxPro set S (|S| = ``maxpro_size``): ceil(log2 C(|S|, K)) + K*n bits.
An index word that decodes outside [0, C(N, K)) (a corrupted link) is flagged invalid and gives X = 0.
"""
from __future__ import annotations

import numpy as np
import torch

from .index_coding import (CombinationCoder, ValueQuantizer, index_bits, scatter_dense, select_fixed,
                           select_maxamp)

SCHEMES = ("float", "scalar", "maxpro", "maxamp", "maxproamp")


def _int_bits(q: np.ndarray, n: int) -> np.ndarray:
    """Unsigned ints [..] -> bits [.., n], MSB first."""
    shifts = np.arange(n - 1, -1, -1, dtype=np.uint64)
    return ((q.astype(np.uint64)[..., None] >> shifts) & 1).astype(np.uint8)


def _bits_int(b: np.ndarray) -> np.ndarray:
    n = b.shape[-1]
    w = (1 << np.arange(n - 1, -1, -1, dtype=np.uint64))
    return (b.astype(np.uint64) * w).sum(-1)


def _np(state):
    return {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in state.items()}


def _torch(state):
    return {k: (torch.from_numpy(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v)
            for k, v in state.items()}


class FeatureCodec:
    def __init__(self, scheme: str, nf: int, K: int | None, n: int, maxpro_size: int | None):
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}")
        self.scheme, self.nf, self.n = scheme, int(nf), int(n)
        self.K = K
        self.maxpro_size = maxpro_size
        self.S: np.ndarray | None = None
        self.vmax: np.ndarray | None = None
        self.vq: ValueQuantizer | None = None
        self.coder: CombinationCoder | None = None

    # ------------------------------------------------------------------ fitting
    def fit(self, X: torch.Tensor) -> None:
        """Fit on training representations (MaxPro set, value levels)."""
        from ..semantic.training import activation_order

        Xn = X.detach().cpu().float().numpy()
        if self.scheme == "scalar":
            self.vmax = np.maximum(np.quantile(Xn, 0.999, axis=0), 1e-6).astype(np.float32)
            return
        if self.scheme == "float":
            return
        order = activation_order(X.detach().cpu()).numpy()
        if self.scheme == "maxpro":
            self.S = np.sort(order[: self.K])
        elif self.scheme == "maxproamp":
            self.S = np.sort(order[: self.maxpro_size])
        self.vq = ValueQuantizer(self.n, include_zero=(self.scheme == "maxpro" and 1 <= self.n <= 16))
        self.vq.fit(Xn)
        self._make_coder()

    def _make_coder(self):
        if self.scheme == "maxamp":
            self.coder = CombinationCoder(self.nf, self.K)
        elif self.scheme == "maxproamp":
            self.coder = CombinationCoder(len(self.S), self.K)

    @property
    def index_bits(self) -> int:
        if self.scheme == "maxamp":
            return index_bits(self.nf, self.K)
        if self.scheme == "maxproamp":
            return index_bits(self.maxpro_size, self.K)
        return 0

    def payload_bits(self) -> int:
        if self.scheme == "float":
            return 32 * self.nf
        if self.scheme == "scalar":
            return self.n * self.nf
        return self.index_bits + self.K * self.n

    # ------------------------------------------------------------------ coding
    def encode(self, X: torch.Tensor) -> torch.Tensor:
        Xn = X.detach().cpu().float().numpy()
        B = Xn.shape[0]
        if self.scheme == "float":
            bits = _int_bits(Xn.astype(np.float32).view(np.uint32), 32).reshape(B, -1)
        elif self.scheme == "scalar":
            L = (1 << self.n) - 1
            q = np.clip(np.rint(Xn / self.vmax * L), 0, L).astype(np.uint64)
            bits = _int_bits(q, self.n).reshape(B, -1)
        else:
            if self.scheme == "maxpro":
                idx, vals = select_fixed(Xn, self.S)
                ib = np.zeros((B, 0), np.uint8)
                gidx = idx
            elif self.scheme == "maxamp":
                idx, vals = select_maxamp(Xn, self.K)
                ib, gidx = self.coder.encode(idx), idx
            else:  # maxproamp: positions inside S
                pos, vals = select_maxamp(Xn[:, self.S], self.K)
                ib, gidx = self.coder.encode(pos), self.S[pos]
            vb = self.vq.encode(vals, gidx)
            bits = np.concatenate([ib.reshape(B, -1), vb.reshape(B, -1)], 1)
        assert bits.shape[1] == self.payload_bits(), (bits.shape, self.payload_bits())
        return torch.from_numpy(bits.astype(np.float32)).to(X.device)

    def decode(self, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = (bits.detach().cpu().numpy() > 0.5).astype(np.uint8)
        B = b.shape[0]
        valid = np.ones(B, bool)
        if self.scheme == "float":
            X = _bits_int(b.reshape(B, self.nf, 32)).astype(np.uint32).view(np.float32).copy()
            bad = ~np.isfinite(X)
            X[bad] = 0.0
            X = np.clip(X, -1e6, 1e6)
        elif self.scheme == "scalar":
            L = (1 << self.n) - 1
            X = (_bits_int(b.reshape(B, self.nf, self.n)) / L * self.vmax).astype(np.float32)
        else:
            ib, vb = b[:, : self.index_bits], b[:, self.index_bits:]
            if self.scheme == "maxpro":
                gidx = np.broadcast_to(self.S, (B, len(self.S))).copy()
            else:
                idx, valid = self.coder.decode(ib)
                if self.scheme == "maxamp":
                    gidx = idx
                else:
                    gidx = np.where(idx >= 0, self.S[np.clip(idx, 0, None)], -1)
            vals = self.vq.decode(vb, gidx)
            X = scatter_dense(gidx, vals, self.nf)
        return torch.from_numpy(X).to(bits.device), torch.from_numpy(valid).to(bits.device)

    # ------------------------------------------------------------------ state (weights_only-safe)
    def state(self) -> dict:
        st = {"scheme": self.scheme, "K": self.K, "n": self.n, "maxpro_size": self.maxpro_size,
              "S": None if self.S is None else torch.from_numpy(self.S.astype(np.int64)),
              "vmax": None if self.vmax is None else torch.from_numpy(self.vmax)}
        if self.vq is not None:
            st["vq"] = _torch(self.vq.state())
        return st

    def load_state(self, st: dict) -> None:
        self.K, self.maxpro_size = st["K"], st["maxpro_size"]
        self.S = None if st["S"] is None else st["S"].numpy()
        self.vmax = None if st["vmax"] is None else st["vmax"].numpy()
        if "vq" in st:
            self.vq = ValueQuantizer.from_state(_np(st["vq"]))
        self._make_coder()
