"""The sketch a streaming run keeps instead of sample lists: exact count, sum, extremes;
percentiles within its relative error of the nearest-rank percentile of the list."""

from __future__ import annotations

import math
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smtpd_sim.observe.sketch import Sketch, maximum, mean, percentile, snapshot

VALUES = st.lists(st.one_of(st.just(0.0), st.floats(1e-6, 1e4, allow_nan=False)), min_size=1, max_size=300)
QS = st.floats(0, 100)


@settings(max_examples=300, deadline=None)
@given(VALUES, QS)
def test_percentile_within_alpha_of_the_exact_one(xs: list[float], q: float) -> None:
    sk = Sketch()
    for x in xs:
        sk.append(x)
    exact = percentile(xs, q)
    approx = sk.percentile(q)
    assert abs(approx - exact) <= sk.alpha * exact + 1e-12, (exact, approx)


@settings(max_examples=200, deadline=None)
@given(VALUES)
def test_count_mean_extremes_are_exact(xs: list[float]) -> None:
    sk = Sketch()
    for x in xs:
        sk.append(x)
    assert len(sk) == len(xs)
    assert mean(sk) == mean(xs)  # the same additions in the same order: the same float
    assert maximum(sk) == max(xs)
    assert sk.percentile(100) == max(xs) and sk.percentile(0) == min(xs)
    assert sum(n for _v, n in sk.counts()) == len(xs)


def test_memory_is_fixed_whatever_comes() -> None:
    sk = Sketch()
    size = sys.getsizeof(sk.buckets)
    for i in range(100_000):
        sk.append(10.0 ** (i % 13 - 6) * (1 + i % 997 / 997))  # 1 us .. 20 Ms, many times over
    assert sys.getsizeof(sk.buckets) == size and len(sk) == 100_000
    assert sk.percentile(100) == sk.hi == max(10.0 ** (i % 13 - 6) * (1 + i % 997 / 997) for i in range(100_000))


def test_outside_the_range_counted_at_the_ends() -> None:
    sk = Sketch()
    for x in (1e-9, 1e-3, 1e9):
        sk.append(x)
    assert len(sk) == 3 and sk.percentile(0) == 1e-9 and sk.percentile(100) == 1e9
    assert abs(sk.percentile(50) - 1e-3) <= sk.alpha * 1e-3


def test_snapshot_is_not_changed_by_later_values() -> None:
    sk = Sketch()
    sk.append(1.0)
    snap = snapshot(sk)
    sk.append(50.0)
    assert len(snap) == 1 and snap.percentile(99) == 1.0 and maximum(snap) == 1.0
    lst = [1.0]
    lsnap = snapshot(lst)
    lst.append(2.0)
    assert lsnap == [1.0]


def test_empty_and_bad_alpha() -> None:
    sk = Sketch()
    assert math.isnan(sk.percentile(50)) and math.isnan(mean(sk)) and maximum(sk) is None
    with pytest.raises(ValueError):
        Sketch(alpha=0.0)
