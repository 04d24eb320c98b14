"""A DNS server on 127.0.0.1:53 inside the daemon's network namespace (Debian ``dnsmasq``).

Why: with ``action "relay-mx" relay`` (no smarthost) the real mta looks up the MX of the
recipient's domain (``MTA_DNS_MX``, 6.8 ``mta.c``) through lka's resolver, then the
address of the MX host. Nothing may leave the loopback, so a dnsmasq in the namespace
answers for the test domains only (``--local=/test/``: NXDOMAIN for any other name
under ``.test``, no upstream server at all).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import IO

from smtpd_sim.real.commands import RealDaemonError, command_env, wait_until, which
from smtpd_sim.real.install import apt_install
from smtpd_sim.real.netns import NetNamespace

DNSMASQ_PACKAGE = "dnsmasq-base"  # the binary without the system service
DNS_PORT = 53


def udp_listening(pid: int, port: int) -> bool:
    """True when ``pid``'s network namespace has a UDP socket bound to 127.0.0.1:``port``."""
    try:
        lines = Path(f"/proc/{pid}/net/udp").read_text().splitlines()[1:]
    except OSError:
        return False
    want = f"0100007F:{port:04X}"
    return any(len(f := ln.split()) > 1 and f[1] == want for ln in lines)


def ensure_dnsmasq(*, install: bool = True) -> str:
    """Path of ``dnsmasq``; installs Debian's ``dnsmasq-base`` when absent and allowed."""
    exe = which("dnsmasq")
    if exe is None and install:
        apt_install([DNSMASQ_PACKAGE])
        exe = which("dnsmasq")
    if exe is None:
        raise RealDaemonError(f"dnsmasq not found (apt-get install -y {DNSMASQ_PACKAGE})")
    return exe


class DnsServer:
    """dnsmasq answering MX and A records for test domains, run in ``netns``."""

    def __init__(self, netns: NetNamespace, *, mx: dict[str, list[tuple[int, str]]], hosts: dict[str, str],
                 log_path: str | Path, ttl: int = 300) -> None:
        self.netns = netns
        self.mx = mx  # domain -> [(preference, host)]
        self.hosts = hosts  # host -> IPv4 address
        self.log_path = Path(log_path)
        self.ttl = ttl
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def command(self, exe: str) -> list[str]:
        """The dnsmasq command line (foreground, no config file, no upstream, queries logged)."""
        cmd = [*self.netns.exec_prefix(), exe, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
               "--no-hosts", "--no-poll", "--pid-file=", "--listen-address=127.0.0.1", "--bind-interfaces",
               f"--port={DNS_PORT}", "--local=/test/", f"--local-ttl={self.ttl}", "--log-queries",
               "--log-facility=-"]
        for domain, mxs in self.mx.items():
            cmd += [f"--mx-host={domain},{host},{pref}" for pref, host in mxs]
        cmd += [f"--host-record={host},{addr}" for host, addr in self.hosts.items()]
        cmd[0] = which(cmd[0]) or cmd[0]
        return cmd

    def start(self, exe: str, timeout: float = 10.0) -> None:
        """Start dnsmasq and wait until it listens on 127.0.0.1:53 in the namespace."""
        if self._proc is not None:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log = log
        self._proc = subprocess.Popen(self.command(exe), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True, env=command_env())
        pid = self._proc.pid
        # `ip netns exec` execs dnsmasq in place: the pid is dnsmasq's
        if not wait_until(lambda: self._proc is None or self._proc.poll() is not None
                          or udp_listening(pid, DNS_PORT), timeout, 0.05) or self._proc.poll() is not None:
            rc = self._proc.poll()
            self.stop()
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-2:]
            raise RealDaemonError(f"dnsmasq did not start (rc {rc}): {' | '.join(tail)}")

    def stop(self) -> None:
        """Terminate dnsmasq (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None
