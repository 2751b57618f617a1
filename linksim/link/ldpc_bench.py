"""The LDPC decoder benchmark: the same noisy codewords decoded by Sionna's ``LDPC5GDecoder`` (the reference),
linksim's compiled :class:`~linksim.link.fast_ldpc.FastLDPC5GDecoder` in its variants and the ``ldpc``
package's C++ ``BpDecoder`` (:class:`LdpcPkgDecoder`, a comparison only: no block uses it); info-bit
throughput, BLER and BER of each. ``linksim bench`` and ``benchmarks/ldpc_bench.py`` call :func:`run_bench`.

A module of its own (it was part of ``fast_ldpc``): the decoder is the numeric core that blocks run, this is
the harness that measures it.
"""
from __future__ import annotations

import math
import os
import time
from typing import Sequence

import numpy as np
import torch

from ..cores import available_cores
from .fast_ldpc import _LLR_MAX, _as_numpy_2d, _RateRecovery, _to_output, make_decoder

__all__ = ["LdpcPkgDecoder", "run_bench", "bench_decoder"]


class LdpcPkgDecoder:
    """The ``ldpc`` package's C++ ``BpDecoder`` on the same pruned 5G code (one codeword at a time).

    Soft input via the syndrome trick: hard decision y of the channel LLRs, per-bit flip probabilities
    1/(1+exp(|L|)), decode the error pattern of syndrome H y, codeword = y xor error. ``bp_method`` is
    ``"product_sum"`` or ``"minimum_sum"`` (with ``ms_scaling_factor``); stops on a zero syndrome.
    """

    def __init__(self, encoder, num_iter: int = 20, bp_method: str = "product_sum", ms_scaling_factor: float = 0.8,
                 schedule: str = "parallel", llr_max: float = _LLR_MAX):
        from ldpc import BpDecoder

        self._rr = _RateRecovery(encoder, llr_max)
        self.k, self.n = self._rr.k, self._rr.n
        self.num_iter = int(num_iter)
        rr = self._rr
        self._pcm = encoder.pcm[:rr.m_pruned, :rr.n_pruned].tocsr().astype(np.uint8)
        self._dec = BpDecoder(self._pcm, error_rate=0.1, max_iter=self.num_iter, bp_method=bp_method,
                              ms_scaling_factor=ms_scaling_factor, schedule=schedule, input_vector_type="syndrome")
        self.last_iterations: np.ndarray | None = None

    def __call__(self, llr, num_iter: int | None = None):
        arr, lead, dev = _as_numpy_2d(llr, self.n)
        self._dec.max_iter = self.num_iter if num_iter is None else int(num_iter)
        full = self._rr.to_internal(arr).astype(np.float64)
        y = (full <= 0).astype(np.uint8)
        synd = (self._pcm @ y.T).T % 2
        prob = 1.0 / (1.0 + np.exp(np.abs(full)))
        out = np.empty((arr.shape[0], self.k), np.float32)
        iters = np.zeros(arr.shape[0], np.int32)
        for b in range(arr.shape[0]):
            if not synd[b].any():  # the hard decision is already a codeword
                out[b] = y[b, :self.k]
                continue
            self._dec.update_channel_probs(prob[b])
            err = self._dec.decode(synd[b].astype(np.uint8))
            out[b] = y[b, :self.k] ^ err[:self.k].astype(np.uint8)
            iters[b] = self._dec.iter
        self.last_iterations = iters
        return _to_output(out, lead, self.k, dev)


def bench_decoder(encoder, impl: str = "fast", num_iter: int = 20, **kwargs):
    """:func:`~linksim.link.fast_ldpc.make_decoder` plus ``impl="ldpc"`` (:class:`LdpcPkgDecoder`)."""
    if impl == "ldpc":
        return LdpcPkgDecoder(encoder, num_iter=num_iter, **kwargs)
    return make_decoder(encoder, impl, num_iter, **kwargs)


# ----------------------------------------------------------------------------------------------------------
# benchmark
# ----------------------------------------------------------------------------------------------------------
_BENCH_VARIANTS: dict[str, tuple[str, dict]] = {
    "sionna": ("sionna", {}),
    "fast": ("fast", {}),
    "fast-noes": ("fast", {"early_stop": False}),
    "fast-layered": ("fast", {"schedule": "layered"}),
    "fast-nms": ("fast", {"cn_update": "normalized-minsum", "alpha": 0.75}),
    "fast-layered-nms": ("fast", {"cn_update": "normalized-minsum", "schedule": "layered", "alpha": 0.75}),
    "fast-layered-oms": ("fast", {"cn_update": "offset-minsum", "schedule": "layered", "beta": 0.5}),
    "ldpc-ps": ("ldpc", {"bp_method": "product_sum"}),
    "ldpc-ms": ("ldpc", {"bp_method": "minimum_sum", "ms_scaling_factor": 0.75}),
}


def _noisy_codewords(encoder, k: int, frames: int, esno_db: float, bits_per_symbol: int, gen: torch.Generator):
    """Random info bits, their QAM/AWGN channel logits (Sionna mapper, APP demapper); Es/N0 in dB."""
    from sionna.phy.mapping import Demapper, Mapper

    u = torch.randint(0, 2, (frames, k), generator=gen).to(torch.float32)
    c = encoder(u)
    mapper = Mapper("qam", bits_per_symbol)
    demapper = Demapper("app", "qam", bits_per_symbol)
    x = mapper(c)
    no = 10.0 ** (-esno_db / 10.0)
    noise = torch.complex(torch.randn(x.shape, generator=gen), torch.randn(x.shape, generator=gen))
    y = x + noise.to(x.dtype) * math.sqrt(no / 2.0)
    llr = demapper(y, torch.tensor(no, dtype=torch.float32))
    return u, llr.to(torch.float32)


