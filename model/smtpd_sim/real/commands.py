"""System commands for the real-daemon harness: sbin on PATH, a timeout on every run and
every wait, and one error type whose message is one line.

Why: the harness drives ``ip``, ``apt-get``, ``useradd``, ``openssl`` and ``smtpd``
as root; none of them may hang a CI run or end it with a traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence


class RealDaemonError(RuntimeError):
    """The real-daemon harness cannot proceed; the message is one line saying why."""


def tool_path() -> str:
    """PATH plus the sbin directories (ip, useradd, smtpd live there; a user PATH may lack them)."""
    parts = os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
    return os.pathsep.join(parts + [d for d in ("/usr/local/sbin", "/usr/sbin", "/sbin") if d not in parts])


def which(cmd: str) -> str | None:
    """``shutil.which`` over :func:`tool_path`."""
    return shutil.which(cmd, path=tool_path())


def command_env(**extra: str) -> dict[str, str]:
    """Environment for child commands: ours, with the sbin directories on PATH."""
    return {**os.environ, "PATH": tool_path(), **extra}


def run(cmd: Sequence[str], *, timeout: float, what: str, env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command with a timeout; any failure becomes a one-line :class:`RealDaemonError`."""
    exe = cmd[0] if os.sep in cmd[0] else (which(cmd[0]) or cmd[0])
    try:
        cp = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL, env=env or command_env())
    except FileNotFoundError:
        raise RealDaemonError(f"{what}: command not found: {cmd[0]}") from None
    except subprocess.TimeoutExpired:
        raise RealDaemonError(f"{what}: '{' '.join(cmd)}' did not finish within {timeout:.0f} s") from None
    if check and cp.returncode != 0:
        lines = (cp.stderr or cp.stdout).strip().splitlines()
        raise RealDaemonError(f"{what}: '{' '.join(cmd)}' exited {cp.returncode}: {lines[-1] if lines else ''}")
    return cp


def wait_until(pred: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``pred`` until it holds or ``timeout`` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
