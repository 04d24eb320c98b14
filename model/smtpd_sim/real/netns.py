"""A network namespace with only ``lo`` up, where the real daemon and its clients live.

Why: the real daemon must not reach any non-loopback address. It runs inside the
namespace (``ip netns exec``); the harness's own sockets (scenario clients, the relay
sink) are created inside it by a worker thread that entered it with ``setns``.
"""

from __future__ import annotations

import ctypes
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from smtpd_sim.real.commands import RealDaemonError, run

NETNS_DIR = Path("/run/netns")
NETNS_PREFIX = "smtpdsim-"
# A second loopback address on lo. libasr's getaddrinfo_async() with AI_ADDRCONFIG (6.8
# dns.c dns_lookup_host) treats a host with no IPv4 address but 127.0.0.1 as having no
# IPv4 at all (getaddrinfo_async.c addrconfig_setup), so every name lookup of the mta
# (an MX host, a smarthost by name) fails in a namespace with only 127.0.0.1.
EXTRA_LOOPBACK = "127.0.0.2/32"
_CLONE_NEWNET = 0x40000000


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
                run(["ip", "netns", "delete", p.name], timeout=10, what="removing a stale namespace", check=False)

    def create(self) -> None:
        """``ip netns add``, bring ``lo`` up with :data:`EXTRA_LOOPBACK`, verify that ``lo``
        is the only interface."""
        if self.path.exists():
            raise RealDaemonError(f"network namespace {self.name} already exists")
        run(["ip", "netns", "add", self.name], timeout=10, what="creating the network namespace")
        self.created = True
        run(["ip", "-n", self.name, "link", "set", "lo", "up"], timeout=10, what="bringing lo up")
        run(["ip", "-n", self.name, "addr", "add", EXTRA_LOOPBACK, "dev", "lo"], timeout=10,
            what="adding a second loopback address")
        cp = run(["ip", "-n", self.name, "-o", "link", "show"], timeout=10, what="listing interfaces")
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
            run(["ip", "netns", "delete", self.name], timeout=10, what="deleting the network namespace")

    def __enter__(self) -> NetNamespace:
        self.create()
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()


# ---------------------------------------------------------------------------- what a process in it sees


def listening(pid: int, port: int) -> bool:
    """True when ``pid``'s network namespace has a TCP listener on 127.0.0.1:``port``."""
    try:
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    want = f"0100007F:{port:04X}"
    return any(len(f := ln.split()) > 3 and f[1] == want and f[3] == "0A" for ln in lines)


def interfaces(pid: int) -> list[str]:
    """Network interfaces visible in ``pid``'s namespace (/proc/<pid>/net/dev)."""
    try:
        lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return []
    return [ln.split(":", 1)[0].strip() for ln in lines if ":" in ln]
