"""Finite-blocklength reference: the normal approximation of Polyanskiy, Poor and Verdu (2010).

The smallest block error probability of a code with k information bits over n channel uses is
approximately

    eps*(n, k) ~ Q( (n C - k + log2(n) / 2) / sqrt(n V) )

with C the capacity and V the dispersion (variance of the information density) of one channel use, both in
bits. Here one use is one complex symbol over complex AWGN at Es/N0 = ``snr_db``:

* Gaussian input / no input constraint (closed form): C = log2(1 + rho), V = rho (rho + 2) / (rho + 1)^2 *
  log2(e)^2, twice the real-AWGN dispersion of PPV at the same SNR per real dimension (the variance of the
  information density w.r.t. the capacity-achieving output distribution for inputs on the power shell);
* the constellation actually used (Sionna's BPSK/QAM points, uniform input): C = E[i(X;Y)],
  V = Var[i(X;Y)] with i(x;y) = log2 p(y|x)/p(y), averaged over the M points and over the complex noise by
  Gauss-Hermite quadrature (``numpy.polynomial.hermite_e``). SciPy has no routine for the constrained
  capacity/dispersion, hence the quadrature here; tests compare it with ``scipy.integrate.quad`` on the
  binary-input channel and with the published rate-1/2 BI-AWGN threshold.

The log2(n)/2 third-order term is the usual one for the normal approximation (it is exact for Gaussian
input up to O(1) and for discrete inputs it is the standard approximation used in the literature).
"""
from __future__ import annotations

import functools
import math

import numpy as np

LOG2E = math.log2(math.e)


def gaussian_cv(snr_db: float) -> tuple[float, float]:
    """Capacity and dispersion (bits, bits^2 per complex use) of complex AWGN with Gaussian input."""
    rho = 10 ** (snr_db / 10)
    return math.log2(1 + rho), rho * (rho + 2) / (rho + 1) ** 2 * LOG2E ** 2


@functools.lru_cache(maxsize=16)
def constellation(bits_per_symbol: int) -> tuple[complex, ...]:
    """The unit-energy points of Sionna's mapper for this order (BPSK = Sionna 'pam' with 1 bit)."""
    from sionna.phy.mapping import Constellation

    kind = "pam" if bits_per_symbol == 1 else "qam"
    pts = Constellation(kind, bits_per_symbol).points
    return tuple(complex(p) for p in np.asarray(pts.detach().cpu().numpy() if hasattr(pts, "detach") else pts))


def constrained_cv(snr_db: float, points, nodes: int | None = None) -> tuple[float, float]:
    """Capacity and dispersion (bits per complex use) of complex AWGN at Es/N0 ``snr_db`` with uniform input
    over ``points`` (normalised here to unit average energy), by Gauss-Hermite quadrature over the noise
    (``nodes`` per real dimension; default 64, 24 for 64/256-QAM whose cost grows with M^2)."""
    x = np.asarray(points, dtype=np.complex128)
    nodes = nodes or (64 if len(x) <= 16 else 24)
    x = x / np.sqrt(np.mean(np.abs(x) ** 2))
    M = len(x)
    n0 = 10 ** (-snr_db / 10)
    t, w = np.polynomial.hermite_e.hermegauss(nodes)  # nodes/weights for exp(-t^2/2)
    w = w / np.sqrt(2 * np.pi)
    # complex noise on the 2-D product grid: real and imaginary parts N(0, n0/2)
    s = math.sqrt(n0 / 2)
    noise = (s * (t[:, None] + 1j * t[None, :])).reshape(-1)
    weight = (w[:, None] * w[None, :]).reshape(-1)
    # i(x; y) = log2 M - log2 sum_x' exp(-(|x - x' + z|^2 - |z|^2) / n0)
    d = x[:, None, None] - x[None, :, None] + noise[None, None, :]  # [x, x', z]
    expo = -(np.abs(d) ** 2 - np.abs(noise)[None, None, :] ** 2) / n0
    top = expo.max(axis=1, keepdims=True)
    lse = (top[:, 0, :] + np.log(np.exp(expo - top).sum(axis=1))) * LOG2E  # [x, z], bits
    dens = math.log2(M) - lse
    c = float((dens * weight[None, :]).sum() / M)
    v = float((dens ** 2 * weight[None, :]).sum() / M) - c * c
    return c, max(v, 0.0)


def normal_approx_bler(n: float, k: float, capacity: float, dispersion: float) -> float:
    """Normal approximation of the best BLER with k information bits over n channel uses."""
    from scipy.stats import norm

    if dispersion <= 0:
        return 0.0 if n * capacity > k else 1.0
    return float(norm.sf((n * capacity - k + 0.5 * math.log2(n)) / math.sqrt(n * dispersion)))


@functools.lru_cache(maxsize=4096)
def bler_normal_approx(n: float, k: float, snr_db: float, bits_per_symbol: int | None = None) -> float:
    """Normal approximation at Es/N0 ``snr_db``: Gaussian input when ``bits_per_symbol`` is None, else the
    BPSK/QAM constellation of that order."""
    if bits_per_symbol is None:
        c, v = gaussian_cv(snr_db)
    else:
        c, v = constrained_cv(snr_db, constellation(bits_per_symbol))
    return normal_approx_bler(n, k, c, v)


def snr_at_bler(n: float, k: float, target: float, bits_per_symbol: int | None = None,
                lo: float = -10.0, hi: float = 30.0) -> float:
    """Es/N0 (dB) where the normal approximation reaches BLER ``target`` (``scipy.optimize.brentq``)."""
    from scipy.optimize import brentq

    return float(brentq(lambda s: bler_normal_approx(n, k, s, bits_per_symbol) - target, lo, hi, xtol=1e-4))


def crossing(snr_db, bler, target: float) -> float:
    """Es/N0 where a simulated BLER curve first falls to ``target``: linear interpolation of log(BLER)
    between the two bracketing points (nan if the curve never brackets it)."""
    pts = sorted((float(s), float(b)) for s, b in zip(snr_db, bler) if b == b)
    for (s0, b0), (s1, b1) in zip(pts, pts[1:]):
        if b0 >= target > b1:
            if b1 <= 0:
                return s1
            return s0 + (s1 - s0) * math.log(b0 / target) / math.log(b0 / b1)
    return float("nan")
