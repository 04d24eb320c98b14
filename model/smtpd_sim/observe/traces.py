"""Read and write OpenSMTPD 6.8 trace lines; hop tables, Chrome traces, real-vs-sim comparison.

Why: the simulator is validated against the real daemon (``smtpd -d -T imsg -T mproc
-T profile-imsg``). Both sides are reduced to the same *hop table* — one row per imsg
delivered, in the order the real daemon logs them — and compared here.

Line formats (6.8.0p2 ``smtpd.c:log_imsg()``, ``mproc.c``; era-pony.md §6.2), each prefixed
by ``"<unix time> "`` by the harness as it reads the daemon's stderr (real-daemon.md §4):

* ``imsg: <to> <- <from>: <IMSG_NAME> (len=<payload>[, fd=<fd>])`` — logged by the
  *receiver* before its handler runs. The parent never logs its receives, and control
  drops ``IMSG_STAT_SET``.
* ``mproc: <from> -> <to> : <payload> <IMSG_NAME>[ (forward)| (flush)]`` — logged by the
  *sender* when the imsg is queued (stat imsgs included).
* ``profile-imsg: <to> <from> <IMSG_NAME> <len incl. 16-byte header> <sec>.<nsec>`` —
  handler run time, logged by the receiver after the handler returns.
* markers written by the harness: ``### SCENARIO <name> BEGIN`` / ``... END``.

The hop table produced by :func:`parse_log` is byte-for-byte the research's
``real-traces/csv/*.imsg.csv`` (via :func:`hops_to_csv`): columns :data:`HOP_COLUMNS`,
one row per ``imsg:`` line, plus one row per ``mproc:`` line whose destination is the
parent (``recv_traced=0``, time = send time); ``time``/``sent_time`` in seconds from
the BEGIN marker; ``phase`` is startup (before BEGIN), scenario (up to END) or shutdown.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import pandas as pd

from smtpd_sim.observe.metrics import runs_frame, trace_hops
from smtpd_sim.observe.recorder import HopRow, RunRow

# Columns of the research CSVs (real-daemon.md §4), in order.
HOP_COLUMNS: tuple[str, ...] = (
    "seq",
    "time",
    "phase",
    "from_proc",
    "to_proc",
    "imsg_name",
    "len",
    "fd",
    "sent_time",
    "handler_us",
    "recv_traced",
)

# Columns a simulator hop table must provide to be written as a trace.
SIM_HOP_COLUMNS: tuple[str, ...] = ("time", "sent_time", "from_proc", "to_proc", "imsg_name", "len", "fd")

# Process names as the 6.8 daemon prints them in traces (era-pony.md §1.2).
PROCESS_NAMES: tuple[str, ...] = ("parent", "lka", "queue", "scheduler", "pony", "control", "ca")

IMSG_HEADER_SIZE = 16  # struct imsg_hdr; profile-imsg prints hdr.len, imsg/mproc the payload
STAT_PREFIX = "IMSG_STAT_"

_NAME = r"(IMSG_\?\?\? \(-?\d+\)|\S+)"  # imsg_to_str() prints unknown types as "IMSG_??? (n)"
_RX = re.compile(r"^imsg: (\S+) <- (\S+): " + _NAME + r" \(len=(\d+)(?:, fd=(-?\d+))?\)$")
_TX = re.compile(r"^mproc: (\S+) -> (\S+) : (\d+) " + _NAME + r"(?: \((forward|flush)\))?$")
_PR = re.compile(r"^profile-imsg: (\S+) (\S+) " + _NAME + r" (\d+) (\d+)\.(\d+)$")
_MARK_BEGIN = re.compile(r"^### SCENARIO (.*) BEGIN$")
_MARK_END = re.compile(r"^### SCENARIO (.*) END$")
_MSGID_REPLY = re.compile(r"^(250 2\.0\.0:? )[0-9a-f]{8}( Message accepted for delivery)$", re.M)


class TraceError(ValueError):
    """A hop table or trace is malformed (one-line message)."""


# ---------------------------------------------------------------------------- parsing


def _split_ts(raw: str) -> tuple[float, str] | None:
    """``"<ts> <line>"`` -> (ts, line); None for lines without a leading float timestamp."""
    raw = raw.rstrip("\r\n")
    ts, sep, line = raw.partition(" ")
    if not sep:
        return None
    try:
        return float(ts), line
    except ValueError:
        return None


def parse_log(lines: Iterable[str], *, parent_traced: bool = False, profile_ms: bool = False) -> pd.DataFrame:
    """Hop table (columns :data:`HOP_COLUMNS`) of one timestamped smtpd trace.

    Rows are receive events in log order; imsgs to the parent appear at their ``mproc:``
    send line with ``recv_traced=0`` (the parent's ``parent_imsg()`` never calls
    ``log_imsg()``). ``sent_time`` is the matching ``mproc:`` line of the same
    (from, to, name), FIFO per triple (socketpairs are ordered); ``handler_us`` comes
    from the matching ``profile-imsg:`` line. Times are seconds from the last BEGIN
    marker (or from the first row when there is none), rounded to the µs like the CSVs.

    5.4.2 traces differ in two ways (smtpd.c of opensmtpd-5.4.2p1): the parent dispatches
    through ``imsg_dispatch()`` like every process, which logs its receives
    (``parent_traced=True``: they are ordinary rows), and ``profile-imsg`` prints
    ``"%lld.%06ld"`` of (s*10^6 + ns/10^6, ns % 10^6), i.e. milliseconds then the ns
    within the millisecond for handlers under a second (``profile_ms=True``).
    """
    rows: list[dict[str, Any]] = []
    sends: dict[tuple[str, str, str], deque[float]] = defaultdict(deque)
    pending_prof: dict[tuple[str, str, str], deque[int]] = defaultdict(deque)
    begin: float | None = None
    end: float | None = None
    for raw in lines:
        parsed = _split_ts(raw)
        if parsed is None:
            continue
        t, line = parsed
        if line.startswith("### "):
            if _MARK_BEGIN.match(line):
                begin = t
            elif _MARK_END.match(line):
                end = t
            continue
        m = _TX.match(line)
        if m:
            fr, to, ln, name, _kind = m.groups()
            if to == "parent" and not parent_traced:
                rows.append(
                    {"t": t, "t_sent": t, "from_proc": fr, "to_proc": to, "imsg_name": name,
                     "len": int(ln), "fd": None, "handler_s": None, "recv_traced": 0}
                )
            else:
                sends[(fr, to, name)].append(t)
            continue
        m = _RX.match(line)
        if m:
            to, fr, name, ln, fd = m.groups()
            q = sends.get((fr, to, name))
            rows.append(
                {"t": t, "t_sent": q.popleft() if q else None, "from_proc": fr, "to_proc": to,
                 "imsg_name": name, "len": int(ln), "fd": int(fd) if fd is not None else None,
                 "handler_s": None, "recv_traced": 1}
            )
            pending_prof[(to, fr, name)].append(len(rows) - 1)
            continue
        m = _PR.match(line)
        if m:
            to, fr, name, _ln, sec, nsec = m.groups()
            pq = pending_prof.get((to, fr, name))
            if pq:
                rows[pq.popleft()]["handler_s"] = ((int(sec) + int(nsec) / 1e6) / 1e3 if profile_ms
                                                   else int(sec) + int(nsec) / 1e9)
    t0 = begin if begin is not None else (rows[0]["t"] if rows else 0.0)
    out: dict[str, list[Any]] = {c: [] for c in HOP_COLUMNS}
    for i, r in enumerate(rows):
        if begin is None or r["t"] < begin:
            phase = "startup"
        elif end is None or r["t"] <= end:
            phase = "scenario"
        else:
            phase = "shutdown"
        out["seq"].append(i)
        out["time"].append(round(r["t"] - t0, 6))
        out["phase"].append(phase)
        out["from_proc"].append(r["from_proc"])
        out["to_proc"].append(r["to_proc"])
        out["imsg_name"].append(r["imsg_name"])
        out["len"].append(r["len"])
        out["fd"].append(pd.NA if r["fd"] is None else r["fd"])
        out["sent_time"].append(math.nan if r["t_sent"] is None else round(r["t_sent"] - t0, 6))
        out["handler_us"].append(math.nan if r["handler_s"] is None else round(r["handler_s"] * 1e6, 1))
        out["recv_traced"].append(r["recv_traced"])
    return _typed(pd.DataFrame(out, columns=list(HOP_COLUMNS)))


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    """Apply the canonical dtypes of a hop table (shared by parser and CSV reader)."""
    return df.astype(
        {"seq": "int64", "time": "float64", "phase": "object", "from_proc": "object",
         "to_proc": "object", "imsg_name": "object", "len": "int64", "fd": "Int64",
         "sent_time": "float64", "handler_us": "float64", "recv_traced": "int64"}
    )


def parse_log_file(path: str | Path, **options: bool) -> pd.DataFrame:
    """:func:`parse_log` of a log file (invalid UTF-8 replaced, as the research parser did);
    ``options`` are :func:`parse_log`'s keyword arguments."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return parse_log(f, **options)


