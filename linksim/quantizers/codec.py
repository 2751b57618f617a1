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


def _int_bits(q: torch.Tensor, n: int) -> torch.Tensor:
    """int32 codes [B, d] (n <= 32 bits, two's complement for 32) -> float bits [B, d*n], MSB first."""
    shifts = torch.arange(n - 1, -1, -1, dtype=torch.int32, device=q.device)
    return ((q.to(torch.int32)[..., None] >> shifts) & 1).reshape(q.shape[0], -1).float()


def _bits_int(b: torch.Tensor, n: int) -> torch.Tensor:
    """float bits [B, d*n] -> int32 codes [B, d] (inverse of _int_bits)."""
    shifts = torch.arange(n - 1, -1, -1, dtype=torch.int32, device=b.device)
    bits = (b > 0.5).to(torch.int32).reshape(b.shape[0], -1, n)
    return (bits << shifts).sum(-1, dtype=torch.int32)


def _float_bits(X: torch.Tensor) -> torch.Tensor:
    """float32 [B, d] -> float bits [B, 32 d], each value's IEEE 754 word MSB first (as ``_int_bits`` of its int32
    view). NumPy's ``unpackbits`` on the big-endian bytes does it in one C pass (the generic shift-and-mask
    path built a [B, d, 32] int32 tensor: the main job's full-feature payloads are 16384 bits per sample)."""
    be = np.ascontiguousarray(X.detach().cpu().numpy().astype(">f4", copy=False)).view(np.uint8)
    return torch.from_numpy(np.unpackbits(be, axis=1)).to(device=X.device, dtype=torch.float32)


def _bits_float(b: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_float_bits` (bits > 0.5 are ones)."""
    packed = np.packbits((b.detach().cpu().numpy() > 0.5), axis=1)
    return torch.from_numpy(packed.view(">f4").astype(np.float32)).to(b.device)


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
        X = X.detach().float().reshape(X.shape[0], -1)
        if self.scheme == "float":
            return _float_bits(X)
        if self.scheme == "scalar":
            L = (1 << self.n) - 1
            vmax = torch.as_tensor(self.vmax, device=X.device)
            return _int_bits(torch.clamp(torch.round(X / vmax * L), 0, L).to(torch.int32), self.n)
        Xn = X.cpu().numpy()
        B = Xn.shape[0]
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
        B = bits.shape[0]
        if self.scheme in ("float", "scalar"):
            ones = torch.ones(B, dtype=torch.bool, device=bits.device)
            if self.scheme == "float":
                X = _bits_float(bits)
                X = torch.nan_to_num(X, nan=0.0, posinf=0.0, neginf=0.0).clamp(-1e6, 1e6)
                return X, ones
            L = (1 << self.n) - 1
            return (_bits_int(bits, self.n).float() / L * torch.as_tensor(self.vmax, device=bits.device)), ones
        b = (bits.detach().cpu().numpy() > 0.5).astype(np.uint8)
        valid = np.ones(B, bool)
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
