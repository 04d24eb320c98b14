"""Figures of the MFA post's claims (figures.claims): each carries the numbers it was given,
and the provenance line sits under the axes."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from smtpd_sim.figures.claims import (
    busy_figure,
    history_figure,
    klondike_figure,
    memory_figure,
    provenance,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + [t.get_text() for t in fig.texts]


def test_provenance_line_below_the_axes() -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    fig.tight_layout()
    before = ax.get_position().y0
    provenance(fig, "Source: read from C.")
    assert "Source: read from C." in _texts(fig)
    assert ax.get_position().y0 > before  # the axes moved up to make room


def test_busy_figure_lines_and_knee() -> None:
    sw = pd.DataFrame({"rate_per_s": [100, 200], "offered_msg_s": [100, 200], "accepted_msg_s": [100, 190],
                       "cores_used": [0.5, 1.9], "cores": [2, 2], "busy_smtp": [0.1, 0.3], "busy_mta": [0.0, 0.01]})
    fig = busy_figure(sw, 100, ["smtp", "mta", "nosuch"], "with-mfa")
    a1, a2 = fig.axes[0], fig.axes[1]
    lines = [ln for ln in a1.lines if ln.get_label() in ("smtp", "mta")]
    assert [list(ln.get_ydata()) for ln in lines] == [pytest.approx([10, 30]), pytest.approx([0, 1])]
    assert any(list(ln.get_xdata()) == [100, 100] for ln in a1.lines)  # the knee
    assert "with-mfa" in a1.get_title() and "2-core" in a1.get_title()
    assert any(ln.get_label() == "cores used" for ln in fig.axes[2].lines)
    assert a2.get_ylabel() == "messages per second"


def test_history_figure_values_and_changes() -> None:
    t = pd.DataFrame({"step": ["5.4.2", "MFA removed", "without-mfa (never shipped)"],
                      "processes": [9, 6, 8], "channels": [23, 12, 20], "hops_local": [41, 28, 28],
                      "Δprocesses": pd.array([pd.NA, -3, -1], dtype="Int64"),
                      "Δchannels": pd.array([pd.NA, -11, -3], dtype="Int64"),
                      "Δhops_local": pd.array([pd.NA, -13, -13], dtype="Int64")})
    fig = history_figure(t)
    texts = _texts(fig)
    assert "9" in texts and "6\n(-3)" in texts and "28\n(-13)" in texts
    bars = [p for p in fig.axes[0].patches]
    assert [b.get_height() for b in bars] == [9, 6, 8]
    assert bars[2].get_hatch()  # the counterfactual is hatched


def test_memory_figure_sums_in_titles() -> None:
    tab = {"pony": {"rss": 8e6, "pss": 2e6, "uss": 1.5e6}, "lka": {"rss": 9e6, "pss": 3e6, "uss": 2e6}}
    fig = memory_figure([("real 6.8", tab)], "Memory")
    ax = fig.axes[0]
    assert "Σ RSS 17.0 MB, Σ PSS 5.0 MB, Σ USS 3.5 MB" in ax.get_title()
    assert sorted(b.get_height() for b in ax.patches) == pytest.approx([1.5, 2, 2, 3, 8, 9])


def test_klondike_figure_interval_and_seed_band() -> None:
    t = pd.DataFrame({"tls_share": [0.0, 1.0], "n": [5, 5], "change": [0.0, -0.05], "low": [0.0, -0.08],
                      "high": [0.0, -0.02], "seed_min": [0.0, -0.09], "seed_max": [0.0, -0.03]})
    fig = klondike_figure(t)
    ax = fig.axes[0]
    assert "5 seeds" in ax.get_title() and "klondike" in ax.get_title()
    assert list(ax.lines[1].get_ydata()) == pytest.approx([0.0, -5.0])
