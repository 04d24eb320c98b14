"""Measure the real 6.8.0p2's alias lookups through OpenSMTPD-extras table processes.

Two measurements, both on loopback inside the harness's network namespace:

1. **Per lookup, as the lka sees it.** The same ``/usr/libexec/opensmtpd/table-<backend>``
   program the daemon forks is started the way ``smtpd.c:fork_proc_backend()`` starts it
   (one end of a socketpair on its stdin, argv ``<table name> <config>``) and spoken to
   as ``table_proc.c`` does: PROC_TABLE_OPEN, then PROC_TABLE_LOOKUP (K_ALIAS) and a
   blocking read of PROC_TABLE_OK. The round trip is what a synchronous
   ``table_proc_lookup()`` blocks the lka for; the table process's CPU comes from
   ``/proc/<pid>/stat`` over the lookups, and redis-server's too.
2. **In the daemon.** ``smtpd -d`` with ``table aliases <backend>:<config>`` and
   ``action "local" maildir alias <aliases>``; N messages to an aliased recipient at 1
   and 4 concurrent clients; wall time until all are in the maildir, per-process CPU,
   and the ``-T lookup`` lines (how many alias lookups a message makes). Static
   (``file:``) is the baseline.

``smtpd-sim real tables-bench --out scenarios/calibration/tables-6.8.toml`` (root; installs
Debian's ``opensmtpd-extras`` and ``redis-server`` when missing, service starts denied).
The model's sqlite/redis defaults read the written file (model/smtpd_sim/spec/backends.py).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import statistics
import struct
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smtpd_sim.real import procstat
from smtpd_sim.real.commands import wait_until
from smtpd_sim.real.daemon import PKI_NAME, SINK_PORT, SMTP_PORT, TLS_PORT, RealDaemon
from smtpd_sim.real.install import apt_install, clear_maildir, maildir_count
from smtpd_sim.real.scenarios import CLIENT_HELO, SmtpSession, message
from smtpd_sim.spec.scenario import DEFAULT_CALIBRATION

LIBEXEC = Path("/usr/libexec/opensmtpd")
REDIS_PORT = 6379
# smtpd-api.h (6.8.0p2 and extras): enum { PROC_TABLE_OK, _FAIL, _OPEN, _CLOSE, _UPDATE, _CHECK, _LOOKUP, _FETCH }
PROC_TABLE_OK, PROC_TABLE_OPEN, PROC_TABLE_CLOSE, PROC_TABLE_LOOKUP = 0, 2, 3, 6
PROC_TABLE_API_VERSION = 2  # smtpd-api.h
K_ALIAS = 0x001  # smtpd-api.h enum table_service
LINE_MAX = 2048  # struct table_open_params { uint32_t version; char name[LINE_MAX]; } on Linux
IMSG_HEADER = struct.Struct("=IHHII")  # imsg.h struct imsg_hdr: type, len, flags, peerid, pid

ALIAS = "info"  # the recipient's local part: an alias of TARGET
TARGET = "alice"
# ``alice: alice`` too: Debian's table-redis answers a missing key with an error (r = -1,
# GET gives nil: table_redis.c:table_redis_lookup()), which lka_expand() turns into a
# tempfail; with it, info -> alice (lookup 2, a hit) -> alice marked sameuser
# (expand.c:expand_insert()), no third lookup. Same content in every backend.
ALIASES = {ALIAS: TARGET, TARGET: TARGET, "postmaster": "alice", "sales": "bob"}
MISSING = "bob"  # not in the table: what a miss does with each backend


class TablesBenchError(RuntimeError):
    """The measurement could not be taken (one line)."""


def ensure_extras_installed(*, timeout: float = 900.0) -> None:
    """``apt-get install opensmtpd-extras redis-server`` when missing, service starts denied
    (no system redis ever runs; ours runs in the namespace)."""
    if (LIBEXEC / "table-sqlite").exists() and (LIBEXEC / "table-redis").exists() and \
            Path("/usr/bin/redis-server").exists():
        return
    apt_install(["opensmtpd-extras", "redis-server"], timeout=timeout)


# ---------------------------------------------------------------------------- table protocol


class TableProcClient:
    """The lka's side of ``table_proc.c``: fork a table program and look keys up in it."""

    def __init__(self, backend: str, config: Path, name: str = "aliases", prefix: Sequence[str] = ()) -> None:
        exe = LIBEXEC / f"table-{backend}"
        if not exe.exists():
            raise TablesBenchError(f"{exe} is missing (Debian package opensmtpd-extras)")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # fork_proc_backend(): dup2(sp[0], STDIN_FILENO); execl(path, procname, arg)
        # its log (table-redis writes debug lines per lookup) goes to a file: a pipe nobody
        # reads would fill up and stop it
        self.log = config.parent / f"table-{backend}.stderr"
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen([*prefix, str(exe), str(config)], stdin=theirs, close_fds=True,
                                         stdout=subprocess.DEVNULL, stderr=err)
        theirs.close()
        self.sock = ours
        self.sock.settimeout(10)
        self.buf = b""
        op = struct.pack("=I", PROC_TABLE_API_VERSION) + name.encode().ljust(LINE_MAX, b"\0")
        self._call(PROC_TABLE_OPEN, op)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _call(self, kind: int, payload: bytes) -> bytes:
        """``table_proc_call()``: write, then block until PROC_TABLE_OK."""
        self.sock.sendall(IMSG_HEADER.pack(kind, IMSG_HEADER.size + len(payload), 0, 0, os.getpid()) + payload)
        while True:
            if len(self.buf) >= IMSG_HEADER.size:
                typ, length, _f, _p, _pid = IMSG_HEADER.unpack_from(self.buf)
                if len(self.buf) >= length:
                    data, self.buf = self.buf[IMSG_HEADER.size:length], self.buf[length:]
                    if typ != PROC_TABLE_OK:
                        raise TablesBenchError(f"table process answered imsg type {typ}")
                    return data
            chunk = self.sock.recv(65536)
            if not chunk:
                err = self.log.read_text(errors="replace").strip()
                raise TablesBenchError(f"table process closed the pipe: {err[-200:]}")
            self.buf += chunk

    def lookup(self, key: str) -> tuple[int, str | None]:
        """``table_proc_lookup(K_ALIAS, key)``: (r, value) as the daemon gets them."""
        payload = struct.pack("=iQ", K_ALIAS, 0) + key.encode() + b"\0"  # service, params count 0, key
        data = self._call(PROC_TABLE_LOOKUP, payload)
        (r,) = struct.unpack_from("=i", data)
        return r, (data[4:].rstrip(b"\0").decode() if r == 1 else None)

    def close(self) -> None:
        """``table_proc_close()``: PROC_TABLE_CLOSE, then the program exits."""
        try:
            self.sock.sendall(IMSG_HEADER.pack(PROC_TABLE_CLOSE, IMSG_HEADER.size, 0, 0, os.getpid()))
        except OSError:
            pass
        self.sock.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class LookupCost:
    backend: str
    lookups: int
    round_trip_median_s: float
    round_trip_mean_s: float
    round_trip_p90_s: float
    table_cpu_per_lookup_s: float
    server_cpu_per_lookup_s: float


