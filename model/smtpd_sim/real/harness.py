"""Run the REAL OpenSMTPD 6.8.0p2 (Debian package) on loopback only and capture its traces.

Why: every CI run checks the simulator against the real daemon (real-daemon.md). This
module reproduces the research setup in Python:

* a network namespace (``ip netns add``) with only ``lo`` up, so the daemon cannot
  reach any non-loopback address; the daemon runs in it under a private mount
  namespace that bind-mounts a ``resolv.conf`` (``nameserver 127.0.0.1``, ``lookup
  file``) and a loopback-only ``hosts`` over ``/etc`` (otherwise the reverse-DNS lookup
  at connect stalls on the host resolver);
* the research ``smtpd.conf`` (listeners 2525 plain and 2587 STARTTLS with a self-signed
  pki for ``mx.local.test``, maildir delivery for ``local.test``, relay of ``relay.test``
  to the sink on 127.0.0.1:2626), test users alice/bob/carol/dave (dave's ``~/Maildir``
  is a regular file so his deliveries tempfail);
* ``smtpd -d -f conf/smtpd.conf -v -T imsg -T mproc -T profile-imsg -T smtp``, every
  output line timestamped as it is read (research ``tools/tslog.py``), with scenario
  markers; a fresh daemon (and an emptied spool) per scenario.

Usage::

    with RealDaemon("/tmp/smtpd-real") as d:
        run = d.run_scenario("local-1rcpt")   # RealRun(log_lines, hops_df, dialogs, ...)

or ``python -m smtpd_sim.real.harness --out results/real`` (all non-long scenarios, compared
with the reference CSVs). Needs root, ``ip`` (iproute2), ``unshare``/``mount``
(util-linux), ``openssl``, ``useradd`` and ``apt-get`` when the package is missing.
Every wait has a timeout; the namespace and every process started are removed on exit,
also on error. Only one real run can be active on a machine (the daemon's spool and
control socket are global); a lock file enforces that.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from smtpd_sim.real import procstat
from smtpd_sim.real.scenarios import (
    ScenarioEnv,
    DialogError,
    get_scenario,
    run_scenario_client,
    scenario_names,
)
from smtpd_sim.real.sink import Sink, SinkError
from smtpd_sim.observe.traces import compare_hops, hops_to_csv, parse_log, read_hops_csv

SMTPD_VERSION = "6.8.0p2"
SMTP_PORT = 2525
TLS_PORT = 2587
SINK_PORT = 2626
PKI_NAME = "mx.local.test"
TEST_USERS: tuple[str, ...] = ("alice", "bob", "carol", "dave")
BROKEN_MAILDIR_USER = "dave"
DEFAULT_TRACE_FLAGS: tuple[str, ...] = ("imsg", "mproc", "profile-imsg", "smtp")
SPOOL = Path("/var/spool/smtpd")
SPOOL_DIRS: tuple[str, ...] = ("queue", "incoming", "temporary", "purge", "corrupt", "offline")
LOCK_FILE = Path("/run/lock/smtpd-sim-real.lock")
NETNS_DIR = Path("/run/netns")
NETNS_PREFIX = "smtpdsim-"
REFERENCE_DIR = Path(__file__).resolve().parents[3] / "tests" / "data" / "real-traces"

# The research configuration (real-traces/smtpd.conf), pki paths relative to the work dir.
SMTPD_CONF = f"""\
# smtpd.conf for the real-daemon check (OpenSMTPD {SMTPD_VERSION}, Debian bookworm)
# All traffic is loopback-only; the only relay target is a sink on 127.0.0.1:{SINK_PORT}.

pki {PKI_NAME} cert "certs/cert.pem"
pki {PKI_NAME} key  "certs/key.pem"

# plain listener (no STARTTLS) used for most scenarios
listen on 127.0.0.1 port {SMTP_PORT} hostname {PKI_NAME}
# STARTTLS listener
listen on 127.0.0.1 port {TLS_PORT} hostname {PKI_NAME} tls pki {PKI_NAME}