def run_bench(k: int, n: int, iters: int, snrs_db: Sequence[float], frames: int, bits_per_symbol: int = 2,
              seed: int = 0, decoders: Sequence[str] = ("sionna", "fast"), batch: int | None = None,
              interleave: bool = True, warmup: bool = True, threads: int | None = None,
              verbose: bool = False) -> dict:
    """Decode the same noisy codewords with each decoder; info-bit throughput, BLER and BER per SNR.

    ``snrs_db`` are Es/N0 points in dB (QAM with ``bits_per_symbol`` over AWGN). ``decoders`` are names from
    ``"sionna"``, ``"fast"``, ``"fast-noes"`` (no early stop), ``"fast-layered"``, ``"fast-nms"``,
    ``"fast-layered-nms"``, ``"fast-layered-oms"``, ``"ldpc-ps"``, ``"ldpc-ms"``. ``batch`` splits the frames
    into decoder calls (default: all at once); ``threads`` sets the fast decoders' threads (default: all
    cores; Sionna uses torch's intra-op threads, see ``torch.set_num_threads``). Timing covers the decoder
    call only (LLRs in, bits out), after a warm-up call (JIT compilation) on a few frames.

    Returns a dict with ``config``; ``decoders``: per name, lists over the SNRs of ``mbps`` (information
    bits per second / 1e6), ``seconds``, ``bler``, ``ber``, ``avg_iters``, ``frames_differing_from_ref``
    (codewords whose decoded bits differ from the first decoder's), and ``mbps_total`` over all SNRs;
    ``reference`` (the first decoder's name); ``speedup``: per decoder vs the reference, ``total`` and
    ``per_snr``.
    """
    from sionna.phy.fec.ldpc import LDPC5GEncoder

    snrs = [float(s) for s in snrs_db]
    for d in decoders:
        if d not in _BENCH_VARIANTS:
            raise ValueError(f"unknown decoder {d!r}; known: {', '.join(_BENCH_VARIANTS)}")
    if bits_per_symbol < 1 or n % bits_per_symbol:
        raise ValueError("n must be a multiple of bits_per_symbol")
    enc = LDPC5GEncoder(k, n, num_bits_per_symbol=bits_per_symbol if interleave and bits_per_symbol > 1 else None)
    decs = {}
    for name in decoders:
        impl, kw = _BENCH_VARIANTS[name]
        if impl == "fast" and threads:
            kw = {**kw, "num_threads": int(threads)}
        decs[name] = bench_decoder(enc, impl, iters, **kw)
    gen = torch.Generator().manual_seed(int(seed))
    batch = int(batch) if batch else frames
    res = {name: {"seconds": [], "mbps": [], "bler": [], "ber": [], "avg_iters": [], "frames_differing_from_ref": []}
           for name in decoders}
    for si, snr in enumerate(snrs):
        u, llr = _noisy_codewords(enc, k, frames, snr, bits_per_symbol, gen)
        ref_bits = None
        for name, dec in decs.items():
            if warmup and si == 0:
                dec(llr[: min(4, frames)])
            t_all, errs_blk, errs_bit, its, outs = 0.0, 0, 0, [], []
            for b0 in range(0, frames, batch):
                lb, ub = llr[b0:b0 + batch], u[b0:b0 + batch]
                t0 = time.perf_counter()
                uh = dec(lb)
                t_all += time.perf_counter() - t0
                uh = uh.to(torch.float32)
                outs.append(uh)
                diff = uh != ub
                errs_blk += int(diff.any(dim=1).sum())
                errs_bit += int(diff.sum())
                li = getattr(dec, "last_iterations", None)
                if li is not None:
                    its.append(np.asarray(li))
            r = res[name]
            r["seconds"].append(t_all)
            r["mbps"].append(frames * k / t_all / 1e6)
            r["bler"].append(errs_blk / frames)
            r["ber"].append(errs_bit / (frames * k))
            r["avg_iters"].append(float(np.concatenate(its).mean()) if its else float(iters))
            uh_all = torch.cat(outs)
            if ref_bits is None:
                ref_bits = uh_all
            r["frames_differing_from_ref"].append(int((uh_all != ref_bits).any(dim=1).sum()))
            if verbose:
                print(f"  {snr:5.2f} dB {name:>16s}: {r['mbps'][-1]:8.4g} Mbit/s  BLER {r['bler'][-1]:.4f}  "
                      f"BER {r['ber'][-1]:.2e}  avg it {r['avg_iters'][-1]:.1f}", flush=True)
    for r in res.values():
        r["mbps_total"] = len(snrs) * frames * k / sum(r["seconds"]) / 1e6
    ref = decoders[0]
    speedup = {name: {"total": res[name]["mbps_total"] / res[ref]["mbps_total"],
                      "per_snr": [a / b for a, b in zip(res[name]["mbps"], res[ref]["mbps"])]}
               for name in decoders}
    return {
        "config": {"k": k, "n": n, "iters": iters, "snrs_db": snrs, "snr_unit": "Es/N0 dB", "frames": frames,
                   "bits_per_symbol": bits_per_symbol, "seed": seed, "batch": batch, "interleave": interleave,
                   "torch_threads": torch.get_num_threads(),
                   "decoder_threads": int(threads) if threads else available_cores(), "cpu_count": os.cpu_count()},
        "decoders": res,
        "reference": ref,
        "speedup": speedup,
    }