def measure_lookups(backend: str, config: Path, keys: Sequence[str], n: int, *, prefix: Sequence[str] = (),
                    server_pid: int | None = None) -> LookupCost:
    """``n`` K_ALIAS lookups cycling over ``keys`` (hits and misses), one at a time."""
    client = TableProcClient(backend, config, prefix=prefix)
    try:
        for k in keys:  # warm up (connection, statement preparation, page cache)
            r, _ = client.lookup(k)
            if r < 0:
                raise TablesBenchError(f"table-{backend}: lookup of {k!r} failed (r={r})")
        c0 = procstat.read_cpu(client.pid)
        s0 = procstat.read_cpu(server_pid) if server_pid else None
        times = []
        for i in range(n):
            t = time.perf_counter()
            client.lookup(keys[i % len(keys)])
            times.append(time.perf_counter() - t)
        c1 = procstat.read_cpu(client.pid)
        s1 = procstat.read_cpu(server_pid) if server_pid else None
    finally:
        client.close()
    times.sort()
    server = (s1 - s0).own / n if s0 is not None and s1 is not None else 0.0
    return LookupCost(backend, n, statistics.median(times), statistics.fmean(times), times[int(0.9 * n)],
                      (c1 - c0).own / n, server)


# ---------------------------------------------------------------------------- backends' data