action "local" maildir
action "relay" relay host smtp+notls://127.0.0.1:{SINK_PORT}

match from any for domain "local.test" action "local"
match from any for domain "relay.test" action "relay"
"""
RESOLV_CONF = "nameserver 127.0.0.1\nlookup file\n"
HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"

_CLONE_NEWNET = 0x40000000
_POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


class RealDaemonError(RuntimeError):
    """The real-daemon harness cannot proceed; the message is one line saying why."""


def _tool_path() -> str:
    """PATH plus the sbin directories (ip, useradd, smtpd live there; a user PATH may lack them)."""
    parts = os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
    return os.pathsep.join(parts + [d for d in ("/usr/local/sbin", "/usr/sbin", "/sbin") if d not in parts])


def _which(cmd: str) -> str | None:
    """``shutil.which`` over :func:`_tool_path`."""
    return shutil.which(cmd, path=_tool_path())


def _env(**extra: str) -> dict[str, str]:
    """Environment for child commands: ours, with the sbin directories on PATH."""
    return {**os.environ, "PATH": _tool_path(), **extra}


# ---------------------------------------------------------------------------- system helpers


def _run(cmd: Sequence[str], *, timeout: float, what: str, env: dict[str, str] | None = None,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command with a timeout; any failure becomes a one-line :class:`RealDaemonError`."""
    exe = cmd[0] if os.sep in cmd[0] else (_which(cmd[0]) or cmd[0])
    try:
        cp = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL, env=env or _env())
    except FileNotFoundError:
        raise RealDaemonError(f"{what}: command not found: {cmd[0]}") from None
    except subprocess.TimeoutExpired:
        raise RealDaemonError(f"{what}: '{' '.join(cmd)}' did not finish within {timeout:.0f} s") from None
    if check and cp.returncode != 0:
        lines = (cp.stderr or cp.stdout).strip().splitlines()
        raise RealDaemonError(f"{what}: '{' '.join(cmd)}' exited {cp.returncode}: {lines[-1] if lines else ''}")
    return cp


def check_prerequisites() -> None:
    """Linux, root, and the commands the harness uses; raise :class:`RealDaemonError` if not."""
    if not sys.platform.startswith("linux"):
        raise RealDaemonError("the real-daemon harness needs Linux (network namespaces)")
    if os.geteuid() != 0:
        raise RealDaemonError("the real-daemon harness must run as root (netns, users, smtpd)")
    for cmd in ("ip", "unshare", "mount", "openssl", "useradd"):
        if _which(cmd) is None:
            raise RealDaemonError(f"required command '{cmd}' not found (packages: iproute2, util-linux, openssl, passwd)")
    if not Path("/etc/resolv.conf").exists() or not Path("/etc/hosts").exists():
        raise RealDaemonError("/etc/resolv.conf and /etc/hosts must exist (they are bind-mounted over)")


def smtpd_binary() -> str | None:
    """Path of the smtpd binary, or None."""
    return _which("smtpd")


def smtpd_version() -> str | None:
    """Version reported by ``smtpd -h`` (e.g. ``6.8.0p2``), None when smtpd is absent."""
    exe = smtpd_binary()
    if exe is None:
        return None
    cp = _run([exe, "-h"], timeout=10, what="smtpd -h", check=False)
    m = re.search(r"version: OpenSMTPD (\S+)", cp.stdout + cp.stderr)
    return m.group(1) if m else None


