"""The real smtpd's life cycle: its configuration, an emptied spool, start (ready when it
listens and its children have their configuration), the ``-T imsg`` trace captured line by
line with timestamps, and stop (SIGTERM, then SIGKILL of the group).

Why: every scenario needs a fresh daemon with nothing of an earlier run in its spool,
confined to a loopback-only namespace; only one real run may be active on a machine
(the spool and the control socket are global), which a lock file enforces.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import ssl
import stat
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from smtpd_sim.real import procstat
from smtpd_sim.real.commands import RealDaemonError, command_env, run, wait_until, which
from smtpd_sim.real.dns import DnsServer, ensure_dnsmasq
from smtpd_sim.real.install import (
    SMTPD_VERSION,
    check_prerequisites,
    ensure_installed,
    ensure_test_users,
    smtpd_binary,
)
from smtpd_sim.real.netns import NetNamespace, interfaces, listening
from smtpd_sim.real.profiles import DaemonProfile
from smtpd_sim.real.sink import Sink, SinkError
from smtpd_sim.real.testpki import write_sink_pki

SMTP_PORT = 2525
TLS_PORT = 2587
SINK_PORT = 2626
PKI_NAME = "mx.local.test"
DEFAULT_TRACE_FLAGS: tuple[str, ...] = ("imsg", "mproc", "profile-imsg", "smtp")
SPOOL = Path("/var/spool/smtpd")
SPOOL_DIRS: tuple[str, ...] = ("queue", "incoming", "temporary", "purge", "corrupt", "offline")
LOCK_FILE = Path("/run/lock/smtpd-sim-real.lock")

# Relay sinks: name -> (port, DSN advertised, TLS chain length or 0). "relay" is the
# research's smarthost sink; "mx" answers on port 25 for the MX-lookup relay (mta always
# connects to port 25 of an MX); "dsn" advertises DSN; "tls1"/"tls2" offer STARTTLS with
# a certificate chain of 1 and 2 below the test root named by the `ca` directive.
SINKS: dict[str, tuple[int, bool, int]] = {
    "relay": (SINK_PORT, False, 0),
    "mx": (25, False, 0),
    "dsn": (2627, True, 0),
    "tls1": (2628, False, 1),
    "tls2": (2629, False, 2),
}
MX_DOMAIN = "mx.test"  # relayed by MX lookup: the namespace's DNS server answers MX and A
MX_HOST = "smtp.mx.test"
TLS_SINK_HOSTS = {"tls1": "tls1.sink.test", "tls2": "tls2.sink.test"}  # names in the certificates
DNS_TTL = 300

# The research configuration (real-traces/smtpd.conf) plus the relays past the 250 (issue
# 17): MX lookup, a DSN-capable sink, STARTTLS sinks verified with a CA; pki paths
# relative to the work dir.
SMTPD_CONF = f"""\
# smtpd.conf for the real-daemon check (OpenSMTPD {SMTPD_VERSION}, Debian bookworm)
# All traffic is loopback-only; the relay targets are sinks on 127.0.0.1 (ports
# {SINK_PORT} to {SINKS["tls2"][0]}, and 25 for the MX of {MX_DOMAIN} found by the namespace's DNS server).

pki {PKI_NAME} cert "certs/cert.pem"
pki {PKI_NAME} key  "certs/key.pem"
# root of the TLS sinks' certificate chains (generated at run time)
ca sinkca cert "certs/sinks/ca.pem"

# plain listener (no STARTTLS) used for most scenarios
listen on 127.0.0.1 port {SMTP_PORT} hostname {PKI_NAME}
# STARTTLS listener
listen on 127.0.0.1 port {TLS_PORT} hostname {PKI_NAME} tls pki {PKI_NAME}

action "local" maildir
action "relay" relay host smtp+notls://127.0.0.1:{SINK_PORT}
action "relay-dsn" relay host smtp+notls://127.0.0.1:{SINKS["dsn"][0]}
action "relay-mx" relay
action "relay-tls1" relay host smtp+tls://{TLS_SINK_HOSTS["tls1"]}:{SINKS["tls1"][0]} tls ca sinkca
action "relay-tls2" relay host smtp+tls://{TLS_SINK_HOSTS["tls2"]}:{SINKS["tls2"][0]} tls ca sinkca

