"""The recorder: one named row per hop and per handler run, world events, and the counters.

The kernel reports to it (``smtpd_sim.kernel.observer``): counters always (cheap on the
hot path: a process bumps the dicts it was handed once), rows only with ``rows=True``.
Rows become pandas DataFrames in ``smtpd_sim.observe.metrics``. With ``rows=False`` only
counters are kept, so memory stays bounded by what is in flight, not by what has passed.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, NamedTuple

from smtpd_sim.kernel.observer import Observer


class HopRow(NamedTuple):
    """An imsg received from another process: when it was dispatched and when composed."""

    time: float
    sent_time: float
    from_proc: str
    to_proc: str
    imsg_name: str
    kind: str
    len: int
    fd: bool
    stat: bool
    id: int
    cause: int


class RunRow(NamedTuple):
    """One handler run: its process, start, CPU cost, what it handled and what caused it."""

    process: str
    start: float
    cost: float
    key: str
    id: int
    cause: int
    is_hop: bool


class EventRow(NamedTuple):
    """A world-visible event: an SMTP reply sent, a crash, a restart, an mta log line..."""

    time: float
    event: str
    process: str
    session: int
    detail: Any
    cause: int


HOP_COLUMNS = HopRow._fields
RUN_COLUMNS = RunRow._fields
EVENT_COLUMNS = EventRow._fields


HEX_KEYS = frozenset({"id", "session", "msgid", "evpid", "reqid"})  # ids, not quantities
PAYLOAD_SUMMARY_CHARS = 160  # a summary's length at most (the explorer shows it on one line)


def _value(key: str, v: Any) -> str:
    """One payload value, short: ids in hex as the daemon logs them, text cut, objects by
    their type and the address or id they carry."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        if key in HEX_KEYS or key.endswith(("_id", "evpid", "msgid", "reqid")):
            return f"{v:016x}" if v > 0xFFFFFFFF else f"{v:08x}"  # as smtpd.c logs them
        return str(v)
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (str, bytes)):
        text = v.decode(errors="replace") if isinstance(v, bytes) else v
        return repr(text if len(text) <= 40 else text[:37] + "...")
    if isinstance(v, (list, tuple, set, frozenset)):
        return f"[{len(v)}]"
    if isinstance(v, dict):
        return "{" + ", ".join(list(map(str, v))[:4]) + ("…" if len(v) > 4 else "") + "}"
    for attr in ("rcpt", "dest", "id"):
        a = getattr(v, attr, None)
        if a is not None and not callable(a):
            return f"{type(v).__name__}({attr}={_value(attr, a)})"
    return type(v).__name__


def payload_summary(payload: Any) -> str:
    """A one-line summary of an imsg payload (``key=value`` pairs in the payload's order),
    at most :data:`PAYLOAD_SUMMARY_CHARS` characters."""
    if isinstance(payload, dict):
        text = ", ".join(f"{k}={_value(str(k), v)}" for k, v in payload.items())
    else:
        text = _value("", payload)
    return text if len(text) <= PAYLOAD_SUMMARY_CHARS else text[:PAYLOAD_SUMMARY_CHARS - 1] + "…"


class Recorder(Observer):
    """Collects hops, handler runs and world events of one simulation."""

    def __init__(self, *, rows: bool = True) -> None:
        super().__init__()
        self.rows = rows
        self.hops: list[HopRow] = []
        self.runs: list[RunRow] = []
        self.events: list[EventRow] = []
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

    def hop(self, t: float, sent: float, src: str, dst: str, name: str, kind: str, length: int,
            fd: bool, stat: bool, ident: int, cause: int) -> None:
        self.hops.append(HopRow(t, sent, src, dst, name, kind, length, fd, stat, ident, cause))

    def payload(self, ident: int, payload: Any) -> None:
        if self.payloads is not None:
            self.payloads[ident] = payload_summary(payload)

    def run(self, proc: str, start: float, cost: float, key: str, ident: int, cause: int,
            is_hop: bool) -> None:
        self.runs.append(RunRow(proc, start, cost, key, ident, cause, is_hop))

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
            self.events.append(EventRow(t, event, process, session, detail, cause))

    def reset_counts(self) -> None:
        """Forget everything recorded so far (end of a warm-up period)."""
        self.hops.clear()
        self.runs.clear()
        self.events.clear()
        for _dst, c in self._counts + self._stats:
            c.clear()
        self.background = 0