def hops_to_csv(df: pd.DataFrame) -> str:
    """The hop table in the research CSV text format (``%.6f`` times, ``%.1f`` µs, blanks for NA)."""

    def fmt(x: Any, spec: str) -> str:
        return "" if pd.isna(x) else format(x, spec)

    buf = io.StringIO()
    buf.write(",".join(HOP_COLUMNS) + "\r\n")
    for r in df.itertuples(index=False):
        buf.write(
            ",".join(
                [str(r.seq), f"{r.time:.6f}", r.phase, r.from_proc, r.to_proc, r.imsg_name,
                 str(r.len), fmt(r.fd, "d"), fmt(r.sent_time, ".6f"),
                 fmt(r.handler_us, ".1f"), str(r.recv_traced)]
            )
            + "\r\n"
        )
    return buf.getvalue()


def read_hops_csv(path: str | Path) -> pd.DataFrame:
    """Read a research ``*.imsg.csv`` into a hop table with :func:`parse_log`'s dtypes.

    Numbers are converted with Python's correctly rounded ``float()`` (not pandas' fast
    parser), so times compare exactly with :func:`parse_log` across pandas versions.
    """
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in HOP_COLUMNS if c not in raw.columns]
    if missing:
        raise TraceError(f"{path}: not a hop CSV, missing columns {missing}")

    def num(col: str, conv: Callable[[str], Any], na: Any) -> list[Any]:
        return [na if v == "" else conv(v) for v in raw[col]]

    df = pd.DataFrame(
        {
            "seq": num("seq", int, None), "time": num("time", float, math.nan), "phase": list(raw["phase"]),
            "from_proc": list(raw["from_proc"]), "to_proc": list(raw["to_proc"]),
            "imsg_name": list(raw["imsg_name"]), "len": num("len", int, None),
            "fd": pd.array(num("fd", int, pd.NA), dtype="Int64"),
            "sent_time": num("sent_time", float, math.nan), "handler_us": num("handler_us", float, math.nan),
            "recv_traced": num("recv_traced", int, None),
        },
        columns=list(HOP_COLUMNS),
    )
    return _typed(df)