def ensure_installed(*, install: bool = True, timeout: float = 900.0) -> str:
    """Make sure OpenSMTPD 6.8.0p2 is installed; install the Debian package if absent.

    The package's service start is blocked with a ``policy-rc.d`` returning 101 (as the
    research did), so no system instance ever runs. Returns the version.
    """
    version = smtpd_version()
    if version is None:
        if not install:
            raise RealDaemonError("opensmtpd is not installed (apt-get install -y opensmtpd, or allow install)")
        if _which("apt-get") is None:
            raise RealDaemonError("opensmtpd is not installed and apt-get is not available to install it")
        _apt_install(timeout)
        version = smtpd_version()
        if version is None:
            raise RealDaemonError("opensmtpd was installed but 'smtpd -h' reports no version")
    if version != SMTPD_VERSION:
        raise RealDaemonError(f"installed OpenSMTPD is {version}, the reference traces are {SMTPD_VERSION}")
    if _which("smtpctl") is None:
        raise RealDaemonError("smtpctl not found although smtpd is installed")
    return version


def _apt_install(timeout: float) -> None:
    """``apt-get install -y --no-install-recommends opensmtpd`` with service starts denied."""
    env = _env(DEBIAN_FRONTEND="noninteractive")
    backup: bytes | None = None
    ours = not _POLICY_RC_D.exists() or b"exit 101" not in _POLICY_RC_D.read_bytes()
    if ours:
        if _POLICY_RC_D.exists():
            backup = _POLICY_RC_D.read_bytes()
        _POLICY_RC_D.write_text("#!/bin/sh\n# smtpd-sim: do not start services while installing\nexit 101\n")
        _POLICY_RC_D.chmod(0o755)
    try:
        cmd = ["apt-get", "install", "-y", "--no-install-recommends", "opensmtpd"]
        cp = _run(cmd, timeout=timeout, what="installing opensmtpd", env=env, check=False)
        if cp.returncode != 0:  # stale package lists on a fresh machine: update once, retry
            _run(["apt-get", "update"], timeout=timeout, what="apt-get update", env=env)
            _run(cmd, timeout=timeout, what="installing opensmtpd", env=env)
    finally:
        if ours:
            if backup is not None:
                _POLICY_RC_D.write_bytes(backup)
            else:
                _POLICY_RC_D.unlink(missing_ok=True)


def home_of(user: str) -> Path:
    """Home directory of a system user."""
    try:
        return Path(pwd.getpwnam(user).pw_dir)
    except KeyError:
        raise RealDaemonError(f"test user {user!r} does not exist") from None


def ensure_test_users() -> None:
    """Create alice, bob, carol and dave (``useradd -m``) when missing; break dave's Maildir."""
    for user in TEST_USERS:
        try:
            pwd.getpwnam(user)
        except KeyError:
            _run(["useradd", "-m", "-s", "/bin/sh", user], timeout=30, what=f"creating user {user}")
    set_maildir_broken(BROKEN_MAILDIR_USER, True)


def set_maildir_broken(user: str, broken: bool) -> None:
    """Make ``~user/Maildir`` a regular file (``mail.maildir`` then exits EX_TEMPFAIL) or remove it.

    Removing leaves no Maildir; the next delivery creates a proper one.
    """
    md = home_of(user) / "Maildir"
    if broken:
        if md.is_dir() and not md.is_symlink():
            shutil.rmtree(md)
        if not md.is_file():
            md.unlink(missing_ok=True)
            md.touch()
        pw = pwd.getpwnam(user)
        os.chown(md, pw.pw_uid, pw.pw_gid)
    elif md.is_file() or md.is_symlink():
        md.unlink()


def maildir_count(user: str) -> int:
    """Number of delivered messages in ``~user/Maildir/new`` (0 when it is not a directory)."""
    new = home_of(user) / "Maildir" / "new"
    try:
        return sum(1 for _ in new.iterdir())
    except (NotADirectoryError, FileNotFoundError):
        return 0


