"""run.png: a short run (too few queue samples for a curve) adapts instead of drawing an
empty or two-point line."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from smtpd_sim.figures.run import MIN_SAMPLES, backlog_steps, few_samples_note, run_figure
from smtpd_sim.studies.run import SAMPLE_COLUMNS

LEDGER = {"accepted": 3, "delivered": 2, "bounced": 0, "expired": 0, "queued": 1, "lost": 0}


def _res(sample_s: float, simulated_s: float) -> SimpleNamespace:
    return SimpleNamespace(name="short", era="pony-6.8", seed=1, ledger=LEDGER, simulated_s=simulated_s,
                           config={"scenario": {"sample_s": sample_s, "fault": []}})


def _samples(times: list[float]) -> pd.DataFrame:
    return pd.DataFrame([(t, 1, 0, 1, 0, 3, 2, 0, 0, 0, 0) for t in times], columns=list(SAMPLE_COLUMNS))


def _messages() -> pd.DataFrame:
    return pd.DataFrame({"accepted_at": [1.0, 2.0, 2.0, 5.0], "ended_at": [3.0, 2.0, np.nan, 6.0],
                         "state": ["delivered", "delivered", "queued", "sent"],
                         "kind": ["local", "relay", "relay", "bounce"]})


def test_the_note_only_below_the_threshold() -> None:
    assert few_samples_note(MIN_SAMPLES, 60, 3600, has_messages=True) is None
    note = few_samples_note(1, 300, 300, has_messages=True)
    assert note is not None and "\n" not in note
    assert note.startswith("run.png: 1 queue sample (one every 300 s) in 300 simulated s, too few for a curve")
    assert "sample_s <= 30 s" in note
    assert "keeps no messages" in (few_samples_note(2, 300, 600, has_messages=False) or "")


def test_backlog_steps_count_what_is_accepted_and_not_settled() -> None:
    t, n = backlog_steps(_messages())
    # the bounce row is the daemon's own mail: left out; the one accepted and settled at 2.0
    # counts up before it counts down
    assert list(t) == [1.0, 2.0, 2.0, 2.0, 3.0]
    assert list(n) == [1, 2, 3, 2, 1]
    t, n = backlog_steps(_messages().iloc[0:0])
    assert len(t) == len(n) == 0


def test_a_short_run_draws_the_backlog_and_says_why() -> None:
    fig = run_figure(_res(300, 300), _samples([300.0]), _messages())
    ax = fig.axes[0]
    labels = [ln.get_label() for ln in ax.get_lines()]
    assert "accepted, not yet settled (per message)" in labels
    assert all(ln.get_marker() == "o" for ln in ax.get_lines() if "per message" not in ln.get_label())
    assert any("too few for a curve" in t.get_text() for t in ax.texts)


def test_a_long_enough_run_is_drawn_as_before() -> None:
    times = [60.0 * k for k in range(1, MIN_SAMPLES + 1)]
    fig = run_figure(_res(60, times[-1]), _samples(times), _messages())
    ax = fig.axes[0]
    assert [ln.get_label() for ln in ax.get_lines()] == [
        "accepted, not yet settled", "waiting for a retry (scheduler pending)", "in flight"]
    assert all(ln.get_marker() in ("None", None, "") for ln in ax.get_lines())
    assert not any("too few" in t.get_text() for t in ax.texts)
