"""Fast CPU decoding of the 5G NR LDPC codes of Sionna's :class:`LDPC5GEncoder`.

Sionna's :class:`~sionna.phy.fec.ldpc.LDPC5GDecoder` stays the reference (``impl="sionna"``); this module adds
a compiled decoder for the same codes (``impl="fast"``): numba kernels that work on the quasi-cyclic
base graph, vectorised (SIMD) over the Z checks of each lifted row block, one codeword per thread (a
thread pool over the cores, the kernels release the GIL), each codeword stopping as soon as its syndrome
is zero.

The default algorithm is the reference's: flooding sum-product (Sionna's ``"boxplus-phi"``, computed here
with the equivalent tanh rule and the same clamps |v2c| in [8.5e-8, 16.635532], so |c2v| <= 16.64),
channel LLRs clipped to +-20, the same rate recovery (first 2Z systematic bits punctured with LLR 0,
filler bits pinned to "0" with LLR 20, trailing punctured degree-1 parity nodes pruned, the 38.212 output
de-interleaver if the encoder has one) and the same hard decision (bit = 1 where the a-posteriori LLR
log p(0)/p(1) <= 0). It returns the reference's decisions frame for frame up to float32 rounding; the
only behavioural difference is the early stop (``early_stop=False`` runs all ``num_iter`` iterations).

Options: layered scheduling (``schedule="layered"``; converges about twice as fast, so at the same
``num_iter`` its BLER is better than the reference's), plain / normalised / offset min-sum
(``cn_update="minsum" | "normalized-minsum" | "offset-minsum"``).

:mod:`linksim.link.ldpc_bench` compares it with the reference and with the ``ldpc`` package's C++
``BpDecoder`` (``benchmarks/ldpc_bench.py`` and ``linksim bench`` call it).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np
import torch

from ..cores import available_cores

try:  # numba is a core dependency; guarded so that a broken install gets a clear message
    from llvmlite import ir as _llir
    from numba import njit
    from numba import types as _nbt
    from numba.extending import intrinsic as _intrinsic

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    HAVE_NUMBA = False

__all__ = [
    "FastLDPC5GDecoder",
    "make_decoder",
    "HAVE_NUMBA",
]

# Same constants as Sionna's ``cn_update_phi`` (float32 clamps of phi's argument) and ``llr_max``.
_PHI_MIN = 8.5e-8
_PHI_MAX = 16.635532
_LLR_MAX = 20.0

# cn_update name -> kernel algorithm (0 sum-product, 1 scaled min-sum, 2 offset min-sum)
_CN_UPDATES = {"boxplus-phi": 0, "boxplus": 0, "minsum": 1, "normalized-minsum": 1, "offset-minsum": 2}
_SCHEDULES = {"flooding": 0, "layered": 1}


# ----------------------------------------------------------------------------------------------------------
# numba kernels
# ----------------------------------------------------------------------------------------------------------
if HAVE_NUMBA:
    _f32 = np.float32
    _i32 = np.int32
    # fastmath subset: FMA contraction and no signed zeros; no reassociation (keeps the split-constant log)
    _FM = {"contract", "nsz", "arcp"}

    @_intrinsic
    def _as_i32(typingctx, x):  # bit pattern of a float32 as int32
        if isinstance(x, _nbt.Float) and x.bitwidth == 32:
            def codegen(context, builder, signature, args):
                return builder.bitcast(args[0], _llir.IntType(32))
            return _nbt.int32(_nbt.float32), codegen
        return None

    @_intrinsic
    def _as_f32(typingctx, x):  # float32 with the given int32 bit pattern
        if isinstance(x, _nbt.Integer):
            def codegen(context, builder, signature, args):
                v = args[0]
                if x.bitwidth > 32:
                    v = builder.trunc(v, _llir.IntType(32))
                elif x.bitwidth < 32:
                    v = builder.sext(v, _llir.IntType(32))
                return builder.bitcast(v, _llir.FloatType())
            return _nbt.float32(x), codegen
        return None

    # Cephes exp2f / logf polynomials, written branch-free so that LLVM vectorises the loops that use them.
    _E0, _E1, _E2 = _f32(1.535336188319500e-4), _f32(1.339887440266574e-3), _f32(9.618437357674640e-3)
    _E3, _E4, _E5 = _f32(5.550332471162809e-2), _f32(2.402264791363012e-1), _f32(6.931472028550421e-1)
    _L0, _L1, _L2 = _f32(7.0376836292e-2), _f32(-1.1514610310e-1), _f32(1.1676998740e-1)
    _L3, _L4, _L5 = _f32(-1.2420140846e-1), _f32(1.4249322787e-1), _f32(-1.6668057665e-1)
    _L6, _L7, _L8 = _f32(2.0000714765e-1), _f32(-2.4999993993e-1), _f32(3.3333331174e-1)
    _LN2_HI, _LN2_LO = _f32(0.693359375), _f32(-2.12194440e-4)
    _NEG_LOG2E = _f32(-1.4426950408889634)
    _HALF, _ONE, _SQRT2 = _f32(0.5), _f32(1.0), _f32(1.4142135623730951)
    _SIXTH, _TWENTY4TH, _SMALL = _f32(1.0 / 6.0), _f32(1.0 / 24.0), _f32(0.0625)
    _ZERO = _f32(0.0)
    _TANH_MAX = _f32(0.99999988)  # float32 just below 1: extrinsic tanh products are capped here, |R| <= 16.64
    _PROD_MIN = _f32(1e-30)
    _PMIN, _PMAX = _f32(_PHI_MIN), _f32(_PHI_MAX)

    @njit(inline="always", fastmath=_FM, error_model="numpy")
    def _exp_neg(x):
        """exp(-x) for float32 x in [0, 17]."""
        t = x * _NEG_LOG2E
        fn = np.floor(t + _HALF)
        f = t - fn
        p = ((((((_E0 * f + _E1) * f + _E2) * f + _E3) * f + _E4) * f + _E5) * f) + _ONE
        n = _i32(fn)
        return p * _as_f32((n + _i32(127)) << _i32(23))

    @njit(inline="always", fastmath=_FM, error_model="numpy")
    def _log_pos(x):
        """Natural log of a normal float32 x > 0."""
        bits = _as_i32(x)
        e = (bits >> _i32(23)) - _i32(127)
        m = _as_f32((bits & _i32(0x007FFFFF)) | _i32(0x3F800000))  # [1, 2)
        big = m > _SQRT2
        m = m * _HALF if big else m
        fe = _f32(e + _i32(1)) if big else _f32(e)
        xm = m - _ONE
        z = xm * xm
        y = ((((((((_L0 * xm + _L1) * xm + _L2) * xm + _L3) * xm + _L4) * xm + _L5) * xm + _L6) * xm + _L7)
             * xm + _L8) * xm * z
        y = y + _LN2_LO * fe
        y = y - _HALF * z
        return xm + y + _LN2_HI * fe

    @njit(inline="always", fastmath=_FM, error_model="numpy")
    def _tanh_half(x):
        """tanh(x/2) for x >= 0, x clamped to Sionna's phi range [8.5e-8, 16.635532] (float32)."""
        x = min(max(x, _PMIN), _PMAX)
        e = _exp_neg(x)
        # 1 - exp(-x), accurate for small x
        ser = x * (_ONE - x * (_HALF - x * (_SIXTH - x * _TWENTY4TH)))
        d = ser if x < _SMALL else _ONE - e
        return d / (_ONE + e)

    @njit(fastmath=_FM, error_model="numpy", boundscheck=False)
    def _boxplus_rows(Q, R):  # used by the tests: exact check-node update of Q [deg, Z] into R [deg, Z]
        deg, z = Q.shape
        P = np.empty((deg, z), np.float32)
        acc = np.empty(z, np.float32)
        sp = np.empty(z, np.float32)
        m1 = np.empty(z, np.float32)
        m2 = np.empty(z, np.float32)
        im = np.empty(z, np.float32)
        _cn_rows(Q, R, 0, deg, z, P, acc, sp, m1, m2, im, 0, _ONE, _ZERO, _f32(_LLR_MAX))

    # Kernel layout: for one codeword, the c2v messages of base edge e (row block r, column block c, shift s)
    # are R[e, i], i = check r*Z + i, whose VN is c*Z + (i + s) mod Z.  Every check-node row block is done in
    # short passes, each a simple loop over the Z checks that LLVM vectorises: few arrays per loop (so its
    # runtime alias checks stay within limits), indices that are loop counters from 0 or unsigned (so
    # numba's negative-index wrap-around folds away), error_model="numpy" (no zero check on divisions).

    @njit(inline="always", fastmath=_FM, error_model="numpy", boundscheck=False)
    def _rot_gather(L, off, R, e, Q, j, i0, i1):
        """Q[j, i] = L[off + i] - R[e, i] for i in [i0, i1)  (off + i0 >= 0).

        Not clipped: with layered scheduling, clipping the v2c message breaks L = llr + sum(R) and the
        decoder diverges after convergence. Only the magnitudes entering the check node are clipped.
        """
        lo = np.uint64(off + i0)
        ro = np.uint64(i0)
        for t in range(i1 - i0):
            ut = np.uint64(t)
            Q[j, ro + ut] = L[lo + ut] - R[e, ro + ut]

    @njit(inline="always", fastmath=_FM, error_model="numpy", boundscheck=False)
    def _rot_scatter(L, off, R, e, Q, j, i0, i1, layered):
        """L[off + i] = Q[j, i] + R[e, i] (layered) or L[off + i] += R[e, i] (flooding), i in [i0, i1)."""
        lo = np.uint64(off + i0)
        ro = np.uint64(i0)
        if layered:
            for t in range(i1 - i0):
                ut = np.uint64(t)
                L[lo + ut] = Q[j, ro + ut] + R[e, ro + ut]
        else:
            for t in range(i1 - i0):
                ut = np.uint64(t)
                L[lo + ut] = L[lo + ut] + R[e, ro + ut]

    @njit(fastmath=_FM, error_model="numpy", boundscheck=False)
    def _cn_rows(Q, R, e0, deg, zr, P, acc, sp, m1, m2, im, algo, alpha, beta, clip):
        """Check-node update of one row block: v2c Q[j, :zr] -> c2v R[e0 + j, :zr], j < deg."""
        for t in range(zr):
            sp[t] = _ONE
        if algo == 0:  # exact sum-product, Sionna's "boxplus-phi"
            # tanh rule: |R_j| = 2 atanh(prod_{i != j} tanh(|Q_i| / 2)), the extrinsic product by division.
            # Same function as phi(sum_{i != j} phi(|Q_i|)) with Sionna's clamps on |Q| (so |R| <= 16.64),
            # half the exp/log work, and in float32 at least as accurate as Sionna's own phi evaluation.
            for t in range(zr):
                acc[t] = _ONE
            for j in range(deg):
                for t in range(zr):
                    P[j, t] = _tanh_half(abs(Q[j, t]))
            for j in range(deg):
                for t in range(zr):
                    # floor keeps the product normal (no denormal slow path); it only touches products that
                    # are far below any float32 message magnitude anyway
                    acc[t] = max(acc[t] * P[j, t], _PROD_MIN)
            for j in range(deg):
                for t in range(zr):
                    sp[t] = -sp[t] if Q[j, t] < _ZERO else sp[t]
            for j in range(deg):
                for t in range(zr):
                    # with te = acc / p (extrinsic product), 2 atanh(te) = log((p + acc) / (p - acc));
                    # te <= _TANH_MAX keeps the ratio finite
                    p = P[j, t]
                    a = min(acc[t], p * _TANH_MAX)
                    m = sp[t] * _log_pos((p + a) / (p - a))
                    R[e0 + j, t] = -m if Q[j, t] < _ZERO else m
        else:  # min-sum: normalised (algo 1) or offset (algo 2)
            big = _f32(1e30)
            for t in range(zr):
                m1[t] = big
                m2[t] = big
                im[t] = _f32(-1.0)
            for j in range(deg):
                for t in range(zr):
                    P[j, t] = min(abs(Q[j, t]), clip)  # Sionna clips v2c messages to llr_max
            for j in range(deg):
                for t in range(zr):
                    m1[t] = min(m1[t], P[j, t])
            for j in range(deg):  # first position of the minimum
                jf = _f32(j)
                for t in range(zr):
                    im[t] = jf if (im[t] < _ZERO and P[j, t] == m1[t]) else im[t]
            for j in range(deg):
                jf = _f32(j)
                for t in range(zr):
                    m2[t] = m2[t] if im[t] == jf else min(m2[t], P[j, t])
            for j in range(deg):
                for t in range(zr):
                    sp[t] = -sp[t] if Q[j, t] < _ZERO else sp[t]
            for t in range(zr):
                if algo == 1:
                    m1[t] = alpha * m1[t]
                    m2[t] = alpha * m2[t]
                else:
                    m1[t] = max(m1[t] - beta, _ZERO)
                    m2[t] = max(m2[t] - beta, _ZERO)
            for j in range(deg):
                jf = _f32(j)
                for t in range(zr):
                    m = sp[t] * (m2[t] if im[t] == jf else m1[t])
                    R[e0 + j, t] = -m if Q[j, t] < _ZERO else m

    @njit(fastmath=_FM, error_model="numpy", boundscheck=False)
    def _syndrome_ok(L, hard, syn, row_ptr, e_col, e_shift, row_zr, Z):
        """True if the hard decision of L satisfies every (unpruned) parity check."""
        for v in range(L.shape[0]):
            hard[v] = np.uint8(1) if L[v] <= _ZERO else np.uint8(0)
        for r in range(row_zr.shape[0]):
            zr = row_zr[r]
            for i in range(zr):
                syn[i] = np.uint8(0)
            for e in range(row_ptr[r], row_ptr[r + 1]):
                s = e_shift[e]
                base = e_col[e] * Z
                n1 = min(zr, Z - s)
                hv = hard[base + s:base + s + n1]
                for t in range(n1):
                    syn[t] ^= hv[t]
                if zr > Z - s:
                    hv = hard[base:base + zr - (Z - s)]
                    sv = syn[Z - s:zr]
                    for t in range(zr - (Z - s)):
                        sv[t] ^= hv[t]
            tot = 0
            for i in range(zr):
                tot += syn[i]
            if tot != 0:
                return False
        return True

    @njit(fastmath=_FM, error_model="numpy", boundscheck=False)
    def _decode_one(llr, L, Lnew, R, Q, P, acc, sp, m1, m2, im, hard, syn,
                    row_ptr, e_col, e_shift, row_zr, Z, num_iter, algo, layered, alpha, beta, clip, early_stop):
        """Decode one codeword; ``llr`` are internal LLRs log p(0)/p(1) of all Nv mother-code VNs.

        Leaves the a-posteriori LLRs in ``L`` and returns the number of iterations run.
        """
        nv = llr.shape[0]
        nr = row_zr.shape[0]
        for v in range(nv):
            L[v] = llr[v]
        R[:, :] = _ZERO
        it_done = 0
        for it in range(num_iter):
            if not layered:
                for v in range(nv):
                    Lnew[v] = llr[v]
            for r in range(nr):
                zr = row_zr[r]
                e0 = row_ptr[r]
                deg = row_ptr[r + 1] - e0
                for j in range(deg):  # v2c messages
                    e = e0 + j
                    s = e_shift[e]
                    base = e_col[e] * Z
                    _rot_gather(L, base + s, R, e, Q, j, 0, min(zr, Z - s))
                    if zr > Z - s:
                        _rot_gather(L, base + s - Z, R, e, Q, j, Z - s, zr)
                _cn_rows(Q, R, e0, deg, zr, P, acc, sp, m1, m2, im, algo, alpha, beta, clip)
                Ldst = L if layered else Lnew
                for j in range(deg):  # a-posteriori LLRs
                    e = e0 + j
                    s = e_shift[e]
                    base = e_col[e] * Z
                    _rot_scatter(Ldst, base + s, R, e, Q, j, 0, min(zr, Z - s), layered)
                    if zr > Z - s:
                        _rot_scatter(Ldst, base + s - Z, R, e, Q, j, Z - s, zr, layered)
            if not layered:
                for v in range(nv):
                    L[v] = Lnew[v]
            it_done = it + 1
            if early_stop and it_done < num_iter:
                if _syndrome_ok(L, hard, syn, row_ptr, e_col, e_shift, row_zr, Z):
                    break
        return it_done

    @njit(nogil=True, fastmath=_FM, error_model="numpy", boundscheck=False, cache=True)
    def _decode_rows(llr, b0, b1, k, row_ptr, e_col, e_shift, row_zr, Z, num_iter, algo, layered, alpha, beta,
                     clip, early_stop, out, iters):
        """Decode rows [b0, b1) of ``llr`` [B, Nv]: hard info bits into ``out`` [B, k], iterations into ``iters``.

        Releases the GIL: the caller runs several row ranges in parallel threads.
        """
        nv = llr.shape[1]
        ne = e_col.shape[0]
        dmax = 0
        for r in range(row_zr.shape[0]):
            dmax = max(dmax, row_ptr[r + 1] - row_ptr[r])
        L = np.empty(nv, np.float32)
        Lnew = np.empty(nv, np.float32)
        R = np.empty((ne, Z), np.float32)
        Q = np.empty((dmax, Z), np.float32)
        P = np.empty((dmax, Z), np.float32)
        acc = np.empty(Z, np.float32)
        sp = np.empty(Z, np.float32)
        m1 = np.empty(Z, np.float32)
        m2 = np.empty(Z, np.float32)
        im = np.empty(Z, np.float32)
        hard = np.empty(nv, np.uint8)
        syn = np.empty(Z, np.uint8)
        for b in range(b0, b1):
            iters[b] = _decode_one(llr[b], L, Lnew, R, Q, P, acc, sp, m1, m2, im, hard, syn,
                                   row_ptr, e_col, e_shift, row_zr, Z, num_iter, algo, layered, alpha,
                                   beta, clip, early_stop)
            for v in range(k):
                out[b, v] = _ONE if L[v] <= _ZERO else _ZERO