def write_backend_files(workdir: Path) -> dict[str, str]:
    """The aliases in a file (static), a SQLite database and a redis config; returns
    backend -> the ``table aliases`` argument of smtpd.conf."""
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)
    (workdir / "aliases").write_text("".join(f"{k}: {v}\n" for k, v in ALIASES.items()))
    db = workdir / "aliases.sqlite"
    db.unlink(missing_ok=True)
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE aliases (id INTEGER PRIMARY KEY, alias TEXT NOT NULL, target TEXT NOT NULL)")
        c.execute("CREATE INDEX aliases_alias ON aliases (alias)")
        c.executemany("INSERT INTO aliases (alias, target) VALUES (?, ?)", list(ALIASES.items()))
    os.chmod(db, 0o644)
    (workdir / "sqlite.conf").write_text(f"dbpath {db}\nquery_alias SELECT target FROM aliases WHERE alias=?\n")
    # table-redis 6.7.1 never parses its config file (table_redis.c:config_load() loops
    # `while (getline(...) == -1)`): the defaults apply, 127.0.0.1:6379 and
    # `GET alias:%s`. The file is still written as the documented form.
    (workdir / "redis.conf").write_text(f"master 127.0.0.1\nmaster_port {REDIS_PORT}\nquery_alias GET alias:%s\n")
    for f in ("aliases", "sqlite.conf", "redis.conf"):
        os.chmod(workdir / f, 0o644)
    return {"static": f"file:{workdir / 'aliases'}", "sqlite": f"sqlite:{workdir / 'sqlite.conf'}",
            "redis": f"redis:{workdir / 'redis.conf'}"}


