"""The recorder: one row per hop and per handler run, plus always-on counters.

Rows are plain tuples appended to lists (cheap on the hot path) and become pandas
DataFrames in ``smtpd_sim.observe.metrics``. With ``rows=False`` only counters are kept, so memory
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

    __slots__ = ("rows", "hops", "runs", "events", "background", "_counts", "_stats")

    def __init__(self, *, rows: bool = True) -> None:
        self.rows = rows
        self.hops: list[tuple[Any, ...]] = []
        self.runs: list[tuple[Any, ...]] = []
        self.events: list[tuple[Any, ...]] = []
        # per receiving process: {from: {imsg name: count}} (filled on the hot path without
        # building a key tuple per imsg; aggregated by hop_counts / stat_counts)
        self._counts: list[tuple[str, dict[str, dict[str, int]]]] = []
        self._stats: list[tuple[str, dict[str, dict[str, int]]]] = []
        # hops caused by background timers (1-s IMSG_STAT_SET), counted apart
        self.background = 0

    def counters(self, dst: str) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
        """The (non-stat, stat) counters a receiving process increments."""
        c: dict[str, dict[str, int]] = {}
        st: dict[str, dict[str, int]] = {}
        self._counts.append((dst, c))
        self._stats.append((dst, st))
        return c, st

    @staticmethod
    def _merge(parts: list[tuple[str, dict[str, dict[str, int]]]]) -> dict[tuple[str, str, str], int]:
        out: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        for dst, by_src in parts:
            for src, names in by_src.items():
                for name, n in names.items():
                    out[(src, dst, name)] += n
        return dict(out)

    @property
    def hop_counts(self) -> dict[tuple[str, str, str], int]:
        """(from, to, imsg name) -> count of non-stat imsgs received."""
        return self._merge(self._counts)

    @property
    def stat_counts(self) -> dict[tuple[str, str, str], int]:
        """(from, to, imsg name) -> count of IMSG_STAT_* received."""
        return self._merge(self._stats)

    def event(self, t: float, event: str, process: str, session: int, detail: Any, cause: int) -> None:
        """A world-visible event (SMTP reply sent, message accepted, delivery done...)."""
        if self.rows:
            self.events.append((t, event, process, session, detail, cause))

    def reset_counts(self) -> None:
        """Forget everything recorded so far (end of a warm-up period)."""
        self.hops.clear()
        self.runs.clear()
        self.events.clear()
        for _dst, c in self._counts + self._stats:
            c.clear()
        self.background = 0