def running_smtpd_pids() -> list[int]:
    """PIDs of every process whose command name is ``smtpd``."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if (p / "comm").read_text().strip() == "smtpd":
                    pids.append(int(p.name))
            except OSError:
                continue
    return pids


def wipe_spool() -> None:
    """Empty the spool's queue directories so no envelope of an earlier run is retried.

    Only called while no smtpd runs; the directories themselves (and their owners) stay.
    """
    for d in SPOOL_DIRS:
        base = SPOOL / d
        if not base.is_dir():
            continue
        for entry in base.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def _wait(pred: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``pred`` until it holds or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _listening(pid: int, port: int) -> bool:
    """True when ``pid``'s network namespace has a TCP listener on 127.0.0.1:``port``."""
    try:
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    want = f"0100007F:{port:04X}"
    return any(len(f := ln.split()) > 3 and f[1] == want and f[3] == "0A" for ln in lines)


def _interfaces(pid: int) -> list[str]:
    """Network interfaces visible in ``pid``'s namespace (/proc/<pid>/net/dev)."""
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return []
    return [ln.split(":", 1)[0].strip() for ln in lines if ":" in ln]


# ---------------------------------------------------------------------------- network namespace


class NetNamespace:
    """A named network namespace with only ``lo`` up; sockets can be created inside it.

    ``create()``/``delete()`` (or ``with``); :meth:`socket` makes a socket that lives in
    the namespace (a worker thread entered it with ``setns``), usable from any thread.
    """

    def __init__(self, name: str | None = None) -> None:
        self.name = name or f"{NETNS_PREFIX}{os.getpid()}"
        self.created = False
        self._pool: ThreadPoolExecutor | None = None

    @property
    def path(self) -> Path:
        """The namespace's bind-mount (``/run/netns/<name>``)."""
        return NETNS_DIR / self.name

    @staticmethod
    def remove_stale() -> None:
        """Delete namespaces left by earlier harness processes that no longer exist."""
        if not NETNS_DIR.is_dir():
            return
        for p in NETNS_DIR.glob(f"{NETNS_PREFIX}*"):
            pid = p.name[len(NETNS_PREFIX) :]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                _run(["ip", "netns", "delete", p.name], timeout=10, what="removing a stale namespace", check=False)

    def create(self) -> None:
        """``ip netns add``, bring ``lo`` up, verify that ``lo`` is the only interface."""
        if self.path.exists():
            raise RealDaemonError(f"network namespace {self.name} already exists")
        _run(["ip", "netns", "add", self.name], timeout=10, what="creating the network namespace")
        self.created = True
        _run(["ip", "-n", self.name, "link", "set", "lo", "up"], timeout=10, what="bringing lo up")
        cp = _run(["ip", "-n", self.name, "-o", "link", "show"], timeout=10, what="listing interfaces")
        ifaces = [ln.split(":")[1].strip().split("@")[0] for ln in cp.stdout.splitlines() if ":" in ln]
        if ifaces != ["lo"]:
            raise RealDaemonError(f"namespace {self.name} has interfaces {ifaces}, expected only lo")

    def _enter(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            if libc.setns(fd, _CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"setns({self.path}): {os.strerror(err)}")
        finally:
            os.close(fd)

    def socket(self, family: int, type_: int) -> socket.socket:
        """A new socket created inside the namespace."""
        if not self.created:
            raise RealDaemonError("network namespace not created")
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"netns-{self.name}", initializer=self._enter)
        try:
            return self._pool.submit(socket.socket, family, type_).result(timeout=10)
        except FutureTimeout:
            raise RealDaemonError(f"creating a socket in namespace {self.name} timed out") from None
        except Exception as e:  # BrokenThreadPool when setns failed
            raise RealDaemonError(f"cannot create a socket in namespace {self.name}: {e}") from e

    def connect(self, host: str, port: int, timeout: float) -> socket.socket:
        """A TCP connection to ``host:port`` made from inside the namespace."""
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = self.socket(fam, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((host, port))
        except OSError:
            s.close()
            raise
        return s

    def exec_prefix(self) -> list[str]:
        """Command prefix running a program inside the namespace."""
        return ["ip", "netns", "exec", self.name]

    def delete(self) -> None:
        """Stop the worker thread and ``ip netns delete`` (idempotent)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self.created:
            self.created = False
            _run(["ip", "netns", "delete", self.name], timeout=10, what="deleting the network namespace")

    def __enter__(self) -> NetNamespace:
        self.create()
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()


# ---------------------------------------------------------------------------- results


@dataclass
class RealRun:
    """One scenario run against the real daemon."""

    name: str
    log_lines: list[str]
    hops_df: pd.DataFrame
    dialogs: dict[str, Any]
    notes: dict[str, Any] = field(default_factory=dict)
    cpu: dict[str, procstat.CpuTimes] = field(default_factory=dict)
    elapsed_s: float = 0.0

    def save(self, outdir: str | Path) -> dict[str, Path]:
        """Write ``traces/<name>.log``, ``traces/<name>.dialog.json``, ``csv/<name>.imsg.csv``."""
        out = Path(outdir)
        (out / "traces").mkdir(parents=True, exist_ok=True)
        (out / "csv").mkdir(parents=True, exist_ok=True)
        paths = {
            "log": out / "traces" / f"{self.name}.log",
            "dialog": out / "traces" / f"{self.name}.dialog.json",
            "csv": out / "csv" / f"{self.name}.imsg.csv",
        }
        paths["log"].write_text("".join(x + "\n" for x in self.log_lines))
        paths["dialog"].write_text(json.dumps(self.dialogs, indent=1))
        paths["csv"].write_bytes(hops_to_csv(self.hops_df).encode())
        return paths


# ---------------------------------------------------------------------------- the daemon


class _HarnessEnv(ScenarioEnv):
    """Scenario environment backed by a :class:`RealDaemon`."""

    def __init__(self, daemon: RealDaemon) -> None:
        self.d = daemon

    def connect(self, host: str, port: int, timeout: float) -> socket.socket:
        return self.d.netns.connect(host, port, timeout)

    def mark(self, text: str) -> None:
        self.d.mark(text)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def maildir_count(self, user: str) -> int:
        return maildir_count(user)

    def wait_maildir(self, user: str, above: int, timeout: float) -> float | None:
        return time.time() if _wait(lambda: maildir_count(user) > above, timeout) else None

    def sink_count(self) -> int:
        return self.d.sink.count

    def wait_sink(self, above: int, timeout: float) -> float | None:
        return time.time() if _wait(lambda: self.d.sink.count > above, timeout) else None

    def sink_start(self) -> None:
        self.d.sink.start()

    def sink_stop(self) -> None:
        self.d.sink.stop()

    def schedule_all(self) -> None:
        self.d.smtpctl("schedule", "all")

    def set_maildir_broken(self, user: str, broken: bool) -> None:
        set_maildir_broken(user, broken)


class RealDaemon:
    """The real smtpd in a loopback-only namespace; one fresh daemon per scenario.

    Entering sets everything up (prerequisites, package, users, work dir, lock,
    namespace); leaving stops the daemon and the sink and deletes the namespace, also
    on error. :meth:`run_scenario` is the main entry point; :meth:`start`/:meth:`stop`
    and :meth:`mark` allow custom runs (benchmarks, calibration).
    """

    def __init__(
        self,
        workdir: str | Path,
        *,
        install: bool = True,
        trace_flags: Sequence[str] = DEFAULT_TRACE_FLAGS,
        startup_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        settle_s: float = 1.5,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.install = install
        self.trace_flags = tuple(trace_flags)
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.settle_s = settle_s
        self.netns = NetNamespace()
        self.sink = Sink(SINK_PORT, "127.0.0.1", socket_factory=self.netns.socket)
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._lines: list[str] = []
        self._lines_lock = threading.Lock()
        self._lock_fd: int | None = None
        self._entered = False

    # ------------------------------------------------------------------ setup / teardown
    def __enter__(self) -> RealDaemon:
        check_prerequisites()
        self._take_lock()
        try:
            ensure_installed(install=self.install)
            others = running_smtpd_pids()
            if others:
                raise RealDaemonError(f"another smtpd is running (pids {others}); stop it first")
            ensure_test_users()
            self._prepare_workdir()
            NetNamespace.remove_stale()
            self.netns.create()
            self._entered = True
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            self._cleanup()
        except RealDaemonError:
            if exc_type is None:
                raise  # otherwise the original error is the one worth reporting

    def _cleanup(self) -> None:
        errors: list[str] = []
        for step in (self.stop, self.sink.stop, self.netns.delete):
            try:
                step()
            except (RealDaemonError, SinkError, OSError) as e:
                errors.append(str(e))
        self._entered = False
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        if errors:
            raise RealDaemonError("cleanup: " + "; ".join(errors))

    def _take_lock(self) -> None:
        LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RealDaemonError(f"another real-daemon run holds {LOCK_FILE}") from None
        self._lock_fd = fd

    def _prepare_workdir(self) -> None:
        """conf/smtpd.conf, conf/resolv.conf, conf/hosts and a self-signed pki in the work dir."""
        conf, certs = self.workdir / "conf", self.workdir / "certs"
        conf.mkdir(parents=True, exist_ok=True)
        certs.mkdir(parents=True, exist_ok=True)
        (conf / "smtpd.conf").write_text(SMTPD_CONF)
        (conf / "resolv.conf").write_text(RESOLV_CONF)
        (conf / "hosts").write_text(HOSTS)
        if not (certs / "cert.pem").exists() or not (certs / "key.pem").exists():
            _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(certs / "key.pem"),
                  "-out", str(certs / "cert.pem"), "-days", "3650", "-subj", f"/CN={PKI_NAME}"],
                 timeout=60, what="generating the test certificate")
        os.chmod(certs / "key.pem", 0o600)

    # ------------------------------------------------------------------ daemon lifecycle
    @property
    def pid(self) -> int | None:
        """PID of the running smtpd parent, None when stopped."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def log_lines(self) -> list[str]:
        """Timestamped lines captured since the last :meth:`start` (a copy)."""
        with self._lines_lock:
            return list(self._lines)

    def mark(self, text: str) -> None:
        """Append ``"<ts> ### <text>"`` to the captured log."""
        with self._lines_lock:
            self._lines.append(f"{time.time():.6f} ### {text}")

    def _read_output(self, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            t = time.time()
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lines_lock:
                self._lines.append(f"{t:.6f} {line}")
        stream.close()

    def start(self, extra_flags: Sequence[str] = ()) -> int:
        """Start a fresh smtpd (empty spool, new log) and wait until it is ready; returns its pid.

        Ready = listening on both ports in its namespace and the parent's configuration
        (IMSG_CONF_START/END) received by lka, pony and ca.
        """
        if not self._entered:
            raise RealDaemonError("RealDaemon must be used as a context manager")
        if self.pid is not None:
            raise RealDaemonError("smtpd is already running")
        if running_smtpd_pids():
            raise RealDaemonError(f"another smtpd is running (pids {running_smtpd_pids()})")
        exe = smtpd_binary()
        if exe is None:
            raise RealDaemonError("smtpd binary not found")
        wipe_spool()
        with self._lines_lock:
            self._lines = []
        flags: list[str] = ["-v"]
        for f in self.trace_flags:
            flags += ["-T", f]
        script = 'mount --bind "$0" /etc/resolv.conf && mount --bind "$1" /etc/hosts && shift && exec "$@"'
        cmd = [*self.netns.exec_prefix(), "unshare", "--mount", "--propagation", "private", "--",
               "sh", "-c", script, str(self.workdir / "conf" / "resolv.conf"), str(self.workdir / "conf" / "hosts"),
               exe, "-d", "-f", "conf/smtpd.conf", *flags, *extra_flags]
        cmd[0] = _which(cmd[0]) or cmd[0]
        self._proc = subprocess.Popen(cmd, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, start_new_session=True, env=_env())
        self._reader = threading.Thread(target=self._read_output, args=(self._proc.stdout,),
                                        name="smtpd-log", daemon=True)
        self._reader.start()
        pid = self._proc.pid
        conf_seen = ("imsg: lka <- parent: IMSG_CONF_END", "imsg: pony <- parent: IMSG_CONF_END",
                     "imsg: ca <- parent: IMSG_CONF_END")

        def ready() -> bool:
            if self._proc is None or self._proc.poll() is not None:
                return True
            if not (_listening(pid, SMTP_PORT) and _listening(pid, TLS_PORT)):
                return False
            if "imsg" not in self.trace_flags:
                return True
            text = "\n".join(self.log_lines)
            return all(s in text for s in conf_seen)

        ok = _wait(ready, self.startup_timeout, 0.05)
        if self._proc.poll() is not None:
            self._join_reader()
            tail = [ln.split(" ", 1)[-1] for ln in self.log_lines[-3:]]
            raise RealDaemonError(f"smtpd exited during startup (rc {self._proc.returncode}): {' | '.join(tail)}")
        if not ok:
            self.stop()
            raise RealDaemonError(f"smtpd not ready within {self.startup_timeout:.0f} s")
        ifaces = _interfaces(pid)
        if ifaces != ["lo"]:
            self.stop()
            raise RealDaemonError(f"smtpd is not confined to loopback (interfaces {ifaces}); stopped")
        if procstat.process_name(pid) != "parent":
            self.stop()
            raise RealDaemonError(f"pid {pid} is not the smtpd parent ({procstat.cmdline(pid)[:2]})")
        return pid

    def _group_pids(self, pgid: int) -> list[int]:
        out = []
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                try:
                    if os.getpgid(int(p.name)) == pgid:
                        out.append(int(p.name))
                except OSError:
                    continue
        return out

    def stop(self) -> None:
        """SIGTERM the parent (it stops its children), SIGKILL the group if it hangs; idempotent."""
        proc = self._proc
        if proc is None:
            return
        pgid = proc.pid  # start_new_session: the group id is the parent's pid
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                pass
        _wait(lambda: not self._group_pids(pgid), 3.0, 0.05)
        for p in self._group_pids(pgid):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._join_reader()
        self._proc = None

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(5)
            self._reader = None

    def smtpctl(self, *args: str, timeout: float = 15.0) -> str:
        """Run ``smtpctl`` against the running daemon (control socket); returns stdout."""
        return _run(["smtpctl", *args], timeout=timeout, what="smtpctl").stdout

    # ------------------------------------------------------------------ scenarios
    def run_scenario(self, name: str, *, long: bool = False, retry_wait: float | None = None) -> RealRun:
        """Fresh daemon, BEGIN marker, the scenario's client, settle, END marker, stop.

        The sink runs only while the scenario wants it and is stopped after END. Long
        scenarios (minutes of retry timers) need ``long=True``; ``retry_wait`` shortens them.
        """
        try:
            get_scenario(name, long=long)
        except DialogError as e:
            raise RealDaemonError(str(e)) from None
        t_start = time.monotonic()
        self.start()
        cpu: dict[str, procstat.CpuTimes] = {}
        try:
            time.sleep(0.5)
            self.mark(f"SCENARIO {name} BEGIN")
            try:
                dialog = run_scenario_client(name, "127.0.0.1", SMTP_PORT, tls_port=TLS_PORT,
                                             env=_HarnessEnv(self), long=long, retry_wait=retry_wait)
            except DialogError as e:
                raise RealDaemonError(f"{name}: {e}") from None
            time.sleep(self.settle_s)
            self.mark(f"SCENARIO {name} END")
            if self.pid is not None:
                try:
                    cpu = procstat.snapshot(self.pid)
                except procstat.ProcStatError:
                    cpu = {}
        finally:
            self.stop()
            self.sink.stop()
            set_maildir_broken(BROKEN_MAILDIR_USER, True)
        self.mark("SMTPD STOPPED")
        lines = self.log_lines
        return RealRun(name=name, log_lines=lines, hops_df=parse_log(lines), dialogs=dialog,
                       notes=dict(dialog.get("notes", {})), cpu=cpu, elapsed_s=time.monotonic() - t_start)


# ---------------------------------------------------------------------------- batch + CLI


def run_real_scenarios(
    workdir: str | Path,
    names: Sequence[str] | None = None,
    *,
    long: bool = False,
    outdir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, RealRun]:
    """Run scenarios (default: every non-long one) against fresh daemons; optionally save them."""
    runs: dict[str, RealRun] = {}
    with RealDaemon(workdir) as d:
        for name in names or scenario_names(long=long):
            run = d.run_scenario(name, long=long)
            runs[name] = run
            if outdir is not None:
                run.save(outdir)
            if progress is not None:
                progress(f"{name}: {len(run.hops_df)} hops in {run.elapsed_s:.1f} s")
    return runs


def compare_with_reference(runs: dict[str, RealRun], ref_dir: str | Path = REFERENCE_DIR) -> dict[str, dict[str, Any]]:
    """:func:`smtpd_sim.observe.traces.compare_hops` of each run against ``<ref_dir>/csv/<name>.imsg.csv``."""
    out: dict[str, dict[str, Any]] = {}
    for name, run in runs.items():
        ref = Path(ref_dir) / "csv" / f"{name}.imsg.csv"
        if ref.exists():
            out[name] = compare_hops(read_hops_csv(ref), run.hops_df)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m smtpd_sim.real.harness [--install-only] [--long] [--out DIR] [NAME ...]``."""
    ap = argparse.ArgumentParser(description="run scenarios against the real OpenSMTPD and compare with the reference traces")
    ap.add_argument("names", nargs="*", help="scenarios (default: every non-long one)")
    ap.add_argument("--workdir", default="/tmp/smtpd-sim-real", help="conf/ and certs/ go here")
    ap.add_argument("--out", default=None, help="write traces/, csv/ and compare.json here")
    ap.add_argument("--ref", default=str(REFERENCE_DIR), help="reference dir with csv/<name>.imsg.csv")
    ap.add_argument("--long", action="store_true", help="include the retry scenarios (~10 min)")
    ap.add_argument("--install-only", action="store_true", help="install opensmtpd and the test users, then exit")
    args = ap.parse_args(argv)
    # SIGTERM (e.g. a CI timeout) unwinds like Ctrl-C, so the namespace and smtpd are cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if args.install_only:
            check_prerequisites()
            print(f"OpenSMTPD {ensure_installed()} installed")
            ensure_test_users()
            return 0
        t0 = time.monotonic()
        runs = run_real_scenarios(args.workdir, args.names or None, long=args.long, outdir=args.out, progress=print)
        elapsed = time.monotonic() - t0
    except RealDaemonError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    cmp = compare_with_reference(runs, args.ref)
    bad = 0
    for name, c in cmp.items():
        ok = c["multiset_equal"]
        bad += not ok
        print(f"{name:24s} non-stat {c['non_stat_counts']['real']:3d} ref / {c['non_stat_counts']['sim']:3d} now  "
              f"multiset {'equal' if ok else 'DIFFERENT'}  order ratio {c['sequence_ratio']:.3f}  "
              f"stat {c['stat_counts']['real']} ref / {c['stat_counts']['sim']} now")
        if not ok:
            print(f"    only in reference: {c['only_in_real']}\n    only now: {c['only_in_sim']}")
    print(f"total {elapsed:.1f} s for {len(runs)} scenarios")
    if args.out is not None:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "compare.json").write_text(json.dumps(cmp, indent=1, default=str))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
