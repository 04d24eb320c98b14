"""The recorder: one row per hop and per handler run, plus always-on counters.

Rows are plain tuples appended to lists (cheap on the hot path) and become pandas
DataFrames in ``model.metrics``. With ``rows=False`` only counters are kept, so memory
stays bounded by what is in flight, not by what has passed (long runs, benchmarks).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

HOP_COLUMNS = (
    "time", "sent_time", "from_proc", "to_proc", "imsg_name", "kind", "len", "fd", "stat",
    "id", "cause",
)
RUN_COLUMNS = ("process", "start", "cost", "key", "id", "cause", "is_hop")
EVENT_COLUMNS = ("time", "event", "process", "session", "detail", "cause")


class Recorder:
    """Collects hops, handler runs and world events of one simulation."""

    __slots__ = ("rows", "hops", "runs", "events", "hop_counts", "stat_counts", "background")

    def __init__(self, *, rows: bool = True) -> None:
        self.rows = rows
        self.hops: list[tuple[Any, ...]] = []
        self.runs: list[tuple[Any, ...]] = []
        self.events: list[tuple[Any, ...]] = []
        # (from, to, imsg name) -> count, for every run length
        self.hop_counts: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self.stat_counts: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        # hops caused by background timers (1-s IMSG_STAT_SET), counted apart
        self.background = 0

    def event(self, t: float, event: str, process: str, session: int, detail: Any, cause: int) -> None:
        """A world-visible event (SMTP reply sent, message accepted, delivery done...)."""
        if self.rows:
            self.events.append((t, event, process, session, detail, cause))

    def reset_counts(self) -> None:
        """Forget everything recorded so far (end of a warm-up period)."""
        self.hops.clear()
        self.runs.clear()
        self.events.clear()
        self.hop_counts.clear()
        self.stat_counts.clear()
        self.background = 0