match from any for domain "local.test" action "local"
match from any for domain "relay.test" action "relay"
match from any for domain "dsn.test" action "relay-dsn"
match from any for domain "{MX_DOMAIN}" action "relay-mx"
match from any for domain "tls1.test" action "relay-tls1"
match from any for domain "tls2.test" action "relay-tls2"
"""
# bind-mounted over /etc in the daemon's private mount namespace: without them the
# reverse-DNS lookup at connect stalls on the host resolver. libasr reads `lookup`:
# the hosts file first (127.0.0.1 and the TLS sinks' names), then the namespace's DNS
# server on 127.0.0.1:53 (the MX and A records of mx.test).
RESOLV_CONF = "nameserver 127.0.0.1\nlookup file bind\n"
HOSTS = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
         + "".join(f"127.0.0.1\t{h}\n" for h in TLS_SINK_HOSTS.values()))
# the parent's configuration reached every child that needs it: the daemon is ready
_CONF_SEEN = ("imsg: lka <- parent: IMSG_CONF_END", "imsg: pony <- parent: IMSG_CONF_END",
              "imsg: ca <- parent: IMSG_CONF_END")


def _debian_install(install: bool) -> str:
    return ensure_installed(install=install)


def _debian_smtpctl() -> str | None:
    return which("smtpctl")


# The default daemon: Debian's package with the research configuration above.
DEBIAN_68 = DaemonProfile(
    name="debian-6.8.0p2", version=SMTPD_VERSION, smtpd=smtpd_binary, smtpctl=_debian_smtpctl,
    conf=SMTPD_CONF, spool=SPOOL, ready_lines=_CONF_SEEN,
    processes=7,  # parent, control, lka, queue, scheduler, pony, ca
    installer=_debian_install,
)


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


def wipe_spool(spool: Path = SPOOL) -> None:
    """Empty the spool's queue directories so no envelope of an earlier run is retried.

    Only called while no smtpd runs; the directories themselves (and their owners) stay.
    """
    for d in SPOOL_DIRS:
        base = spool / d
        if not base.is_dir():
            continue
        for entry in base.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


class RealDaemon:
    """The real smtpd in a loopback-only namespace; one fresh daemon per :meth:`start`.

    Entering sets everything up (prerequisites, package, users, work dir, lock,
    namespace); leaving stops the daemon and the sink and deletes the namespace, also
    on error. :meth:`start`/:meth:`stop` and :meth:`mark` make a run;
    :func:`smtpd_sim.real.runs.run_scenario` makes one scenario run of them.
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
        profile: DaemonProfile | None = None,
    ) -> None:
        self.profile = DEBIAN_68 if profile is None else profile  # which smtpd (default Debian's 6.8)
        self.workdir = Path(workdir).resolve()
        self.install = install
        self.trace_flags = tuple(trace_flags)
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.settle_s = settle_s
        self.netns = NetNamespace()
        self.sinks: dict[str, Sink] = {
            name: Sink(port, "127.0.0.1", socket_factory=self.netns.socket, dsn=dsn)
            for name, (port, dsn, _chain) in SINKS.items()
        }
        self.sink = self.sinks["relay"]
        self.dns = DnsServer(self.netns, mx={MX_DOMAIN: [(10, MX_HOST)]}, hosts={MX_HOST: "127.0.0.1"},
                             log_path=self.workdir / "dnsmasq.log", ttl=DNS_TTL)
        self._dnsmasq: str | None = None
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
            self.profile.ensure(install=self.install)
            others = running_smtpd_pids()
            if others:
                raise RealDaemonError(f"another smtpd is running (pids {others}); stop it first")
            self._dnsmasq = ensure_dnsmasq(install=self.install)
            ensure_test_users()
            self._prepare_workdir()
            NetNamespace.remove_stale()
            self.netns.create()
            self.dns.start(self._dnsmasq)
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
        for step in (self.stop, self.stop_sinks, self.dns.stop, self.netns.delete):
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
        (conf / "smtpd.conf").write_text(self.profile.conf)
        (conf / "resolv.conf").write_text(RESOLV_CONF)
        (conf / "hosts").write_text(HOSTS)
        self.profile.prepare(certs)
        if not (certs / "cert.pem").exists() or not (certs / "key.pem").exists():
            run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(certs / "key.pem"),
                 "-out", str(certs / "cert.pem"), "-days", "3650", "-subj", f"/CN={PKI_NAME}"],
                timeout=60, what="generating the test certificate")
        os.chmod(certs / "key.pem", 0o600)
        issued = write_sink_pki(certs / "sinks", {TLS_SINK_HOSTS[n]: SINKS[n][2] for n in TLS_SINK_HOSTS})
        for name, host in TLS_SINK_HOSTS.items():
            chain, key = issued[host]
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(chain, key)
            self.sinks[name].tls = ctx
        # 6.8 cert.c cert_do_verify() opens the `ca` file at each verification, in lka, as
        # the unprivileged _smtpd: the work dir must be traversable (pytest's are 0700)
        for d in [certs / "sinks", certs, *self.workdir.parents[::-1][1:], self.workdir]:
            mode = d.stat().st_mode
            if not mode & stat.S_IXOTH:
                d.chmod(mode | stat.S_IXOTH)
        (certs / "sinks" / "ca.pem").chmod(0o644)

    def stop_sinks(self) -> None:
        """Stop every relay sink (idempotent)."""
        for sink in self.sinks.values():
            sink.stop()

    # ------------------------------------------------------------------ trace capture
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

    # ------------------------------------------------------------------ start / stop
    def _ready_to_start(self) -> str:
        """Check that a fresh daemon may start now and empty the spool; the smtpd binary."""
        if not self._entered:
            raise RealDaemonError("RealDaemon must be used as a context manager")
        if self.pid is not None:
            raise RealDaemonError("smtpd is already running")
        if running_smtpd_pids():
            raise RealDaemonError(f"another smtpd is running (pids {running_smtpd_pids()})")
        exe = self.profile.smtpd()
        if exe is None:
            raise RealDaemonError("smtpd binary not found")
        wipe_spool(self.profile.spool)
        return exe

    def smtpd_command(self, exe: str, flags: Sequence[str]) -> list[str]:
        """``smtpd -d -f conf/smtpd.conf FLAGS`` inside the namespace, under a private mount
        namespace with the work dir's resolv.conf and hosts bind-mounted over ``/etc``."""
        script = 'mount --bind "$0" /etc/resolv.conf && mount --bind "$1" /etc/hosts && shift && exec "$@"'
        cmd = [*self.netns.exec_prefix(), "unshare", "--mount", "--propagation", "private", "--",
               "sh", "-c", script, str(self.workdir / "conf" / "resolv.conf"), str(self.workdir / "conf" / "hosts"),
               exe, "-d", "-f", "conf/smtpd.conf", *flags]
        cmd[0] = which(cmd[0]) or cmd[0]
        return cmd

    def start(self, extra_flags: Sequence[str] = ()) -> int:
        """Start a fresh smtpd (empty spool, new log) and wait until it is ready; returns its pid.

        Ready = listening on both ports in its namespace and the parent's configuration
        (IMSG_CONF_START/END) received by lka, pony and ca.
        """
        exe = self._ready_to_start()
        with self._lines_lock:
            self._lines = []
        flags: list[str] = ["-v"]
        for f in self.trace_flags:
            flags += ["-T", f]
        cmd = self.smtpd_command(exe, [*flags, *extra_flags])
        self._proc = subprocess.Popen(cmd, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, start_new_session=True, env=command_env())
        self._reader = threading.Thread(target=self._read_output, args=(self._proc.stdout,),
                                        name="smtpd-log", daemon=True)
        self._reader.start()
        pid = self._proc.pid

        def ready() -> bool:
            if self._proc is None or self._proc.poll() is not None:
                return True
            if not (listening(pid, SMTP_PORT) and listening(pid, TLS_PORT)):
                return False
            if "imsg" not in self.trace_flags:
                return True
            text = "\n".join(self.log_lines)
            return all(s in text for s in self.profile.ready_lines)

        ok = wait_until(ready, self.startup_timeout, 0.05)
        if self._proc.poll() is not None:
            self._join_reader()
            tail = [ln.split(" ", 1)[-1] for ln in self.log_lines[-3:]]
            raise RealDaemonError(f"smtpd exited during startup (rc {self._proc.returncode}): {' | '.join(tail)}")
        if not ok:
            self.stop()
            raise RealDaemonError(f"smtpd not ready within {self.startup_timeout:.0f} s")
        ifaces = interfaces(pid)
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
        wait_until(lambda: not self._group_pids(pgid), 3.0, 0.05)
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
        exe = self.profile.smtpctl()
        if exe is None:
            raise RealDaemonError("smtpctl not found")
        return run([exe, *args], timeout=timeout, what="smtpctl").stdout
