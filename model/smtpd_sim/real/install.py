"""What the host needs before the real daemon can run: prerequisites, Debian's opensmtpd
6.8.0p2 (apt, service starts denied), the test users and their maildirs.

Why: ``make validate-real`` must work on a fresh Debian machine with one command, and
the scenarios deliver to alice/bob/carol/dave (dave's ``~/Maildir`` is a regular file so
his deliveries tempfail, as in the research setup).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from smtpd_sim.real.commands import RealDaemonError, command_env, run, which

SMTPD_VERSION = "6.8.0p2"
TEST_USERS: tuple[str, ...] = ("alice", "bob", "carol", "dave", "erin", "frank")
BROKEN_MAILDIR_USER = "dave"
# ~/.forward files: erin and frank forward to each other (the forward-loop scenario)
FORWARDS: dict[str, str] = {"erin": "frank@local.test", "frank": "erin@local.test"}
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


def check_prerequisites() -> None:
    """Linux, root, and the commands the harness uses; raise :class:`RealDaemonError` if not."""
    if not sys.platform.startswith("linux"):
        raise RealDaemonError("the real-daemon harness needs Linux (network namespaces)")
    if os.geteuid() != 0:
        raise RealDaemonError("the real-daemon harness must run as root (netns, users, smtpd)")
    for cmd in ("ip", "unshare", "mount", "openssl", "useradd"):
        if which(cmd) is None:
            raise RealDaemonError(f"required command '{cmd}' not found (packages: iproute2, util-linux, openssl, passwd)")
    if not Path("/etc/resolv.conf").exists() or not Path("/etc/hosts").exists():
        raise RealDaemonError("/etc/resolv.conf and /etc/hosts must exist (they are bind-mounted over)")


def smtpd_binary() -> str | None:
    """Path of the smtpd binary, or None."""
    return which("smtpd")


def smtpd_version() -> str | None:
    """Version reported by ``smtpd -h`` (e.g. ``6.8.0p2``), None when smtpd is absent."""
    exe = smtpd_binary()
    if exe is None:
        return None
    cp = run([exe, "-h"], timeout=10, what="smtpd -h", check=False)
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
        if which("apt-get") is None:
            raise RealDaemonError("opensmtpd is not installed and apt-get is not available to install it")
        apt_install(["opensmtpd"], timeout=timeout)
        version = smtpd_version()
        if version is None:
            raise RealDaemonError("opensmtpd was installed but 'smtpd -h' reports no version")
    if version != SMTPD_VERSION:
        raise RealDaemonError(f"installed OpenSMTPD is {version}, the reference traces are {SMTPD_VERSION}")
    if which("smtpctl") is None:
        raise RealDaemonError("smtpctl not found although smtpd is installed")
    return version


def apt_install(packages: Sequence[str], *, timeout: float = 900.0) -> None:
    """``apt-get install -y --no-install-recommends PACKAGES`` with service starts denied
    (a ``policy-rc.d`` that exits 101, put back as it was afterwards)."""
    env = command_env(DEBIAN_FRONTEND="noninteractive")
    what = f"installing {' '.join(packages)}"
    backup: bytes | None = None
    ours = not POLICY_RC_D.exists() or b"exit 101" not in POLICY_RC_D.read_bytes()
    if ours:
        if POLICY_RC_D.exists():
            backup = POLICY_RC_D.read_bytes()
        POLICY_RC_D.write_text("#!/bin/sh\n# smtpd-sim: do not start services while installing\nexit 101\n")
        POLICY_RC_D.chmod(0o755)
    try:
        cmd = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
        cp = run(cmd, timeout=timeout, what=what, env=env, check=False)
        if cp.returncode != 0:  # stale package lists on a fresh machine: update once, retry
            run(["apt-get", "update"], timeout=timeout, what="apt-get update", env=env)
            run(cmd, timeout=timeout, what=what, env=env)
    finally:
        if ours:
            if backup is not None:
                POLICY_RC_D.write_bytes(backup)
            else:
                POLICY_RC_D.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- test users


def home_of(user: str) -> Path:
    """Home directory of a system user."""
    try:
        return Path(pwd.getpwnam(user).pw_dir)
    except KeyError:
        raise RealDaemonError(f"test user {user!r} does not exist") from None


def ensure_test_users() -> None:
    """Create the test users (``useradd -m``) when missing; break dave's Maildir; write the
    ``~/.forward`` files of :data:`FORWARDS` (owned by the user, mode 0644, as smtpd wants)."""
    for user in TEST_USERS:
        try:
            pwd.getpwnam(user)
        except KeyError:
            run(["useradd", "-m", "-s", "/bin/sh", user], timeout=30, what=f"creating user {user}")
    set_maildir_broken(BROKEN_MAILDIR_USER, True)
    for user, target in FORWARDS.items():
        fwd = home_of(user) / ".forward"
        fwd.write_text(target + "\n")
        pw = pwd.getpwnam(user)
        os.chown(fwd, pw.pw_uid, pw.pw_gid)
        fwd.chmod(0o644)


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


def clear_maildir(user: str) -> None:
    """Remove the delivered test messages from ``~user/Maildir/{new,cur,tmp}`` (a large
    directory slows delivery and the waits that list it; only test users' mail)."""
    for sub in ("new", "cur", "tmp"):
        d = home_of(user) / "Maildir" / sub
        if d.is_dir():
            for f in d.iterdir():
                if f.is_file():
                    f.unlink(missing_ok=True)
