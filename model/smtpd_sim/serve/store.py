"""The live server's files: its on-disk queue, the users' maildirs, the relay spool.

``smtpd-sim serve --queue DIR`` keeps what the simulated queue holds in real files, laid
out as ``queue_fs.c`` does (6.8.0p2 ``usr.sbin/smtpd/queue_fs.c``)::

    DIR/incoming/<msgid>/            queue_fs_message_create() .. commit: the message being made
    DIR/queue/<hh>/<msgid>/message   the committed message (hh = msgid >> 24, two hex digits)
    DIR/queue/<hh>/<msgid>/<evpid>   one envelope file per recipient (16 hex digits)

The simulated queue calls :meth:`QueueStore.commit` inside its IMSG_SMTP_MESSAGE_COMMIT
handler (``smtpd_sim.roles.ports.Hooks``), so the ``250`` goes out only once the message
and its envelopes are written, fsynced and renamed into ``queue/``. Stronger than the real
6.8 daemon, which writes envelopes at create time without fsync
(``fsqueue_envelope_dump(path, buf, len, 0, 0)``) and renames without fsync: here every
file and the directories the renames change are fsynced.

Envelope files are JSON (``Envelope.to_dict()``), not ``envelope_dump_buffer()`` text:
the model has no parser for that text and the file must give back every field. Times in
them are wall-clock (the simulation's clock restarts at each start); each also carries the
name its maildir file gets, so a redelivery after a crash finds the file already there.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import glob
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from smtpd_sim.fsm.envelope import Envelope

ENVELOPE_FORMAT = "smtpd-sim-envelope/1"
TIME_FIELDS = ("creation", "lasttry", "lastbounce", "nexttry")  # seconds on the simulation's clock
MESSAGE = "message"  # queue_fs.c PATH_MESSAGE
EVPTMP = "envelope.tmp"  # queue_fs.c PATH_EVPTMP (in /incoming)

Writer = Callable[[Path, bytes], None]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_file(path: Path, data: bytes) -> None:
    """Create or truncate ``path``, write ``data``, fsync, close (raises OSError)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """fsync a directory, so that the entries created, renamed or removed in it last."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_evpid_name(name: str) -> bool:
    """``fsqueue_qwalk()``: an envelope file is named by 16 hex digits."""
    return len(name) == 16 and all(c in "0123456789abcdef" for c in name)


@dataclass
class Reloaded:
    """What :meth:`QueueStore.load` found in ``queue/``."""

    envelopes: dict[int, list[Envelope]] = field(default_factory=dict)  # msgid -> envelopes
    bodies: dict[int, bytes] = field(default_factory=dict)  # msgid -> message file
    skipped: list[str] = field(default_factory=list)  # one line per file that could not be read

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.envelopes.values())


class QueueStore:
    """The queue directory: commit, envelope update and delete, and the walk at start-up.

    ``clock_offset``: wall-clock seconds minus simulation seconds (set by the server), so
    envelope times are written in wall-clock time and read back on a fresh clock."""

    def __init__(self, root: Path, *, write: Writer = write_file) -> None:
        self.root = Path(root)
        self.write = write
        self.clock_offset = 0.0
        self.names: dict[int, str] = {}  # evpid -> its maildir file name
        self.hostname = socket.gethostname() or "localhost"
        self._lock_fd = -1
        self._init()

    # ---- layout (queue_fs.c fsqueue_*_path()) ---------------------------------------------

    def message_path(self, msgid: int) -> Path:
        """``fsqueue_message_path()``: ``/queue/<msgid >> 24 as %02x>/<msgid %08x>``."""
        return self.root / "queue" / f"{(msgid & 0xFF000000) >> 24:02x}" / f"{msgid:08x}"

    def incoming_path(self, msgid: int) -> Path:
        """``fsqueue_message_incoming_path()``: ``/incoming/<msgid %08x>``."""
        return self.root / "incoming" / f"{msgid:08x}"

    def envelope_path(self, evpid: int) -> Path:
        """``fsqueue_envelope_path()``: ``<message path>/<evpid %016x>``."""
        return self.message_path(evpid >> 32) / f"{evpid:016x}"

    def _init(self) -> None:
        """``queue_fs_init()``: purge ``/incoming`` (``mvpurge()``: what was not committed is
        gone), make ``/queue`` and ``/incoming`` (mode 0700). First a lock on ``DIR/lock``:
        a second server on the same queue stops there, as smtpd stops when its control
        socket is already listening (``control.c:control_create_socket()``); the kernel
        drops the lock when the process dies, ``kill -9`` included."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OSError(errno.EBUSY, "in use by another smtpd-sim serve", str(self.root)) from None
        self._lock_fd = fd
        incoming = self.root / "incoming"
        if incoming.exists():
            purge = self.root / f"purge.{os.getpid()}.{time.monotonic_ns()}"
            os.rename(incoming, purge)
            shutil.rmtree(purge, ignore_errors=True)
        for sub in ("queue", "incoming"):
            (self.root / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        fsync_dir(self.root)

    def close(self) -> None:
        """Give the queue directory up (the lock)."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    # ---- the queue's operations ------------------------------------------------------------

    def commit(self, msgid: int, envelopes: Iterable[Envelope], body: bytes) -> None:
        """Write ``/incoming/<msgid>/{message,<evpid>...}``, fsync each file and the
        directory, then ``queue_fs_message_commit()``: rename it to ``/queue/<hh>/<msgid>``
        (mkdir the bucket first if needed) and fsync the bucket. Raises OSError, leaving
        nothing behind, if any step fails."""
        inc = self.incoming_path(msgid)
        dest = self.message_path(msgid)
        names: dict[int, str] = {}
        try:
            if inc.exists():
                shutil.rmtree(inc)
            inc.mkdir(mode=0o700)
            self.write(inc / MESSAGE, body)
            for evp in envelopes:
                names[evp.id] = self._name(evp.id)
                self.write(inc / f"{evp.id:016x}", self._dump(evp, names[evp.id]))
            fsync_dir(inc)
            bucket = dest.parent
            if not bucket.is_dir():
                bucket.mkdir(mode=0o700)
                fsync_dir(bucket.parent)
            if dest.exists():
                raise OSError(errno.EEXIST, "message already in the queue", str(dest))
            os.rename(inc, dest)
            fsync_dir(bucket)
        except OSError:
            shutil.rmtree(inc, ignore_errors=True)
            raise
        self.names.update(names)

    def envelope_update(self, evp: Envelope) -> None:
        """``queue_fs_envelope_update()`` → ``fsqueue_envelope_dump(dest, .., 1, 1)``: write
        ``/incoming/envelope.tmp``, fsync, rename over the envelope file (also how an
        envelope is created in a committed message: a bounce). Raises OSError."""
        dest = self.envelope_path(evp.id)
        if not dest.parent.is_dir():
            return  # the message is not in /queue (never committed, or already gone)
        tmp = self.root / "incoming" / EVPTMP
        name = self.names.get(evp.id) or self._name(evp.id)
        try:
            self.write(tmp, self._dump(evp, name))
            os.rename(tmp, dest)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self.names[evp.id] = name
        fsync_dir(dest.parent)

    def envelope_delete(self, evpid: int) -> None:
        """``queue_fs_envelope_delete()``: unlink the envelope; with the last one the message
        directory goes (``queue_fs_message_delete()``: rmtree). Not fsynced: a lost unlink
        means one more delivery attempt, which :class:`Maildirs` recognises."""
        self.names.pop(evpid, None)
        path = self.envelope_path(evpid)
        with contextlib.suppress(OSError):
            path.unlink()
        msgdir = path.parent
        try:
            left = [n for n in os.listdir(msgdir) if _is_evpid_name(n)]
        except FileNotFoundError:
            return
        if not left:
            shutil.rmtree(msgdir, ignore_errors=True)

    def _name(self, evpid: int) -> str:
        """mail.maildir names a file ``<time>.<arc4random()>.<hostname>``; the evpid is random
        too, and with the commit time in microseconds it is unique across restarts."""
        us = time.time_ns() // 1000
        return f"{us // 1_000_000}.M{us % 1_000_000:06d}.{evpid:016x}.{self.hostname}"

    def delivery_name(self, evpid: int) -> str | None:
        """The maildir file name of this envelope (fixed at commit, kept in its file)."""
        return self.names.get(evpid)

    # ---- start-up (queue.c:queue_timeout(): queue_envelope_walk()) ---------------------------

    def load(self) -> Reloaded:
        """Walk ``/queue/<hh>/<msgid>/<evpid>`` as ``fsqueue_qwalk()`` does (bogus names are
        skipped) and read each message file and envelope. A message directory without
        envelopes is removed (``queue_fs_message_delete()`` after its last one)."""
        out = Reloaded()
        qdir = self.root / "queue"
        for bucket in sorted(qdir.iterdir()):
            if not bucket.is_dir() or len(bucket.name) != 2:
                continue
            for msgdir in sorted(bucket.iterdir()):
                if not msgdir.is_dir() or len(msgdir.name) != 8:
                    continue
                try:
                    msgid = int(msgdir.name, 16)
                except ValueError:
                    continue
                files = sorted(n for n in os.listdir(msgdir) if _is_evpid_name(n) and n.startswith(msgdir.name))
                if not files:
                    shutil.rmtree(msgdir, ignore_errors=True)
                    continue
                try:
                    body = (msgdir / MESSAGE).read_bytes()
                except OSError as e:
                    out.skipped.append(f"{msgdir}: no message file ({e.strerror}); its envelopes are left alone")
                    continue
                evps = []
                for n in files:
                    try:
                        evp, name = self._load(json.loads((msgdir / n).read_bytes()))
                    except (OSError, ValueError, KeyError, TypeError) as e:
                        out.skipped.append(f"{msgdir / n}: unreadable envelope ({e}); left alone")
                        continue
                    if evp.id != int(n, 16):
                        out.skipped.append(f"{msgdir / n}: envelope id {evp.id:016x} differs; left alone")
                        continue
                    self.names[evp.id] = name
                    evps.append(evp)
                if evps:
                    out.envelopes[msgid] = evps
                    out.bodies[msgid] = body
        return out

    def queued(self) -> dict[int, list[int]]:
        """msgid -> evpids of every envelope file in ``/queue`` now (for tools and tests)."""
        out: dict[int, list[int]] = {}
        for path in (self.root / "queue").glob("??/????????/*"):
            if _is_evpid_name(path.name):
                out.setdefault(int(path.parent.name, 16), []).append(int(path.name, 16))
        return out

    # ---- envelope files ----------------------------------------------------------------------

    def _dump(self, evp: Envelope, name: str) -> bytes:
        d = evp.to_dict()
        for k in TIME_FIELDS:
            if d[k]:
                d[k] = d[k] + self.clock_offset
        return json.dumps({"format": ENVELOPE_FORMAT, "clock": "wall", "delivery_name": name,
                           "envelope": d}, sort_keys=True).encode() + b"\n"

    def _load(self, doc: dict) -> tuple[Envelope, str]:
        if doc.get("format") != ENVELOPE_FORMAT:
            raise ValueError(f"not a {ENVELOPE_FORMAT} file")
        d = dict(doc["envelope"])
        for k in TIME_FIELDS:
            if d.get(k):
                d[k] = d[k] - self.clock_offset
        return Envelope.from_mapping(d), str(doc["delivery_name"])


class Maildirs:
    """``<root>/<user>/{tmp,new,cur}``, written as ``mail.maildir.c:maildir_engine()`` does:
    mkdirs, ``tmp/<name>`` written and fsynced, renamed into ``new/`` (and here ``new/``
    fsynced too). Errors are OSError, which the caller turns into EX_TEMPFAIL."""

    def __init__(self, root: Path, *, write: Writer = write_file) -> None:
        self.root = Path(root)
        self.write = write
        self.hostname = socket.gethostname() or "localhost"

    def fresh_name(self) -> str:
        """``"%lld.%08x.%s"`` of time(NULL), arc4random() and the hostname."""
        return f"{int(time.time())}.{int.from_bytes(os.urandom(4), 'big'):08x}.{self.hostname}"

    def deliver(self, user: str, name: str, data: bytes) -> bool:
        """Write ``data`` as ``<user>/new/<name>``; False (nothing written) if a file of that
        name is already in ``new/`` or ``cur/``: a redelivery after a crash that came
        between the rename and the envelope's removal."""
        if not user or "/" in user or user.startswith("."):
            raise OSError(errno.EINVAL, "not a user name", user)
        base = self.root / user
        _maildir_mkdirs(base)
        new = base / "new" / name
        cur = base / "cur"
        if new.exists() or (cur / name).exists() or glob.glob(glob.escape(str(cur / name)) + ":*"):
            return False
        tmp = base / "tmp" / name
        try:
            self.write(tmp, data)
            os.rename(tmp, new)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        fsync_dir(base / "new")
        return True

    def names(self, user: str) -> list[str]:
        """The files delivered to ``user`` (``new/`` and ``cur/``)."""
        base = self.root / user
        return sorted(p.name for sub in ("new", "cur") if (base / sub).is_dir() for p in (base / sub).iterdir())


def _maildir_mkdirs(base: Path) -> None:
    """``mail.maildir.c:maildir_mkdirs()``: the maildir and its cur, tmp, new."""
    for sub in ("", "cur", "tmp", "new"):
        p = base / sub if sub else base
        try:
            p.mkdir(mode=0o700, parents=not sub)
        except FileExistsError:
            if not p.is_dir():
                raise OSError(errno.ENOTDIR, "not a directory", str(p)) from None


def append_mbox(path: Path, sender: str, rcpts: list[str], body: bytes) -> None:
    """Append one message to an mbox file (the relay spool: what the remote MX accepted),
    fsynced. Raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (f"From {sender or 'MAILER-DAEMON'} {time.asctime()}\n".encode()
            + f"X-Relayed-To: {', '.join(rcpts)}\n".encode()
            + body.replace(b"\r\n", b"\n") + b"\n")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- what is where, by Message-ID (the durability tests and benchmarks/bench_serve.py) ------

def message_ids(paths: Iterable[Path]) -> collections.Counter[str]:
    """The Message-ID header of each message file (read up to the end of its header), counted;
    a file that vanished meanwhile (delivered, removed) is skipped."""
    out: collections.Counter[str] = collections.Counter()
    for p in paths:
        try:
            data = p.read_bytes()
        except OSError:
            continue
        for line in data.split(b"\n"):
            if line.lower().startswith(b"message-id:"):
                out[line.split(b":", 1)[1].strip().decode()] += 1
                break
            if not line.strip():
                break
    return out


def delivered_ids(maildirs: Path) -> collections.Counter[str]:
    """Message-IDs in ``<maildirs>/<user>/{new,cur}``: a count above 1 is a duplicate."""
    return message_ids(p for p in maildirs.glob("*/*/*") if p.parent.name in ("new", "cur"))


def queued_ids(queue: Path) -> set[str]:
    """Message-IDs of the messages committed to a queue directory and not yet removed."""
    return set(message_ids(queue.glob("queue/??/????????/message")))
