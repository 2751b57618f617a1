"""Sufficient statistics of a metric row and its 95 % confidence interval.

A metric sink attaches one of two statistics to each :class:`linksim.block.Metric` it returns:

``Rate``  ``errors`` error events among ``trials`` units (bits, blocks, images), optionally grouped in
          ``frames`` frames with ``frame_sq`` = sum over frames of (errors in the frame)^2. The value is the
          error rate errors/trials, or with ``success`` the success rate 1 - errors/trials (accuracy).
``Mean``  ``count`` per-unit values with their ``total`` and ``total_sq`` (sum and sum of squares).

Intervals:

* Rates: **Clopper-Pearson** (exact binomial). Chosen over Wilson because it never covers less than the
  nominal level, in particular at the high-SNR end of a BER/BLER curve where a point has a handful of
  errors or none (Wilson's coverage dips below 95 % for n*p of a few); the price is a slightly wider
  interval. For integer counts this is ``scipy.stats.binomtest(...).proportion_ci("exact")``; the beta
  quantile form below (``scipy.special.betaincinv``) is the same interval and also accepts the non-integer
  effective counts of the next point (tests check both agree).
* Rates over frames (BER: bits within a frame are not independent, e.g. after a decoder errors come in
  bursts): the frame is the unit. We use the effective-sample-size Clopper-Pearson interval of Korn and
  Graubard (1998): the variance of the ratio estimator p = sum e_f / sum m_f over frames gives a design
  effect deff = var_frames(p) / (p(1-p)/trials), clipped to [1, bits per frame], and the exact interval is
  taken for p * n_eff errors among n_eff = trials/deff units. Independent bits (uncoded AWGN) give deff ~ 1;
  a point with no error, where no variance can be estimated, takes the worst case deff = bits per frame
  (the frames are the units).
* Means: Student t interval over the per-unit values (``scipy.special.stdtrit``, i.e. ``scipy.stats.t.ppf``).
"""
from __future__ import annotations

import dataclasses
import math

LEVEL = 0.95


@dataclasses.dataclass(frozen=True)
class Rate:
    """``errors`` events among ``trials`` units (grouped in ``frames`` frames of equal size when given)."""

    errors: int
    trials: int
    frames: int | None = None
    frame_sq: float | None = None  # sum over frames of (errors in the frame)^2
    success: bool = False  # the reported value is 1 - errors/trials

    @property
    def value(self) -> float:
        p = self.errors / self.trials if self.trials else float("nan")
        return 1.0 - p if self.success else p

    def interval(self, level: float = LEVEL) -> tuple[float, float]:
        if not self.trials:
            return float("nan"), float("nan")
        x, n = float(self.errors), float(self.trials)
        if self.frames and self.frames < self.trials:
            deff = design_effect(self.errors, self.trials, self.frames, self.frame_sq)
            n = n / deff
            x = x / deff
        lo, hi = clopper_pearson(x, n, level)
        return (1.0 - hi, 1.0 - lo) if self.success else (lo, hi)


@dataclasses.dataclass(frozen=True)
class Mean:
    """The mean of ``count`` per-unit values, kept as their sum and sum of squares."""

    count: int
    total: float
    total_sq: float

    @classmethod
    def of(cls, values) -> "Mean":
        """From a 1-D tensor/array of per-unit values (accumulated in float64)."""
        import numpy as np

        v = np.asarray(values, dtype=np.float64).reshape(-1)
        return cls(int(v.size), float(v.sum()), float((v * v).sum()))

    @property
    def value(self) -> float:
        return self.total / self.count if self.count else float("nan")

    def interval(self, level: float = LEVEL) -> tuple[float, float]:
        return t_interval(self.count, self.total, self.total_sq, level)


def clopper_pearson(x: float, n: float, level: float = LEVEL) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval for x successes in n trials via beta quantiles; x, n may be
    non-integer (effective counts). Equals ``binomtest(x, n).proportion_ci(level, 'exact')`` for integers.
    ``scipy.special.betaincinv`` is ``scipy.stats.beta.ppf`` without importing scipy.stats (~1-2 s per run)."""
    from scipy.special import betaincinv

    a = 1.0 - level
    lo = 0.0 if x <= 0 else float(betaincinv(x, n - x + 1, a / 2))
    hi = 1.0 if x >= n else float(betaincinv(x + 1, n - x, 1 - a / 2))
    return lo, hi


def design_effect(errors: int, trials: int, frames: int, frame_sq: float | None) -> float:
    """Korn-Graubard design effect of a rate over equal-size frames, clipped to [1, trials/frames]."""
    m = trials / frames  # units per frame
    if errors <= 0 or frames < 2 or frame_sq is None:
        return m  # no variance to estimate: the frame is the unit (conservative)
    p = errors / trials
    if p >= 1.0:
        return 1.0
    # variance of the mean of per-frame rates e_f/m: s^2 / frames
    s2 = (frame_sq - errors * errors / frames) / (frames - 1) / (m * m)
    var_p = max(s2, 0.0) / frames
    deff = var_p / (p * (1 - p) / trials)
    return min(max(deff, 1.0), m)


def t_interval(count: int, total: float, total_sq: float, level: float = LEVEL) -> tuple[float, float]:
    """Student t interval for the mean of ``count`` values given their sum and sum of squares."""
    if count < 2:
        return float("nan"), float("nan")
    from scipy.special import stdtrit  # scipy.stats.t.ppf without importing scipy.stats

    mean = total / count
    var = max(total_sq - total * mean, 0.0) / (count - 1)
    half = float(stdtrit(count - 1, 0.5 + level / 2)) * math.sqrt(var / count)
    return mean - half, mean + half