# ---------------------------------------------------------------------------- writing


def _check_columns(hops: pd.DataFrame, needed: Sequence[str]) -> None:
    missing = [c for c in needed if c not in hops.columns]
    if missing:
        raise TraceError(f"hop table lacks columns {missing}")


def write_imsg_trace(
    hops: pd.DataFrame,
    *,
    scenario: str = "sim",
    begin: float | None = 0.0,
    end: float | None = None,
    epoch: float = 0.0,
) -> list[str]:
    """Timestamped trace lines, as the real 6.8 daemon would log these hops.

    ``hops`` needs :data:`SIM_HOP_COLUMNS` (seconds; ``fd`` NA or -1 when no fd is passed);
    an optional ``handler_us`` column adds ``profile-imsg:`` lines. Each hop gives an
    ``mproc:`` send line at ``sent_time`` (``time`` when unknown) and an ``imsg:``
    receive line at ``time`` — except hops to the parent (only the send line, so after
    parsing their ``time`` is their send time and the fd is lost) and ``IMSG_STAT_SET`` to
    control (dropped by control, so such hops vanish), exactly what the real daemon shows.
    ``begin``/``end`` (None = omit; ``end`` defaults to the last event) place the
    scenario markers so that ``parse_log(write_imsg_trace(df))`` gives back the hops.
    Timestamps are ``epoch + t`` with µs resolution.
    """
    _check_columns(hops, SIM_HOP_COLUMNS)
    # (t, order-in-hop, hop index, line, receiving process or "", profile line or "", profile delay)
    events: list[tuple[float, int, int, str, str, str, float]] = []
    has_handler = "handler_us" in hops.columns
    for i, r in enumerate(hops.itertuples(index=False)):
        t = float(r.time)
        ts = float(r.sent_time) if not pd.isna(r.sent_time) else t
        fr, to, name, ln = str(r.from_proc), str(r.to_proc), str(r.imsg_name), int(r.len)
        events.append((ts, 0, i, f"mproc: {fr} -> {to} : {ln} {name}", "", "", 0.0))
        if to == "parent" or (to == "control" and name == "IMSG_STAT_SET"):
            continue
        fd = "" if pd.isna(r.fd) or int(r.fd) < 0 else f", fd={int(r.fd)}"  # log_imsg() omits fd -1
        prof, delay = "", 0.0
        if has_handler and not pd.isna(r.handler_us):
            ns = int(round(float(r.handler_us) * 1000))
            prof = f"profile-imsg: {to} {fr} {name} {ln + IMSG_HEADER_SIZE} {ns // 10**9}.{ns % 10**9:09d}"
            delay = ns / 1e9
        events.append((t, 1, i, f"imsg: {to} <- {fr}: {name} (len={ln}{fd})", to, prof, delay))
    events.sort(key=lambda e: (e[0], e[2], e[1]))
    # A process is single-threaded: its profile-imsg line (handler end) precedes its next
    # receive, so a pending profile line is flushed (clamped in time) before that receive.
    timed: list[tuple[float, str]] = []
    pending: dict[str, tuple[float, str]] = {}

    def flush(until: float) -> None:
        for proc, (tp, line) in sorted(pending.items(), key=lambda kv: kv[1][0]):
            if tp <= until:
                timed.append((tp, line))
                del pending[proc]

    for t, _o, _i, line, proc, prof, delay in events:
        flush(t)
        if proc and proc in pending:
            timed.append((t, pending.pop(proc)[1]))
        timed.append((t, line))
        if prof:
            pending[proc] = (t + delay, prof)
    flush(math.inf)
    marks: list[tuple[float, str]] = []
    if begin is not None:
        marks.append((begin, f"### SCENARIO {scenario} BEGIN"))
    if end is not None or begin is not None:
        last = max([t for t, _ in timed] + [begin or 0.0])
        marks.append((end if end is not None else last, f"### SCENARIO {scenario} END"))
    out: list[str] = []
    mi = 0
    for t, line in timed:
        # BEGIN goes before events at the same instant (phase is t >= begin), END after.
        while mi < len(marks) and (marks[mi][0] < t or (marks[mi][0] == t and marks[mi][1].endswith("BEGIN"))):
            out.append(f"{epoch + marks[mi][0]:.6f} {marks[mi][1]}")
            mi += 1
        out.append(f"{epoch + t:.6f} {line}")
    for t, text in marks[mi:]:
        out.append(f"{epoch + t:.6f} {text}")
    return out