class RedisServer:
    """``redis-server`` on 127.0.0.1 inside the namespace, no persistence; filled with the aliases."""

    def __init__(self, daemon: RealDaemon) -> None:
        self.daemon = daemon
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RedisServer:
        exe = "/usr/bin/redis-server"
        if not Path(exe).exists():
            raise TablesBenchError("redis-server is missing (Debian package redis-server)")
        self.proc = subprocess.Popen([*self.daemon.netns.exec_prefix(), exe, "--bind", "127.0.0.1", "--port",
                                      str(REDIS_PORT), "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        ok = wait_until(lambda: self._ping(), 10, 0.05)
        if not ok:
            self.__exit__()
            raise TablesBenchError("redis-server did not answer on 127.0.0.1 in the namespace")
        for k, v in ALIASES.items():
            self._cmd(f"SET alias:{k} {v}")
        return self

    def _cmd(self, line: str) -> bytes:
        s = self.daemon.netns.connect("127.0.0.1", REDIS_PORT, 2)
        try:
            s.sendall(line.encode() + b"\r\n")
            return s.recv(1024)
        finally:
            s.close()

    def _ping(self) -> bool:
        try:
            return self._cmd("PING").startswith(b"+PONG")
        except OSError:
            return False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# ---------------------------------------------------------------------------- the daemon


def smtpd_conf(table_arg: str) -> str:
    """The harness's listeners and rules, local delivery through an alias table."""
    return f"""\
# smtpd.conf for the table calibration (model/smtpd_sim/real/tables_bench.py); loopback only
pki {PKI_NAME} cert "certs/cert.pem"
pki {PKI_NAME} key  "certs/key.pem"
listen on 127.0.0.1 port {SMTP_PORT} hostname {PKI_NAME}
listen on 127.0.0.1 port {TLS_PORT} hostname {PKI_NAME} tls pki {PKI_NAME}
table aliases {table_arg}
action "local" maildir alias <aliases>
action "relay" relay host smtp+notls://127.0.0.1:{SINK_PORT}
match from any for domain "local.test" action "local"
match from any for domain "relay.test" action "relay"
"""


@dataclass
class DaemonRun:
    backend: str
    clients: int
    messages: int
    accepted_s: float  # first connect -> last 250 after DATA
    delivered_s: float  # first connect -> last message in the maildir
    alias_lookups: int
    cpu_s: dict[str, float]
    miss_reply: str  # RCPT reply for a local user that is not in the alias table

    @property
    def delivered_msg_s(self) -> float:
        return self.messages / self.delivered_s


def _rcpt_reply(daemon: RealDaemon, rcpt: str) -> str:
    s = SmtpSession(daemon.netns.connect("127.0.0.1", SMTP_PORT, 10), timeout=10)
    s.cmd(f"EHLO {CLIENT_HELO}")
    s.cmd("MAIL FROM:<sender@local.test>")
    r = s.cmd(f"RCPT TO:<{rcpt}>")
    s.cmd("QUIT")
    s.close()
    return r


def _send(daemon: RealDaemon, n: int, errors: list[str]) -> None:
    for _ in range(n):
        try:
            s = SmtpSession(daemon.netns.connect("127.0.0.1", SMTP_PORT, 10), timeout=10)
            s.cmd(f"EHLO {CLIENT_HELO}")
            s.cmd("MAIL FROM:<sender@local.test>")
            r = s.cmd(f"RCPT TO:<{ALIAS}@local.test>")
            if not r.startswith("250"):
                errors.append(f"RCPT: {r}")
            s.cmd("DATA")
            r = s.data_body(message("table bench"))
            if not r.startswith("250"):
                errors.append(f"DATA: {r}")
            s.cmd("QUIT")
            s.close()
        except OSError as e:
            errors.append(str(e))


def _cpu(parent: int) -> dict[str, procstat.CpuTimes]:
    """CPU of every smtpd process and of the table process lka forked (``table-aliases``)."""
    snap = procstat.snapshot(parent)
    lka = procstat.smtpd_processes(parent).get("lka")
    if lka is not None:
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                try:
                    if procstat.parent_pid_of(int(p.name)) == lka:
                        snap["table-aliases"] = procstat.read_cpu(int(p.name))
                except procstat.ProcStatError:
                    continue
    return snap


def run_daemon(daemon: RealDaemon, backend: str, table_arg: str, messages: int, clients: int) -> DaemonRun:
    """A fresh daemon with the alias table, ``messages`` sent by ``clients`` threads."""
    (daemon.workdir / "conf" / "smtpd.conf").write_text(smtpd_conf(table_arg))
    clear_maildir(TARGET)  # the wait below lists Maildir/new: keep it small (the real-daemon lock is held)
    pid = daemon.start()
    try:
        wait_until(lambda: False, 0.5)  # let the children finish their start-up
        before = maildir_count(TARGET)
        cpu0 = _cpu(pid)
        errors: list[str] = []
        per = [messages // clients + (1 if i < messages % clients else 0) for i in range(clients)]
        t0 = time.perf_counter()
        threads = [threading.Thread(target=_send, args=(daemon, k, errors)) for k in per]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        t_acc = time.perf_counter() - t0
        if errors:
            raise TablesBenchError(f"{backend}: {len(errors)} errors, first: {errors[0]}")
        if not wait_until(lambda: maildir_count(TARGET) >= before + messages, 120, 0.005):
            raise TablesBenchError(f"{backend}: only {maildir_count(TARGET) - before} of {messages} delivered")
        t_del = time.perf_counter() - t0
        cpu = procstat.delta(_cpu(pid), cpu0)
        lookups = sum(1 for ln in daemon.log_lines if "as ALIAS in table" in ln)
        miss = _rcpt_reply(daemon, f"{MISSING}@local.test")
    finally:
        daemon.stop()
    return DaemonRun(backend, clients, messages, t_acc, t_del, lookups,
                     {k: v.own for k, v in sorted(cpu.items())}, miss)


# ---------------------------------------------------------------------------- all of it


def measure(workdir: Path, *, lookups: int, messages: int, repeats: int) -> dict[str, Any]:
    """Every figure the calibration file holds, computed now."""
    out: dict[str, Any] = {"lookup": {}, "daemon": []}
    keys = [ALIAS, TARGET]  # one hit, one miss: what a message to info@ costs (lka_expand twice)
    ensure_extras_installed()
    with RealDaemon(workdir, trace_flags=("lookup",)) as daemon:
        args = write_backend_files(daemon.workdir / "tables")
        with RedisServer(daemon) as redis:
            out["lookup"]["sqlite"] = measure_lookups("sqlite", Path(args["sqlite"].split(":", 1)[1]), keys, lookups)
            out["lookup"]["redis"] = measure_lookups("redis", Path(args["redis"].split(":", 1)[1]), keys, lookups,
                                                     prefix=daemon.netns.exec_prefix(), server_pid=redis.pid)
            order = ["static", "sqlite", "redis"]
            for i in range(repeats):
                for clients in (1, 4):
                    for backend in order[i % 3:] + order[:i % 3]:  # rotated: no backend always first
                        out["daemon"].append(run_daemon(daemon, backend, args[backend], messages, clients))
    return out


def _toml(results: dict[str, Any], *, lookups: int, messages: int, repeats: int, load: str) -> str:
    lk: dict[str, LookupCost] = results["lookup"]
    runs: list[DaemonRun] = results["daemon"]
    lines = [
        "# Alias lookups of OpenSMTPD 6.8.0p2 (Debian) through opensmtpd-extras 6.7.1 table processes,",
        "# measured on this project's machine by `smtpd-sim real tables-bench` (model/smtpd_sim/real/tables_bench.py).",
        "# Written by that tool; do not edit by hand.",
        "# Found on the way: table-redis 6.7.1 never reads its config file (table_redis.c:config_load()",
        "# loops `while (getline(...) == -1)`), so its defaults apply (127.0.0.1:6379, `GET alias:%s`), and",
        "# a key it does not have is an error (-1), which lka_expand() turns into a tempfail for the",
        "# recipient (rcpt_not_in_table below; the model's `miss_tempfails = true` reproduces it).",
        'name = "tables-6.8"',
        'description = "Alias lookups through opensmtpd-extras 6.7.1 table processes, per backend '
        '(read by the table backends; not a calibration = value)"',
        f'source = "model/smtpd_sim/real/tables_bench.py: {lookups} direct table-protocol lookups per backend; '
        f'{messages} messages x {repeats} repeats per (backend, clients) through smtpd -d"',
        f'load_average = "{load}"  # /proc/loadavg: other work on the machine skews the tails',
        "",
        "# [backend.X] is what the model uses (smtpd_sim/spec/backends.py):",
        "#   cpu_s    = the table process's CPU per lookup (/proc/<pid>/stat over the lookups)",
        "#   lookup_s = median round trip as the lka's blocking table_proc_call() sees it, minus cpu_s and",
        "#              two socketpair crossings (the model adds those itself: channel latency of the calibration)",
    ]
    from smtpd_sim.spec.calibration import load_calibration

    chan = load_calibration(DEFAULT_CALIBRATION).channel.latency_s
    lka_cpu = _lka_cpu_per_lookup(runs)
    lines += ["#   lka_cpu_s = the lka's own CPU per table_proc lookup (imsg compose, write, the blocking",
              "#              read's wake-up): lka CPU per message with this backend minus with the static",
              "#              table, over every message of the daemon runs, per alias lookup"]
    lines += ["# When the median round trip is below cpu_s + 2 channel latencies (CPU from 10 ms tick",
              "# samples over-attributes short bursts), cpu_s is capped so that the model's round trip",
              "# equals the measured median: what the lka blocks for is the figure that matters."]
    for name, c in lk.items():
        cpu_s = min(c.table_cpu_per_lookup_s, max(c.round_trip_median_s - 2 * chan, 0.0))
        lookup_s = max(c.round_trip_median_s - cpu_s - 2 * chan, 0.0)
        lines += ["", f"[backend.{name}]", f"cpu_s = {cpu_s:.3e}", f"lookup_s = {lookup_s:.3e}",
                  f"lka_cpu_s = {max(lka_cpu.get(name, 0.0), 0.0):.3e}",
                  "concurrency = 1  # api/table_api.c serves one request at a time; lka waits for each",
                  f"channel_latency_s_subtracted = {chan:.3e}  # research-6.8 [channel] latency_s, twice"]
        if cpu_s < c.table_cpu_per_lookup_s:
            lines.append(f"# cpu_s capped (measured {c.table_cpu_per_lookup_s:.3e}): see above")
    for name, c in lk.items():
        lines += ["", f"[measured.lookup.{name}]", f"lookups = {c.lookups}",
                  f"round_trip_median_s = {c.round_trip_median_s:.3e}",
                  f"round_trip_mean_s = {c.round_trip_mean_s:.3e}", f"round_trip_p90_s = {c.round_trip_p90_s:.3e}",
                  f"table_cpu_per_lookup_s = {c.table_cpu_per_lookup_s:.3e}",
                  f"server_cpu_per_lookup_s = {c.server_cpu_per_lookup_s:.3e}  # redis-server (0: none)"]
    # the daemon runs: per (backend, clients) the median over repeats
    groups: dict[tuple[str, int], list[DaemonRun]] = {}
    for r in runs:
        groups.setdefault((r.backend, r.clients), []).append(r)
    lines += ["", "# The daemon with `table aliases <backend>:...` and `action \"local\" maildir alias <aliases>`:",
              "# messages to info@local.test (an alias of alice); median over the repeats."]
    for (backend, clients), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        med = statistics.median(r.delivered_msg_s for r in rs)
        lpm = statistics.median(r.alias_lookups / r.messages for r in rs)
        procs = sorted({p for r in rs for p in r.cpu_s})
        cpu = {p: statistics.median(r.cpu_s.get(p, 0.0) / r.messages for r in rs) for p in procs}
        lines += ["", f"[measured.daemon.{backend}-c{clients}]", f"messages = {rs[0].messages}",
                  f"repeats = {len(rs)}", f"delivered_msg_s = {med:.2f}",
                  f"delivered_msg_s_runs = [{', '.join(f'{r.delivered_msg_s:.2f}' for r in rs)}]",
                  f"accepted_msg_s = {statistics.median(r.messages / r.accepted_s for r in rs):.2f}",
                  f"alias_lookups_per_msg = {lpm:.2f}  # '-T lookup' lines 'as ALIAS in table'",
                  "cpu_ms_per_msg = { " + ", ".join(f'{p} = {v * 1e3:.4f}' for p, v in cpu.items()) + " }",
                  f"rcpt_not_in_table = {rs[0].miss_reply!r}".replace("'", '"')]
    for clients in (1, 4):
        base = groups.get(("static", clients))
        if not base:
            continue
        lines += ["", f"[measured.effect.c{clients}]",
                  "# delivered msg/s relative to the static (file:) table, paired by repeat (the runs of one",
                  "# repeat are minutes apart at most: the machine's load is shared); median of the ratios"]
        for backend in ("sqlite", "redis"):
            rs = groups.get((backend, clients))
            if rs:
                ratios = [r.delivered_msg_s / b.delivered_msg_s for r, b in zip(rs, base, strict=True)]
                lines += [f"{backend}_vs_static = {statistics.median(ratios):.3f}",
                          f"{backend}_vs_static_runs = [{', '.join(f'{x:.3f}' for x in ratios)}]"]
    return "\n".join(lines) + "\n"


def _lka_cpu_per_lookup(runs: Sequence[DaemonRun]) -> dict[str, float]:
    """Extra lka CPU per alias lookup of each table process backend against ``static``
    (pooled over all its runs: CPU ticks are 10 ms, per-run figures are too coarse)."""
    def per_msg(backend: str) -> tuple[float, float]:
        rs = [r for r in runs if r.backend == backend]
        msgs = sum(r.messages for r in rs)
        return (sum(r.cpu_s.get("lka", 0.0) for r in rs) / msgs, sum(r.alias_lookups for r in rs) / msgs) if msgs else (0.0, 0.0)

    base, _ = per_msg("static")
    out = {}
    for b in ("sqlite", "redis"):
        cpu, lookups = per_msg(b)
        if lookups:
            out[b] = (cpu - base) / lookups
    return out


def calibration_file(workdir: Path, *, lookups: int = 10000, messages: int = 300, repeats: int = 5) -> str:
    """Measure everything (root: network namespace, smtpd) and return the calibration TOML
    (``scenarios/calibration/tables-6.8.toml``), with the machine's load average around it."""
    if os.geteuid() != 0:
        raise TablesBenchError("tables-bench needs root (network namespace, smtpd)")
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    results = measure(workdir, lookups=lookups, messages=messages, repeats=repeats)
    load += " at start, " + " ".join(Path("/proc/loadavg").read_text().split()[:3]) + " at end"
    return _toml(results, lookups=lookups, messages=messages, repeats=repeats, load=load)
