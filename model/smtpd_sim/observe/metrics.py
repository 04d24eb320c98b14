"""Recorder rows → numbers and pandas DataFrames: hops, critical paths, traces.

Everything here is computed from what the recorder saw while the model ran
(``smtpd_sim.observe.recorder`` rows, carried by a run's result); nothing is looked up
from a table of expected values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from smtpd_sim.observe.recorder import (
    EVENT_COLUMNS,
    HOP_COLUMNS,
    RUN_COLUMNS,
    EventRow,
    HopRow,
    RunRow,
)


def reply_steps(recipients: int, messages: int) -> list[str]:
    """The replies a probe client gets, in order (smtpd_sim.world.clients.ClientSession script)."""
    steps = ["banner", "EHLO"]
    for _ in range(messages):
        steps += ["MAIL FROM"] + ["RCPT TO"] * recipients + ["DATA", "end of data"]
    return steps + ["QUIT"]


# the replies of a one-message, one-recipient session: how critical paths are labelled
PROBE_STEPS = tuple(reply_steps(1, 1))


def hops_frame(hops: Sequence[HopRow]) -> pd.DataFrame:
    """One row per imsg received (a run recorded with rows)."""
    return pd.DataFrame.from_records(list(hops), columns=list(HOP_COLUMNS))


def runs_frame(runs: Sequence[RunRow]) -> pd.DataFrame:
    """One row per handler run."""
    return pd.DataFrame.from_records(list(runs), columns=list(RUN_COLUMNS))


def events_frame(events: Sequence[EventRow]) -> pd.DataFrame:
    """One row per world-visible event (replies, crashes, the mta's log lines...)."""
    return pd.DataFrame.from_records(list(events), columns=list(EVENT_COLUMNS))


def trace_hops(hops: Sequence[HopRow]) -> pd.DataFrame:
    """Hop rows as the hop table ``smtpd_sim.observe.traces.write_imsg_trace`` takes
    (``fd`` 1 when a descriptor was passed, -1 when not)."""
    return pd.DataFrame.from_records(
        [(h.time, h.sent_time, h.from_proc, h.to_proc, h.imsg_name, h.len, 1 if h.fd else -1) for h in hops],
        columns=["time", "sent_time", "from_proc", "to_proc", "imsg_name", "len", "fd"])


def critical_paths(runs: Sequence[RunRow], events: Sequence[EventRow]) -> list[dict[str, Any]]:
    """For each SMTP reply: the imsgs on the causal chain from what the client did (connect
    or a command line) to the reply. A request/answer pair is one round trip."""
    parent: dict[int, tuple[int, bool]] = {r.id: (r.cause, r.is_hop) for r in runs}
    out: list[dict[str, Any]] = []
    per_session: dict[int, int] = {}
    for e in events:
        if e.event != "reply":
            continue
        hops = 0
        node = e.cause
        seen = 0
        while node and seen < 10_000:
            seen += 1
            up, is_hop = parent.get(node, (0, False))
            if is_hop:
                hops += 1
            node = up
        i = per_session.get(e.session, 0)
        per_session[e.session] = i + 1
        step = PROBE_STEPS[i] if i < len(PROBE_STEPS) else f"reply {i}"
        out.append({"session": e.session, "step": step, "code": e.detail, "time": e.time, "hops": hops,
                    "round_trips": hops / 2})
    return out