def as_observed(hops: pd.DataFrame, **kw: Any) -> pd.DataFrame:
    """What the real daemon's trace would show of these simulated hops (write, then parse).

    Use this on the simulator side before :func:`compare_hops`, so parent receives and
    dropped ``IMSG_STAT_SET`` are treated the same way on both sides.
    """
    return parse_log(write_imsg_trace(hops, **kw))


# ---------------------------------------------------------------------------- Chrome trace


def _handler_table(runs: pd.DataFrame) -> pd.DataFrame:
    """``process, start, end, label``; also accepts the recorder's ``cost`` / ``key`` columns."""
    runs = runs.copy()
    if "end" not in runs.columns and {"start", "cost"} <= set(runs.columns):
        runs["end"] = runs["start"] + runs["cost"]
    if "label" not in runs.columns:
        runs["label"] = runs["key"] if "key" in runs.columns else "handler"
    _check_columns(runs, ("process", "start", "end", "label"))
    return runs


def to_chrome_trace(hops: pd.DataFrame, handler_runs: pd.DataFrame | None = None) -> dict[str, Any]:
    """Chrome trace-event JSON (``json.dump`` it; opens in Perfetto and chrome://tracing).

    One track (pid) per process, named by ``process_name`` metadata. Each hop is a
    zero-length complete event (``ph`` "X") on the receiver's track and, when
    ``sent_time`` is known, one on the sender's, joined by a flow arrow. The arrow uses
    the format's flow-v2 fields (``bind_id`` with ``flow_out`` on the send, ``flow_in``
    on the receive), which both viewers bind to exactly those events; v1 "s"/"f" flow
    events bind to an *enclosing* slice, which a zero-length marker does not reliably
    provide. ``handler_runs`` (columns ``process, start, end, label``, seconds; or the
    recorder's ``start, cost, key``) become complete events with their duration. Times
    are in µs.
    """
    _check_columns(hops, ("time", "from_proc", "to_proc", "imsg_name"))
    procs: list[str] = list(PROCESS_NAMES)
    names = set(hops["from_proc"].astype(str)) | set(hops["to_proc"].astype(str))
    if handler_runs is not None:
        handler_runs = _handler_table(handler_runs)
        names |= set(handler_runs["process"].astype(str))
    procs += sorted(names - set(procs))
    pid = {p: i + 1 for i, p in enumerate(procs)}
    events: list[dict[str, Any]] = []
    for p in procs:
        events.append({"ph": "M", "name": "process_name", "pid": pid[p], "tid": 1, "args": {"name": p}})
        events.append({"ph": "M", "name": "process_sort_index", "pid": pid[p], "tid": 1,
                       "args": {"sort_index": pid[p]}})
        events.append({"ph": "M", "name": "thread_name", "pid": pid[p], "tid": 1, "args": {"name": p}})
    has_sent = "sent_time" in hops.columns
    for i, r in enumerate(hops.itertuples(index=False)):
        fr, to, name = str(r.from_proc), str(r.to_proc), str(r.imsg_name)
        args: dict[str, Any] = {"from": fr, "to": to}
        if "len" in hops.columns:
            args["len"] = int(r.len)
        if "fd" in hops.columns and not pd.isna(r.fd):
            args["fd"] = int(r.fd)
        cat = "stat" if name.startswith(STAT_PREFIX) else "imsg"
        recv: dict[str, Any] = {"ph": "X", "dur": 0, "name": name, "cat": cat, "pid": pid[to], "tid": 1,
                                "ts": float(r.time) * 1e6, "args": args}
        if has_sent and not pd.isna(r.sent_time):
            recv.update(bind_id=i, flow_in=True)
            events.append({"ph": "X", "dur": 0, "name": name, "cat": f"{cat}.send", "pid": pid[fr], "tid": 1,
                           "ts": float(r.sent_time) * 1e6, "args": args, "bind_id": i, "flow_out": True})
        events.append(recv)
    if handler_runs is not None:
        for r in handler_runs.itertuples(index=False):
            start, stop = float(r.start), float(r.end)
            events.append({"ph": "X", "name": str(r.label), "cat": "handler", "pid": pid[str(r.process)],
                           "tid": 1, "ts": start * 1e6, "dur": max(0.0, stop - start) * 1e6})
    return {"traceEvents": events, "displayTimeUnit": "ms"}


