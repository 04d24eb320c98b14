"""Local delivery (``mda.c``): per-user queues, sessions, and the pipe into the agent.

The mda never forks: it asks the parent (IMSG_MDA_FORK), receives the write end of the
agent's stdin, pumps the message into it (``mda_io()``) and waits for the parent's
IMSG_MDA_DONE after SIGCHLD.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from smtpd_sim.fsm.envelope import Envelope
from smtpd_sim.kernel.message import Imsg
from smtpd_sim.roles.base import Role, handles

if TYPE_CHECKING:
    from smtpd_sim.kernel.process import Process
    from smtpd_sim.roles.ports import Ports

# smtpd.h / config.c defaults
MDA_MAX_SESSION = 50  # sc_mda_max_session
MDA_MAX_USER_SESSION = 7  # sc_mda_max_user_session
MDA_TASK_HIWAT = 50  # sc_mda_task_hiwat
MDA_TASK_LOWAT = 30  # sc_mda_task_lowat
MDA_TASK_RELEASE = 10  # sc_mda_task_release
MDA_IOBUF = 65536  # MDA_HIWAT: mda_io() writes up to 64 KiB per wake-up


def mda_check_loop(lines: tuple[bytes, ...], dest: str) -> bool:
    """``mda.c:mda_check_loop()`` (5.4.2, 5.7.3, 6.8): a header line ``Delivered-To: X``
    of the message file with X equal to the envelope's dest, ignoring case
    (``strcasecmp(buf + 14, e->dest)``). ``lines``: the file's ``Delivered-To: `` lines
    that come before its first non-header line, as the smtp FSM noted them."""
    d = dest.encode("latin-1", "replace").lower()
    return any(line[14:].lower() == d for line in lines)


class _User:
    """``struct mda_user``: envelopes of one (usertable, username)."""

    __slots__ = ("id", "name", "envelopes", "evpcount", "running", "runnable", "waitinfo",
                 "onhold", "holdq", "uid")

    def __init__(self, uid: int, name: str) -> None:
        self.id = uid
        self.name = name
        self.envelopes: deque[Envelope] = deque()
        self.evpcount = 0
        self.running = 0
        self.runnable = False
        self.waitinfo = True
        self.onhold = False
        self.holdq = False
        self.uid = -1


class _Session:
    __slots__ = ("id", "user", "evp", "agent", "written")

    def __init__(self, sid: int, user: _User, evp: Envelope) -> None:
        self.id = sid
        self.user = user
        self.evp = evp
        self.agent: Any = None
        self.written = False


class MdaRole(Role):
    """``mda.c:mda_imsg()``."""

    name = "mda"

    def __init__(self, proc: Process, ports: Ports) -> None:
        super().__init__(proc, ports)
        self.rng = ports.rng("mda-ids")
        self.users: dict[str, _User] = {}
        self.users_by_id: dict[int, _User] = {}
        self.runnable: deque[_User] = deque()
        self.sessions: dict[int, _Session] = {}
        self.disk = ports.disk  # the message file the queue's fd reads (mda_check_loop())

    def _uid(self) -> int:
        return self.rng.getrandbits(64)  # generate_uid()

    @handles("QUEUE_DELIVER")
    def on_deliver(self, m: Imsg) -> None:
        """IMSG_QUEUE_DELIVER: find/create the user, hold above hiwat, else queue the
        envelope (stat mda.pending) and ``mda_drain()``."""
        evp: Envelope = m.payload["envelope"]
        u = self._user(evp)
        if u.evpcount >= MDA_TASK_HIWAT:
            u.onhold = True
        if u.onhold:
            u.holdq = True
            self.send("queue", "MDA_DELIVERY_HOLD", {"evpid": evp.id, "holdq": u.id}, length=16)
            return
        u.envelopes.append(evp)  # mda_envelope()
        self.stat_increment("mda.envelope")
        u.evpcount += 1
        self.stat_increment("mda.pending")
        if not u.runnable and not u.waitinfo:
            u.runnable = True
            self.runnable.append(u)
        self._drain()

    def _user(self, evp: Envelope) -> _User:
        """``mda.c:mda_user()``: new users (``agent.mda.username``) ask lka for their
        userinfo (IMSG_MDA_LOOKUP_USERINFO)."""
        key = evp.mda_user or evp.dest.partition("@")[0]
        u = self.users.get(key)
        if u is not None:
            return u
        u = _User(self._uid(), key)
        self.users[key] = u
        self.users_by_id[u.id] = u
        self.send("lka", "MDA_LOOKUP_USERINFO", {"user_id": u.id, "user": key},
                  length=18 + len(key))
        self.stat_increment("mda.user")
        return u

    @handles("MDA_LOOKUP_USERINFO")
    def on_userinfo(self, m: Imsg) -> None:
        """IMSG_MDA_LOOKUP_USERINFO: runnable, or fail every queued envelope (``mda_fail()``)."""
        u = self.users_by_id.get(m.payload["user_id"])
        if u is None:
            return
        if m.payload["status"] != "ok":
            self._fail(u, permfail=m.payload["status"] == "permfail",
                       error="Permanent failure in user lookup" if m.payload["status"] == "permfail"
                       else "Temporary failure in user lookup")
            return
        u.uid = m.payload["uid"]
        u.waitinfo = False
        u.runnable = True
        self.runnable.append(u)
        self._drain()

    def _fail(self, u: _User, *, permfail: bool, error: str) -> None:
        """``mda.c:mda_fail()``."""
        while u.envelopes:
            e = u.envelopes.popleft()
            self._queue_result(e, "permfail" if permfail else "tempfail", error)
            self.stat_decrement("mda.envelope")
        self._user_free(u)

    def _drain(self) -> None:
        """``mda.c:mda_drain()``: start sessions within the limits, round robin over users."""
        while self.runnable:
            u = self.runnable.popleft()
            if u.evpcount == 0 and u.running == 0:
                self._user_free(u)
                continue
            if u.evpcount == 0 or u.running >= MDA_MAX_USER_SESSION:
                u.runnable = False
                continue
            if len(self.sessions) >= MDA_MAX_SESSION:
                self.runnable.appendleft(u)
                return
            self._session(u)
            if u.evpcount == MDA_TASK_LOWAT:
                if u.onhold:
                    u.onhold = False
                if u.holdq:
                    self.send("queue", "MDA_HOLDQ_RELEASE", {"holdq": u.id, "n": MDA_TASK_RELEASE},
                              length=12)
            self.runnable.append(u)

    def _session(self, u: _User) -> None:
        """``mda.c:mda_session()``: take an envelope, ask queue for the message fd."""
        evp = u.envelopes.popleft()
        u.evpcount -= 1
        u.running += 1
        s = _Session(self._uid(), u, evp)
        self.sessions[s.id] = s
        self.stat_decrement("mda.pending")
        self.stat_increment("mda.running")
        self.send("queue", "MDA_OPEN_MESSAGE", {"session": s.id, "msgid": evp.msgid})

    def _user_free(self, u: _User) -> None:
        """``mda.c:mda_user_free()``."""
        if u.holdq:
            self.send("queue", "MDA_HOLDQ_RELEASE", {"holdq": u.id, "n": -1}, length=12)
        self.users.pop(u.name, None)
        self.users_by_id.pop(u.id, None)
        self.stat_decrement("mda.user")

    @handles("MDA_OPEN_MESSAGE")
    def on_open_message(self, m: Imsg) -> None:
        """IMSG_MDA_OPEN_MESSAGE [fd] (5.4.2 IMSG_QUEUE_MESSAGE_FD): the loop check
        (``mda_check_loop()``: a ``Delivered-To:`` header of the file equal to the dest →
        IMSG_MDA_DELIVERY_LOOP, 5.4.2 IMSG_DELIVERY_LOOP), delivery headers, IMSG_MDA_FORK
        to the parent."""
        s = self.sessions.get(m.payload["session"])
        if s is None:
            return
        if not m.payload["ok"]:
            self._queue_result(s.evp, "tempfail", "Cannot get message fd")
            self._done(s)
            return
        if mda_check_loop(self.disk.delivered_to.get(s.evp.msgid, ()), s.evp.dest):
            self.send("queue", "MDA_DELIVERY_LOOP", {"evpid": s.evp.id}, length=8)  # mda_queue_loop()
            self._done(s)  # mda_log(e, "PermFail", "Loop detected"), mda_done()
            return
        # struct deliver: sender, rcpt, dest, the user's userinfo (mda.c builds it here)
        evp = s.evp
        self.send("parent", "MDA_FORK", {"session": s.id, "user": s.user.name, "evpid": evp.id,
                                         "sender": evp.sender, "rcpt": evp.rcpt, "dest": evp.dest})

    @handles("MDA_FORK")
    def on_fork(self, m: Imsg) -> None:
        """IMSG_MDA_FORK [pipe fd]: ``io_set_write()``; ``mda_io()`` pumps the message."""
        s = self.sessions.get(m.payload["session"])
        if s is None:
            return
        s.agent = m.payload["agent"]
        # struct envelope has no size (mda.c takes it from fstat() of the fd the queue passed
        # with IMSG_MDA_OPEN_MESSAGE); the model pumps one chunk, as it always has
        size = 0
        chunks = max(1, -(-size // MDA_IOBUF))
        self._write(s, chunks)

    def _write(self, s: _Session, chunks: int) -> None:
        """``mda.c:mda_io()`` IO_LOWAT: up to 64 KiB per wake-up; at EOF close the pipe."""
        def step(left: int) -> None:
            if left > 1:
                self.proc.post(step, left - 1, key="mda.io")
            else:
                s.written = True
                self.proc.emit(lambda _a: s.agent.eof(), None)
        self.proc.post(step, chunks, key="mda.io")

    @handles("MDA_DONE")
    def on_done(self, m: Imsg) -> None:
        """IMSG_MDA_DONE: the agent's status decides OK / TEMPFAIL / PERMFAIL."""
        s = self.sessions.get(m.payload["session"])
        if s is None:
            return
        status = m.payload["status"]
        if status == "ok" and not s.written:
            status, error = "tempfail", "mda exited prematurely"
        else:
            error = m.payload["cause"]
        self._queue_result(s.evp, status, error)
        self._done(s)

    def _queue_result(self, evp: Envelope, status: str, error: str) -> None:
        """``mda_queue_ok()`` / ``mda_queue_tempfail()`` / ``mda_queue_permfail()``."""
        if status == "ok":
            self.send("queue", "MDA_DELIVERY_OK", {"evpid": evp.id})
        elif status == "tempfail":
            self.send("queue", "MDA_DELIVERY_TEMPFAIL", {"evpid": evp.id, "reason": error},
                      length=13 + len(error))
        else:
            self.send("queue", "MDA_DELIVERY_PERMFAIL", {"evpid": evp.id, "reason": error},
                      length=13 + len(error))

    def _done(self, s: _Session) -> None:
        """``mda.c:mda_done()``."""
        self.sessions.pop(s.id, None)
        self.stat_decrement("mda.envelope")  # mda_envelope_free()
        s.user.running -= 1
        if not s.user.runnable:
            s.user.runnable = True
            self.runnable.append(s.user)
        self.stat_decrement("mda.running")
        self._drain()