_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOL_LOCK = threading.Lock()


def _forget_pools_in_child() -> None:  # a forked child has none of the parent's pool threads
    global _POOL_LOCK
    _POOLS.clear()
    _POOL_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools_in_child)


def _pool(workers: int) -> ThreadPoolExecutor:
    """A shared pool of exactly ``workers`` threads (the kernels release the GIL)."""
    with _POOL_LOCK:
        pool = _POOLS.get(workers)
        if pool is None:
            pool = _POOLS[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fast-ldpc")
        return pool


# ----------------------------------------------------------------------------------------------------------
# rate recovery shared by the fast decoder and the ldpc-package decoder of ldpc_bench
# ----------------------------------------------------------------------------------------------------------
class _RateRecovery:
    """Maps the n received logits to the internal LLRs (log p0/p1) of the pruned mother code, as Sionna."""

    def __init__(self, encoder, llr_max: float = _LLR_MAX):
        from sionna.phy.fec.ldpc import LDPC5GEncoder

        if not isinstance(encoder, LDPC5GEncoder):
            raise TypeError("encoder must be a sionna.phy.fec.ldpc.LDPC5GEncoder")
        self.k, self.n, self.z = int(encoder.k), int(encoder.n), int(encoder.z)
        self.k_ldpc, self.n_ldpc = int(encoder.k_ldpc), int(encoder.n_ldpc)
        self.k_filler = self.k_ldpc - self.k
        self.llr_max = float(llr_max)
        z = self.z
        nb_punc = (self.n_ldpc - self.k_filler) - self.n - 2 * z
        if nb_punc < 0:
            raise ValueError(f"n={self.n} exceeds the circular buffer ({encoder.n_cb_comp}); "
                             "repetition is not supported")
        # pruning of trailing degree-1 punctured parity nodes, exactly as LDPC5GDecoder(prune_pcm=True)
        dv = np.asarray(encoder.pcm.sum(axis=0)).ravel()
        last_pos = self.n_ldpc
        for idx in range(self.n_ldpc - 1, 0, -1):
            if dv[idx] == 1:
                last_pos = idx
            else:
                break
        self.n_pruned = int(max(last_pos, self.n_ldpc - nb_punc))
        self.m_pruned = self.n_pruned - self.k_ldpc
        out_int_inv = None
        if encoder.num_bits_per_symbol is not None:
            out_int_inv = encoder.out_int_inv.detach().cpu().numpy().astype(np.int64)
        self.out_int_inv = out_int_inv

    def to_internal(self, llr: np.ndarray, width: int | None = None) -> np.ndarray:
        """[B, n] logits (log p1/p0) -> [B, width] float32 LLRs log p0/p1 (width >= n_pruned, zero padded)."""
        z, k = self.z, self.k
        width = self.n_pruned if width is None else width
        bsz = llr.shape[0]
        if self.out_int_inv is not None:
            llr = llr[:, self.out_int_inv]
        lm = np.float32(self.llr_max)
        full = np.zeros((bsz, width), np.float32)
        n_sys = k - 2 * z  # transmitted systematic bits
        ns = min(n_sys, self.n)
        # sign flip: Sionna's logits are log p(1)/p(0); internal LLRs are log p(0)/p(1)
        np.negative(np.clip(llr[:, :ns], -lm, lm), out=full[:, 2 * z:2 * z + ns])
        full[:, k:self.k_ldpc] = lm  # filler bits are known zeros
        npar = min(self.n - ns, self.n_pruned - self.k_ldpc)
        if npar > 0:
            np.negative(np.clip(llr[:, ns:ns + npar], -lm, lm), out=full[:, self.k_ldpc:self.k_ldpc + npar])
        return full


def _as_numpy_2d(llr, n: int) -> tuple[np.ndarray, tuple, torch.device | None]:
    """[..., n] torch/numpy logits -> ([B, n] contiguous float32 numpy, leading shape, torch device or None)."""
    if isinstance(llr, torch.Tensor):
        dev = llr.device
        arr = llr.detach().to("cpu", torch.float32).numpy()
    else:
        dev = None
        arr = np.asarray(llr, dtype=np.float32)
    if arr.ndim == 0 or arr.shape[-1] != n:
        raise ValueError(f"last dimension of llr must be n={n}, got shape {tuple(arr.shape)}")
    lead = arr.shape[:-1]
    return np.ascontiguousarray(arr.reshape(-1, n)), lead, dev


def _to_output(bits: np.ndarray, lead: tuple, k: int, dev):
    """float32 bits [B, k] -> [..., k]; a torch tensor on ``dev`` if the input was one (float32 as Sionna)."""
    bits = bits.reshape(*lead, k)
    if dev is None:
        return bits
    return torch.from_numpy(bits).to(device=dev)


# ----------------------------------------------------------------------------------------------------------
# public decoders
# ----------------------------------------------------------------------------------------------------------
class FastLDPC5GDecoder:
    """Compiled 5G NR LDPC decoder, drop-in for ``LDPC5GDecoder(encoder, hard_out=True, num_iter=...)``.

    :param encoder: the Sionna ``LDPC5GEncoder(k, n[, num_bits_per_symbol])`` of the code.
    :param num_iter: maximum number of BP iterations (default 20, as Sionna).
    :param cn_update: ``"boxplus-phi"`` (default; exact sum-product as the reference; ``"boxplus"`` is the
        same), ``"minsum"`` (plain, as Sionna's), ``"normalized-minsum"`` (scaled by ``alpha``) or
        ``"offset-minsum"`` (offset ``beta``, 0.5 as Sionna's).
    :param schedule: ``"flooding"`` (default, as the reference) or ``"layered"`` (row-block serial; converges
        about twice as fast, so with the same ``num_iter`` its BLER is *better* than the reference's).
    :param early_stop: stop a codeword when its hard decision satisfies all parity checks.
    :param num_threads: decoding threads (default: all cores this process may run on).
    :param llr_max: channel-LLR clip (and filler-bit LLR), 20 as the reference.

    ``__call__(llr[..., n])`` -> hard-decided info bits ``[..., k]`` (float32 0/1; torch in -> torch out on the
    input's device). ``last_iterations`` holds the iterations each codeword of the last call used.
    """

    def __init__(self, encoder, num_iter: int = 20, cn_update: str = "boxplus-phi", schedule: str = "flooding",
                 early_stop: bool = True, alpha: float = 0.75, beta: float = 0.5, num_threads: int | None = None,
                 llr_max: float = _LLR_MAX):
        if not HAVE_NUMBA:
            raise ImportError("FastLDPC5GDecoder needs numba, a core dependency of linksim (pip install numba)")
        if cn_update not in _CN_UPDATES:
            raise ValueError(f"cn_update must be one of {sorted(_CN_UPDATES)}, got {cn_update!r}")
        if schedule not in _SCHEDULES:
            raise ValueError(f"schedule must be one of {sorted(_SCHEDULES)}, got {schedule!r}")
        if int(num_iter) != num_iter or num_iter < 0:
            raise ValueError("num_iter must be a non-negative int")
        self.num_iter = int(num_iter)
        self.cn_update, self.schedule = cn_update, schedule
        self.early_stop, self.alpha, self.beta = bool(early_stop), float(alpha), float(beta)
        self.num_threads = num_threads
        self._rr = _RateRecovery(encoder, llr_max)
        self.encoder = encoder
        self.k, self.n = self._rr.k, self._rr.n
        self.last_iterations: np.ndarray | None = None
        self._build_graph(encoder)

    def _build_graph(self, encoder) -> None:
        """Base-graph (row block, column block, shift) edges of the pruned code, rows in order."""
        rr, z = self._rr, self._rr.z
        bm = np.asarray(encoder._bm)  # -1 = zero block, else cyclic shift
        nc = -(-rr.n_pruned // z)  # column blocks that hold unpruned VNs
        kb = bm.shape[1] - bm.shape[0]
        nr = nc - kb
        row_ptr, cols, shifts, zr = [0], [], [], []
        for r in range(nr):
            cs = np.nonzero(bm[r, :] >= 0)[0]
            if np.any(cs >= nc):  # cannot happen for the 38.212 base graphs
                raise RuntimeError("unexpected base-graph structure")
            for c in cs:
                cols.append(int(c))
                shifts.append(int(bm[r, c]) % z)
            row_ptr.append(len(cols))
            zr.append(min(z, rr.m_pruned - r * z))
        # the pruned checks of a partial last row block must be exactly its trailing rows, i.e. its degree-1
        # parity column must be an identity (shift 0), so that they touch only pruned VNs
        if zr[-1] < z:
            last = nr - 1
            if not (bm[last, nc - 1] == 0 and np.all(bm[:last, nc - 1] < 0)):
                raise RuntimeError("unexpected base-graph structure in the pruned row block")
        self._nv = nc * z
        self._row_ptr = np.asarray(row_ptr, np.int32)
        self._e_col = np.asarray(cols, np.int32)
        self._e_shift = np.asarray(shifts, np.int32)
        self._row_zr = np.asarray(zr, np.int32)

    @property
    def num_edges(self) -> int:
        return int(self._row_zr.size and sum(
            int(self._row_zr[r]) * int(self._row_ptr[r + 1] - self._row_ptr[r]) for r in range(self._row_zr.size)))

    def decode_numpy(self, llr: np.ndarray, num_iter: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """[B, n] float32 logits -> ([B, k] float32 bits, [B] int32 iterations used)."""
        num_iter = self.num_iter if num_iter is None else int(num_iter)
        full = self._rr.to_internal(llr, self._nv)
        bsz = full.shape[0]
        out = np.empty((bsz, self.k), np.float32)
        iters = np.zeros(bsz, np.int32)
        if bsz == 0:
            return out, iters
        if num_iter == 0:
            out[:] = (full[:, :self.k] <= 0)
            return out, iters
        nthreads = available_cores() if self.num_threads is None else max(1, int(self.num_threads))
        args = (self.k, self._row_ptr, self._e_col, self._e_shift, self._row_zr, self._rr.z, num_iter,
                _CN_UPDATES[self.cn_update], _SCHEDULES[self.schedule] == 1,
                np.float32(self.alpha if self.cn_update == "normalized-minsum" else 1.0), np.float32(self.beta),
                np.float32(self._rr.llr_max), self.early_stop, out, iters)
        nchunks = min(bsz, 4 * nthreads) if nthreads > 1 else 1  # a few chunks per thread balance the load
        if nchunks == 1:
            _decode_rows(full, 0, bsz, *args)
        else:
            bounds = np.linspace(0, bsz, nchunks + 1).astype(int)
            pool = _pool(nthreads)
            futs = [pool.submit(_decode_rows, full, int(bounds[i]), int(bounds[i + 1]), *args)
                    for i in range(nchunks)]
            for f in futs:
                f.result()
        return out, iters

    def __call__(self, llr, num_iter: int | None = None):
        arr, lead, dev = _as_numpy_2d(llr, self.n)
        bits, iters = self.decode_numpy(arr, num_iter)
        self.last_iterations = iters
        return _to_output(bits, lead, self.k, dev)


def make_decoder(encoder, impl: str = "fast", num_iter: int = 20, **kwargs) -> Callable:
    """A callable ``llr[..., n] -> info bits [..., k]`` for ``encoder``'s code.

    ``impl``: ``"sionna"`` (reference ``LDPC5GDecoder``, flooding boxplus-phi, no early stop) or ``"fast"``
    (:class:`FastLDPC5GDecoder`); ``kwargs`` go to the decoder. The ``ldpc`` package's decoder, a comparison
    only, is in :mod:`linksim.link.ldpc_bench`.
    """
    if impl == "sionna":
        from sionna.phy.fec.ldpc import LDPC5GDecoder

        return LDPC5GDecoder(encoder, hard_out=True, num_iter=int(num_iter), **kwargs)
    if impl == "fast":
        return FastLDPC5GDecoder(encoder, num_iter=num_iter, **kwargs)
    raise ValueError(f"impl must be 'sionna' or 'fast', got {impl!r}")
