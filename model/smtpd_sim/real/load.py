"""Load generator for the REAL OpenSMTPD: closed-loop SMTP clients, CPU read from /proc.

Why: ``smtpd-sim calibrate`` (issue 6) fits the model's costs on the real daemon's
throughput and per-process CPU, measured as in research/real-daemon.md §9
(research/real-traces/tools/bench.py): one message per connection (connect, EHLO,
MAIL, RCPT, DATA, a 1 KiB body, QUIT), ``concurrency`` clients each reconnecting at
once, for ``duration`` seconds; ``local`` = maildir delivery to alice (deliveries live),
``relay`` = accept-only to ``user@relay.test`` with the MTA paused (``smtpd -P mta``).

The daemon runs untraced (``smtpd -d -P mta``, its log to a file it writes itself, as
in §9) in the loopback-only namespace of :class:`smtpd_sim.real.daemon.RealDaemon`. The
clients run in a separate Python process started inside that namespace
(``ip netns exec ... smtpd-sim real load-worker``), so they share the two cores with
the daemon, as in §9, and not the GIL with the harness; that process reads every smtpd
process's utime+stime (+ the parent's cutime+cstime: its MDA children) before and after,
and its own CPU (``os.times()``) over the sending phase. Never sends to any address but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from smtpd_sim.real import procstat
from smtpd_sim.real.commands import RealDaemonError, command_env, run, wait_until
from smtpd_sim.real.daemon import DEBIAN_68, SMTP_PORT, TLS_PORT, RealDaemon
from smtpd_sim.real.install import clear_maildir, maildir_count, set_maildir_broken, smtpd_version
from smtpd_sim.real.netns import listening
from smtpd_sim.real.profiles import DaemonProfile

MODES = ("local", "relay")
RCPT = {"local": "alice@local.test", "relay": "user@relay.test"}  # research bench.py
LOCAL_USER = "alice"
MSG_SIZE = 1024  # research bench.py default --size (real-daemon.md §9: "a 1 KB body")
HOST, PORT = "127.0.0.1", SMTP_PORT  # the plain listener of smtpd_sim.real.daemon.SMTPD_CONF
SLOW_CONNECT_S = 0.5  # a connect this slow waited for a SYN retransmission (the first is after 1 s)
TAIL_S = 3.0  # how long sessions open at the end of a run may take to finish (user parameter)


class LoadError(RuntimeError):
    """A load run could not be taken (one line)."""


@dataclass
class LoadResult:
    """One measured run: throughput, latency and CPU per accepted message."""

    mode: str
    concurrency: int
    duration_s: float
    accepted: int
    errors: int
    accepted_msg_s: float
    delivered: int
    drain_s: float
    dataend_to_250_ms: dict[str, float]
    session_ms_p50: float
    cpu_ms_per_msg: dict[str, float]  # per smtpd process (parent own; parent-children apart) + client
    client_cpu_ms_per_msg: float
    host_busy_frac: float
    loadavg_before: float
    ctxsw_per_msg: dict[str, float] = field(default_factory=dict)  # voluntary context switches
    other_cores: float = 0.0  # CPU of everything else on the host while sending (cores): contention
    connect_ms: dict[str, float] = field(default_factory=dict)  # p50/p99/max of connect()
    slow_connects: int = 0  # connects over SLOW_CONNECT_S: a SYN dropped (listen backlog of 5) and resent
    # per smtpd process, KiB (rss/pss/uss, procstat.read_memory): "idle" after start, "after" the run
    memory_kib: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)


# ---------------------------------------------------------------------------- the client side


def body(i: int, size: int = MSG_SIZE) -> bytes:
    """The research bench body: RFC 5322 headers, ``y`` lines up to ``size`` bytes, ``.``."""
    head = ["From: <sender@local.test>", "To: <rcpt@local.test>", f"Subject: bench {i}",
            f"X-Bench-Id: {i}", f"Message-ID: <bench.{i}@client.local.test>", ""]
    lines = list(head)
    cur = sum(len(ln) + 2 for ln in lines)
    while cur < size:
        ln = "y" * min(70, size - cur)
        lines.append(ln)
        cur += len(ln) + 2
    return ("\r\n".join(lines) + "\r\n.\r\n").encode()


async def _reply(r: asyncio.StreamReader) -> str:
    """Read one (possibly multi-line) SMTP reply; its code."""
    first = b""
    while True:
        ln = await r.readline()
        if not ln:
            raise ConnectionError("connection closed by the server")
        first = first or ln
        if len(ln) < 4 or ln[3:4] != b"-":
            return first[:3].decode()


class _State:
    def __init__(self) -> None:
        self.next_id = 0
        self.ok: list[tuple[float, float, float]] = []  # (t_conn, t_dataend, t_ack)
        self.connect: list[float] = []  # seconds from connect() to the established connection
        self.errors = 0


async def _client(st: _State, rcpt: str, t_stop: float) -> None:
    """One closed-loop client: a new connection per message until ``t_stop``."""
    data_cmd = f"RCPT TO:<{rcpt}>\r\n".encode()
    while time.monotonic() < t_stop:
        try:
            t_c = time.monotonic()
            r, w = await asyncio.open_connection(HOST, PORT)
            st.connect.append(time.monotonic() - t_c)
            await _reply(r)
            w.write(b"EHLO bench.local.test\r\n")
            await _reply(r)
            i = st.next_id
            st.next_id += 1
            w.write(b"MAIL FROM:<sender@local.test>\r\n")
            c1 = await _reply(r)
            w.write(data_cmd)
            c2 = await _reply(r)
            w.write(b"DATA\r\n")
            c3 = await _reply(r)
            w.write(body(i))
            await w.drain()
            t_de = time.monotonic()
            c4 = await _reply(r)
            t_ack = time.monotonic()
            if (c1, c2, c3, c4) == ("250", "250", "354", "250"):
                st.ok.append((t_c, t_de, t_ack))
            else:
                st.errors += 1
            w.write(b"QUIT\r\n")
            await _reply(r)
            w.close()
            try:
                await w.wait_closed()
            except OSError:
                pass
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            st.errors += 1
            await asyncio.sleep(0.05)


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(q / 100 * len(s)))]


def _host_cpu() -> tuple[int, int]:
    """(total, idle) jiffies of the whole host from /proc/stat."""
    v = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return sum(v), v[3] + v[4]


def _ctxsw(pid: int) -> int:
    """voluntary_ctxt_switches of ``pid`` (each is one sleep in epoll_wait: one loop wake)."""
    for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
        if ln.startswith("voluntary_ctxt_switches:"):
            return int(ln.split()[1])
    return 0


def measure(parent_pid: int, mode: str, concurrency: int, duration: float, *, drain_timeout: float = 60.0) -> LoadResult:
    """Drive ``concurrency`` closed-loop clients for ``duration`` s at the daemon on
    127.0.0.1:2525 (call this inside its network namespace); CPU per accepted message."""
    if mode not in MODES:
        raise LoadError(f"mode must be one of {MODES}, not {mode!r}")
    procs = procstat.smtpd_processes(parent_pid)
    load_before = os.getloadavg()[0]
    delivered0 = maildir_count(LOCAL_USER) if mode == "local" else 0
    st = _State()
    sw0 = {n: _ctxsw(p) for n, p in procs.items()}
    c0, h0, m0 = procstat.snapshot(parent_pid), _host_cpu(), os.times()
    t0 = time.monotonic()
    t_stop = t0 + duration

    async def drive() -> None:
        tasks = [asyncio.ensure_future(_client(st, RCPT[mode], t_stop)) for _ in range(concurrency)]
        # a session still open TAIL_S after the end (e.g. a SYN dropped by the backlog of 5,
        # retransmitted after 1, 3, 7 s) is abandoned: its message is not counted
        _done, pending = await asyncio.wait(tasks, timeout=duration + TAIL_S)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    asyncio.run(drive())
    t1 = time.monotonic()
    m1, h1, c1 = os.times(), _host_cpu(), procstat.snapshot(parent_pid)
    n = len(st.ok)
    in_window = sum(1 for _c, _d, a in st.ok if a <= t_stop)
    # local: wait until every accepted message is in the maildir (the CPU of its delivery counts)
    delivered = 0
    if mode == "local":
        deadline = time.monotonic() + drain_timeout
        while (delivered := maildir_count(LOCAL_USER) - delivered0) < n and time.monotonic() < deadline:
            time.sleep(0.02)
    t2 = time.monotonic()
    time.sleep(0.3)  # the parent reaps the last child; stat imsgs settle
    c2 = procstat.snapshot(parent_pid)
    sw2 = {k: _ctxsw(p) for k, p in procs.items()}
    d = procstat.delta(c2, c0)
    denom = max(n, 1)
    cpu = {k: round(1e3 * v.own / denom, 4) for k, v in d.items()}
    if "parent" in d:
        cpu["parent-children"] = round(1e3 * d["parent"].children / denom, 4)
    client = (m1.user + m1.system) - (m0.user + m0.system)
    cpu["client"] = round(1e3 * client / denom, 4)
    lat = [1e3 * (a - de) for _c, de, a in st.ok]
    hz = os.sysconf("SC_CLK_TCK")
    ours = sum(v.total for v in procstat.delta(c1, c0).values()) + client
    busy = ((h1[0] - h0[0]) - (h1[1] - h0[1])) / hz
    return LoadResult(
        mode=mode, concurrency=concurrency, duration_s=round(t1 - t0, 3), accepted=n, errors=st.errors,
        accepted_msg_s=round(in_window / duration, 2), delivered=delivered, drain_s=round(t2 - t1, 3),
        dataend_to_250_ms={"p50": round(_pct(lat, 50), 3), "p99": round(_pct(lat, 99), 3)},
        session_ms_p50=round(_pct([1e3 * (a - c) for c, _d, a in st.ok], 50), 3),
        cpu_ms_per_msg=cpu, client_cpu_ms_per_msg=cpu["client"],
        host_busy_frac=round(1 - (h1[1] - h0[1]) / max(1, h1[0] - h0[0]), 3),
        loadavg_before=round(load_before, 2),
        ctxsw_per_msg={k: round((sw2[k] - sw0[k]) / denom, 3) for k in sw0 if k in sw2},
        other_cores=round(max(0.0, busy - ours) / (t1 - t0), 3),
        connect_ms={"p50": round(1e3 * _pct(st.connect, 50), 3), "p99": round(1e3 * _pct(st.connect, 99), 3),
                    "max": round(1e3 * max(st.connect, default=float("nan")), 3)},
        slow_connects=sum(1 for x in st.connect if x > SLOW_CONNECT_S),
    )


# ---------------------------------------------------------------------------- the daemon side


class UntracedDaemon(RealDaemon):
    """``smtpd -d -f conf/smtpd.conf [flags]`` without ``-v``/``-T`` (real-daemon.md §9:
    "Tracing was off, info logging to a file"), stdout/stderr to ``logs/smtpd-bench.log``."""

    def __init__(self, workdir: str | Path, **kw: Any) -> None:
        super().__init__(workdir, **kw)
        self.command: list[str] = []  # the smtpd command line of the last start, for the record

    def start(self, extra_flags: Sequence[str] = ()) -> int:
        exe = self._ready_to_start()
        (self.workdir / "logs").mkdir(exist_ok=True)
        log = open(self.workdir / "logs" / "smtpd-bench.log", "ab")  # noqa: SIM115 (kept open by the child)
        cmd = self.smtpd_command(exe, extra_flags)
        self.command = [os.path.basename(exe), *cmd[cmd.index(exe) + 1:]]
        try:
            self._proc = subprocess.Popen(cmd, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True, env=command_env())
        finally:
            log.close()
        pid = self._proc.pid
        ok = wait_until(lambda: self._proc is None or self._proc.poll() is not None
                        or (listening(pid, SMTP_PORT) and listening(pid, TLS_PORT)), self.startup_timeout, 0.05)
        if self._proc.poll() is not None:
            raise RealDaemonError(f"smtpd exited during startup (rc {self._proc.returncode}); "
                                  f"see {self.workdir / 'logs' / 'smtpd-bench.log'}")
        if not ok:
            self.stop()
            raise RealDaemonError(f"smtpd not ready within {self.startup_timeout:.0f} s")
        # the children retitle themselves after the listeners are up: wait for all of them
        wait_until(lambda: len(procstat.smtpd_processes(pid)) >= self.profile.processes, 10.0, 0.05)
        if procstat.process_name(pid) != "parent":
            self.stop()
            raise RealDaemonError(f"pid {pid} is not the smtpd parent")
        return pid


def environment(profile: DaemonProfile | None = None) -> dict[str, Any]:
    """How the measurement was taken: date, kernel, cores, CPU model, Python, smtpd version
    (of ``profile``, default the installed Debian one)."""
    model_name = ""
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                model_name = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kernel": platform.release(),
        "cores": os.cpu_count() or 0,
        "cpu_model": model_name,
        "python": platform.python_version(),
        "smtpd": (smtpd_version() if profile is None else profile.installed_version()) or "",
    }


def how_measured(duration: float, repeats: int, profile: DaemonProfile | None = None) -> dict[str, Any]:
    """:func:`environment` plus the commands and settings of a calibration measurement."""
    return {**environment(profile), "duration_s": duration, "repeats": repeats,
            "loadavg_before": round(os.getloadavg()[0], 2),
            "commands": [
                "smtpd -d -f conf/smtpd.conf (local; relay accept-only adds -P mta), untraced, log to a file",
                "inside a loopback-only network namespace, hosts-file resolver (model/smtpd_sim/real/netns.py)",
                f"smtpd-sim real load-worker --mode local|relay --concurrency C --duration {duration:g} "
                "(closed loop, new connection per message, EHLO MAIL RCPT DATA 1 KiB QUIT)",
                "CPU: /proc/<pid>/stat utime+stime per smtpd process (+ parent cutime+cstime), client os.times()",
            ]}


def _memory(pid: int) -> dict[str, dict[str, int]]:
    """{process: {rss, pss, uss}} in KiB of the running smtpd ``pid``."""
    return {name: {"rss": m.rss_kib, "pss": m.pss_kib, "uss": m.uss_kib}
            for name, m in sorted(procstat.memory_snapshot(pid).items())}


def run_loads(workdir: str | Path, runs: Sequence[tuple[str, int]], duration: float, *,
              install: bool = False, progress: Any = None, timeout_slack: float = 120.0,
              profile: DaemonProfile = DEBIAN_68) -> list[LoadResult]:
    """For each (mode, concurrency): a fresh untraced daemon of ``profile`` (``-P mta`` for
    relay accept-only), the clients in a child process inside the namespace, the result
    with every smtpd process's memory when idle and after the run.
    Needs root; raises :class:`smtpd_sim.real.commands.RealDaemonError` when it cannot."""
    out: list[LoadResult] = []
    with UntracedDaemon(workdir, install=install, trace_flags=(), profile=profile) as d:
        set_maildir_broken(LOCAL_USER, False)
        for mode, conc in runs:
            if mode not in MODES:
                raise LoadError(f"mode must be one of {MODES}, not {mode!r}")
            clear_maildir(LOCAL_USER)
            pid = d.start(["-P", "mta"] if mode == "relay" else [])
            try:
                time.sleep(0.5)
                idle = _memory(pid)
                cmd = [*d.netns.exec_prefix(), sys.executable, "-m", "smtpd_sim", "real", "load-worker",
                       "--pid", str(pid), "--mode", mode, "--concurrency", str(conc), "--duration", str(duration)]
                cp = run(cmd, timeout=duration + timeout_slack, what=f"load {mode} c={conc}", check=False)
                if cp.returncode != 0:
                    tail = (cp.stderr or cp.stdout).strip().splitlines()
                    raise RealDaemonError(f"load {mode} c={conc}: worker exited {cp.returncode}: "
                                          f"{tail[-1] if tail else ''}")
                res = LoadResult(**json.loads(cp.stdout.strip().splitlines()[-1]))
                res.memory_kib = {"idle": idle, "after": _memory(pid)}
            finally:
                d.stop()
            out.append(res)
            if progress is not None:
                progress(res)
        clear_maildir(LOCAL_USER)
    return out
