"""Student's t and the mean interval (observe/stats.py), against published tables."""

from __future__ import annotations

import statistics

import pytest

from smtpd_sim.observe.stats import t_cdf, t_quantile

# ---- Student t -------------------------------------------------------------------------------

# Two-sided 95 % critical values t(0.975, df): NIST/SEMATECH e-Handbook of Statistical
# Methods, §1.3.6.7.2 "Critical values of the Student's t distribution".
T_TABLE = {1: 12.706, 2: 4.303, 4: 2.776, 9: 2.262, 30: 2.042, 100: 1.984}


@pytest.mark.parametrize(("df", "expected"), sorted(T_TABLE.items()))
def test_t_quantile_matches_the_table(df: int, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-3)


def test_t_quantile_is_symmetric_and_inverts_the_cdf() -> None:
    for df in (1.5, 3, 7.25, 50):
        for p in (0.6, 0.9, 0.995):
            q = t_quantile(p, df)
            assert t_cdf(q, df) == pytest.approx(p, abs=1e-9)
            assert t_quantile(1 - p, df) == pytest.approx(-q, rel=1e-9)


def test_t_quantile_tends_to_the_normal() -> None:
    assert t_quantile(0.975, 1e7) == pytest.approx(statistics.NormalDist().inv_cdf(0.975), abs=1e-5)


def test_t_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)
    with pytest.raises(ValueError):
        t_cdf(1.0, 0)
