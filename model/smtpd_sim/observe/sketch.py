"""Samples in fixed memory: a count, an exact sum, minimum and maximum, and percentiles
within a relative error from logarithmic buckets (the DDSketch construction: Masson, Rim
and Lee, "DDSketch", VLDB 2019). A streaming run keeps latencies in one of these instead
of a list, so its memory does not grow with how many values passed.

``mean``, ``percentile`` and ``maximum`` take either a list or a :class:`Sketch`.
"""

from __future__ import annotations

import copy
import math
from array import array
from collections.abc import Sequence

# user parameter: relative error of a sketched percentile (0.1 %)
DEFAULT_ALPHA = 1e-3
# user parameter: the values told apart within alpha, 1 us to 10**7 s (116 days, beyond
# any queue expiry): about 15,000 buckets at 0.1 %, 120 KB. Values outside go to the end
# buckets; the minimum and maximum stay exact.
RANGE_S = (1e-6, 1e7)


class Sketch:
    """Count, exact sum/min/max; nearest-rank percentiles within ``alpha`` (relative)."""

    def __init__(self, alpha: float = DEFAULT_ALPHA) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), not {alpha}")
        self.alpha = alpha
        self.gamma = (1.0 + alpha) / (1.0 - alpha)
        self._log_gamma = math.log(self.gamma)
        self._first = math.floor(math.log(RANGE_S[0]) / self._log_gamma)
        size = math.ceil(math.log(RANGE_S[1]) / self._log_gamma) - self._first + 1
        self._last = size - 1
        # bucket i holds the values in (gamma**(first+i-1), gamma**(first+i)]
        self.buckets = array("Q", bytes(8 * size))
        self.zeros = 0  # values <= 0 (an instant reply), below every bucket
        self.n = 0
        self.total = 0.0  # summed in arrival order: the same float as sum() of the list
        self.lo = math.inf
        self.hi = -math.inf

    def append(self, x: float) -> None:
        """One more value."""
        self.n += 1
        self.total += x
        if x < self.lo:
            self.lo = x
        if x > self.hi:
            self.hi = x
        if x <= 0.0:
            self.zeros += 1
            return
        i = math.ceil(math.log(x) / self._log_gamma) - self._first
        last = self._last
        self.buckets[0 if i < 0 else last if i > last else i] += 1

    def __len__(self) -> int:
        return self.n

    def copy(self) -> Sketch:
        """A snapshot that later values do not change."""
        c = copy.copy(self)  # the scalars; the buckets get their own array
        c.buckets = array("Q", self.buckets)
        return c

    def counts(self) -> list[tuple[float, int]]:
        """(value, how many) in increasing order, each bucket at its centre: for histograms."""
        out = [(max(self.lo, 0.0), self.zeros)] if self.zeros else []
        out += [(self._centre(i), c) for i, c in enumerate(self.buckets) if c]
        return out

    def _centre(self, i: int) -> float:
        # the bucket's centre in relative terms, clamped so the extremes are exact
        v = 2.0 * self.gamma ** (self._first + i) / (self.gamma + 1.0)
        return min(max(v, self.lo), self.hi)

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile (q in [0, 100]), as :func:`percentile` on the list would
        give, within ``alpha``; NaN for no data."""
        n = self.n
        if not n:
            return math.nan
        k = _rank(n, q)
        if k == n - 1:
            return self.hi  # the extremes are kept exactly
        if k < self.zeros or k == 0:
            return self.lo
        seen = self.zeros
        for i, c in enumerate(self.buckets):
            seen += c
            if seen > k:
                return self._centre(i)
        return self.hi  # not reached: the buckets hold n - zeros values


Samples = Sequence[float] | Sketch


def snapshot(xs: Samples) -> Samples:
    """The samples so far, unchanged by what is appended later."""
    return xs.copy() if isinstance(xs, Sketch) else list(xs)


def mean(xs: Samples) -> float:
    """Arithmetic mean; NaN for no data."""
    if isinstance(xs, Sketch):
        return xs.total / xs.n if xs.n else math.nan
    return sum(xs) / len(xs) if xs else math.nan


def percentile(xs: Samples, q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]); NaN for no data."""
    if isinstance(xs, Sketch):
        return xs.percentile(q)
    if not xs:
        return math.nan
    return sorted(xs)[_rank(len(xs), q)]


def _rank(n: int, q: float) -> int:
    """The 0-based nearest rank of percentile ``q`` among ``n`` values."""
    return max(0, min(n - 1, math.ceil(q / 100.0 * n) - 1))


def maximum(xs: Samples) -> float | None:
    """The largest value; None for no data."""
    if isinstance(xs, Sketch):
        return xs.hi if xs.n else None
    return max(xs) if xs else None