# ---------------------------------------------------------------------------- comparison


def _non_stat(df: pd.DataFrame, phase: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(non-stat hops, stat hops) of one table, restricted to ``phase`` when it has one."""
    _check_columns(df, ("from_proc", "to_proc", "imsg_name"))
    if phase is not None and "phase" in df.columns:
        df = df[df["phase"] == phase]
    is_stat = df["imsg_name"].astype(str).str.startswith(STAT_PREFIX)
    return df[~is_stat], df[is_stat]


def hop_sequence(df: pd.DataFrame, phase: str | None = "scenario") -> list[str]:
    """Non-stat hops as ``"from->to IMSG_NAME"`` strings in table order (summary.json style)."""
    ns, _ = _non_stat(df, phase)
    return [f"{a}->{b} {n}" for a, b, n in zip(ns["from_proc"], ns["to_proc"], ns["imsg_name"], strict=True)]


def channel_sequences(df: pd.DataFrame, phase: str | None = "scenario") -> dict[str, list[str]]:
    """Non-stat imsg names per ``"from->to"`` channel, in table order.

    A socketpair delivers in order, so these per-channel sequences do not depend on how
    concurrent receivers interleave in the global log.
    """
    ns, _ = _non_stat(df, phase)
    out: dict[str, list[str]] = defaultdict(list)
    for a, b, n in zip(ns["from_proc"], ns["to_proc"], ns["imsg_name"], strict=True):
        out[f"{a}->{b}"].append(n)
    return dict(out)


def _counter_rows(c: Counter[str]) -> list[dict[str, Any]]:
    return [{"hop": k, "count": v} for k, v in sorted(c.items())]


def compare_hops(real_df: pd.DataFrame, sim_df: pd.DataFrame, *, phase: str | None = "scenario") -> dict[str, Any]:
    """Compare two hop tables (real first); only ``phase`` rows when a table has a phase column.

    Returns ``multiset_equal`` (non-stat (from, to, imsg) hops), ``only_in_real`` /
    ``only_in_sim`` (``[{"hop", "count"}]``, empty when equal), ``sequence_ratio``
    (difflib ratio of the ordered non-stat sequences), ``sequence_equal``,
    ``first_divergence`` (``{"index", "real", "sim"}`` or None), ``edits`` (difflib
    opcodes other than equal), ``channel_order_equal`` / ``channel_divergences`` (per
    (from, to) channel: the non-stat imsg order, ``[{"channel", "index", "real", "sim"}]``),
    the non-stat counts and ``stat_counts`` per side (total and per imsg name).
    The global order is not deterministic in the real daemon (concurrent receivers
    interleave differently from run to run), so a ratio below 1 with equal multisets
    is normal; the multiset and the per-channel order are the strict checks.
    """
    real_seq = hop_sequence(real_df, phase)
    sim_seq = hop_sequence(sim_df, phase)
    rc, sc = Counter(real_seq), Counter(sim_seq)
    sm = SequenceMatcher(None, real_seq, sim_seq, autojunk=False)
    first: dict[str, Any] | None = None
    for k in range(max(len(real_seq), len(sim_seq))):
        a = real_seq[k] if k < len(real_seq) else None
        b = sim_seq[k] if k < len(sim_seq) else None
        if a != b:
            first = {"index": k, "real": a, "sim": b}
            break
    edits = [
        {"op": tag, "real_index": i1, "real": real_seq[i1:i2], "sim_index": j1, "sim": sim_seq[j1:j2]}
        for tag, i1, i2, j1, j2 in sm.get_opcodes()
        if tag != "equal"
    ]
    rch, sch = channel_sequences(real_df, phase), channel_sequences(sim_df, phase)
    chan_div: list[dict[str, Any]] = []
    for ch in sorted(set(rch) | set(sch)):
        a_seq, b_seq = rch.get(ch, []), sch.get(ch, [])
        for k in range(max(len(a_seq), len(b_seq))):
            a = a_seq[k] if k < len(a_seq) else None
            b = b_seq[k] if k < len(b_seq) else None
            if a != b:
                chan_div.append({"channel": ch, "index": k, "real": a, "sim": b})
                break
    _, rstat = _non_stat(real_df, phase)
    _, sstat = _non_stat(sim_df, phase)
    return {
        "multiset_equal": rc == sc,
        "only_in_real": _counter_rows(rc - sc),
        "only_in_sim": _counter_rows(sc - rc),
        "sequence_equal": real_seq == sim_seq,
        "sequence_ratio": sm.ratio() if (real_seq or sim_seq) else 1.0,
        "first_divergence": first,
        "edits": edits,
        "channel_order_equal": not chan_div,
        "channel_divergences": chan_div,
        "non_stat_counts": {"real": len(real_seq), "sim": len(sim_seq)},
        "stat_counts": {
            "real": len(rstat),
            "sim": len(sstat),
            "real_by_name": dict(Counter(rstat["imsg_name"])),
            "sim_by_name": dict(Counter(sstat["imsg_name"])),
        },
    }


def normalize_reply(reply: str) -> str:
    """A server reply with the 8-hex message id of ``250 2.0.0 <id> Message accepted`` masked."""
    return _MSGID_REPLY.sub(r"\1<msgid>\2", reply)


def dialog_replies(dialog: Mapping[str, Any] | Sequence[str]) -> list[str]:
    """All server replies of a dialog (research ``*.dialog.json`` shape), or the list itself."""
    if isinstance(dialog, Mapping):
        return [r for s in dialog.get("sessions", []) for r in s.get("replies", [])]
    return list(dialog)


def compare_replies(
    real_replies: Mapping[str, Any] | Sequence[str], sim_replies: Mapping[str, Any] | Sequence[str]
) -> dict[str, Any]:
    """Compare server replies (lists, or dialogs), equal except for the 8-hex message id.

    Returns ``equal``, the counts and ``differences`` (``[{"index", "real", "sim"}]``,
    missing replies as None).
    """
    a = [normalize_reply(r) for r in dialog_replies(real_replies)]
    b = [normalize_reply(r) for r in dialog_replies(sim_replies)]
    diffs = [
        {"index": k, "real": a[k] if k < len(a) else None, "sim": b[k] if k < len(b) else None}
        for k in range(max(len(a), len(b)))
        if (a[k] if k < len(a) else None) != (b[k] if k < len(b) else None)
    ]
    return {"equal": not diffs, "n_real": len(a), "n_sim": len(b), "differences": diffs}


def write_traces(hops: Sequence[HopRow], runs: Sequence[RunRow], imsg_log: Path | None, chrome: Path | None, *,
                 scenario: str = "sim", begin: float | None = 0.0) -> list[str]:
    """Write a run's recorded hops as a ``-T imsg``-style log and/or Chrome trace JSON
    (Perfetto); the paths written."""
    frame = trace_hops(hops)
    written: list[str] = []
    if imsg_log is not None:
        imsg_log.parent.mkdir(parents=True, exist_ok=True)
        imsg_log.write_text("\n".join(write_imsg_trace(frame, scenario=scenario, begin=begin)) + "\n")
        written.append(str(imsg_log))
    if chrome is not None:
        chrome.parent.mkdir(parents=True, exist_ok=True)
        chrome.write_text(json.dumps(to_chrome_trace(frame, runs_frame(runs))) + "\n")
        written.append(str(chrome))
    return written
