"""Bounces (``bounce.c``, inside the queue process): an SMTP client of the smtp role.

The scheduler injects bounce envelopes (IMSG_SCHED_ENVELOPE_INJECT); ``bounce_add()``
groups them per message and waits for the message's 1-second aggregation timeout;
``bounce_drain()`` asks smtp for an enqueue socket (IMSG_QUEUE_SMTP_SESSION, at most
``BOUNCE_MAXRUN`` sessions); the queue then speaks SMTP over that socketpair
(``bounce_next()``: EHLO, ``MAIL FROM: <>``, RCPT TO the original sender, DATA, the
notice and the original message, ``.``), and ``bounce_status()`` reports the result of
every bounce envelope of the message to the scheduler.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING, Any

from smtpd_sim.fsm.envelope import (
    B_DELAYED,
    B_DELIVERED,
    B_FAILED,
    DSN_RETHDRS,
    ESC_STATUS_OK,
    ESC_STATUS_TEMPFAIL,
)
from smtpd_sim.fsm.esc import esc_code, esc_description
from smtpd_sim.fsm.smtp_events import time_to_text
from smtpd_sim.kernel.sched import call_later

if TYPE_CHECKING:
    from smtpd_sim.fsm.envelope import Envelope
    from smtpd_sim.kernel.process import Process
    from smtpd_sim.roles.queue import QueueRole

BOUNCE_MAXRUN = 2  # bounce.c
BOUNCE_IO_TIMEOUT = 30.0  # io_set_timeout(s->io, 30000)

# 6.8 bounce.c: NOTICE_INTRO and the notices, CRLF line ends
NOTICE_INTRO = "    Hi!\r\n\r\n    This is the MAILER-DAEMON, please DO NOT REPLY to this email.\r\n"
NOTICE_ERROR = ("    An error has occurred while attempting to deliver a message for\r\n"
                "    the following list of recipients:\r\n\r\n")
NOTICE_WARNING = ("    A message is delayed for more than {} for the following\r\n"
                  "    list of recipients:\r\n\r\n")
NOTICE_WARNING2 = ("    Please note that this is only a temporary failure report.\r\n"
                   "    The message is kept in the queue for up to {}.\r\n"
                   "    You DO NOT NEED to re-send the message to these recipients.\r\n\r\n")
NOTICE_SUCCESS = "    Your message was successfully delivered to these recipients.\r\n\r\n"
NOTICE_RELAY = "    Your message was relayed to these recipients.\r\n\r\n"


def bounce_duration(d: float) -> str:
    """``bounce.c:bounce_duration()``: seconds, minutes, hours or days, truncated."""
    n = int(d)
    for size, unit in ((3600 * 24, "day"), (3600, "hour"), (60, "minute")):
        if n >= size:
            n //= size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return f"{n} second{'' if n == 1 else 's'}"


def action_str(bounce_type: int, mta_without_dsn: bool) -> str:
    """``bounce.c:action_str()``."""
    if bounce_type == B_DELIVERED:
        return "relayed" if mta_without_dsn else "delivered"
    return "delayed" if bounce_type == B_DELAYED else "failed"


def report_line(evp: Envelope) -> str:
    """``bounce.c:bounce_add()``: ``dest: errorline``, the errorline past a 1xx/6xx code."""
    line = evp.errorline
    if len(line) > 4 and line[0] in "16":
        line = line[4:]
    return f"{evp.dest or evp.rcpt}: {line}"


# 5.7.3 bounce.c: the same notices with LF line ends ("e-mail" in the intro)
NOTICE_INTRO_573 = "    Hi!\n\n    This is the MAILER-DAEMON, please DO NOT REPLY to this e-mail.\n"
_STRTYPE_573 = {B_FAILED: "error", B_DELAYED: "warning", B_DELIVERED: "dsn"}  # bounce_strtype()


def dsn_body_573(msg: BounceMessage, boundary: int, date: str, original: bytes) -> bytes:
    """The DATA of a 5.7.3 notice (5.7.3 ``bounce.c:bounce_next()``): the MIME parts of
    6.8 without MIME-Version/Content-Type headers, LF line ends, the subject's word from
    ``bounce_strtype()``, an ``Arrival-Date`` and a ``Diagnostic-Code`` per envelope, and
    the original as message/rfc822 (its headers only for a DSN with RET=HDRS)."""
    b = f"--{boundary:16d}/{msg.smtpname}"
    action = action_str(msg.bounce_type, msg.mta_without_dsn)
    out = [f"Subject: Delivery status notification: {_STRTYPE_573.get(msg.bounce_type, '')}\n"
           f"From: Mailer Daemon <MAILER-DAEMON@{msg.smtpname}>\n"
           f"To: {msg.to}\n"
           f"Date: {date}\n"
           "\n"
           "This is a MIME-encapsulated message.\n"
           "\n",
           f"{b}\nContent-Description: Notification\nContent-Type: text/plain; charset=us-ascii\n\n"
           + NOTICE_INTRO_573 + "\n"]
    if msg.bounce_type == B_FAILED:
        out.append(NOTICE_ERROR.replace("\r\n", "\n"))
    elif msg.bounce_type == B_DELAYED:
        out.append(NOTICE_WARNING.replace("\r\n", "\n").format(bounce_duration(msg.delay)))
    else:
        out.append((NOTICE_RELAY if msg.mta_without_dsn else NOTICE_SUCCESS).replace("\r\n", "\n"))
    out += [report_line(e) + "\n" for e in msg.envelopes]
    out.append("\n")
    if msg.bounce_type == B_DELAYED:
        out.append(NOTICE_WARNING2.replace("\r\n", "\n").format(bounce_duration(msg.ttl)))
    out.append("    Below is a copy of the original message:\n\n")
    out.append(f"{b}\nContent-Description: Delivery Report\nContent-Type: message/delivery-status\n\n"
               f"Reporting-MTA: dns; {msg.smtpname}\nArrival-Date: {date}\n\n")
    for e in msg.envelopes:
        out.append(f"Final-Recipient: rfc822; {e.dest or e.rcpt}\nAction: {action}\n"
                   f"Status: {esc_code(e.esc_class, e.esc_code)}\n"
                   f"Diagnostic-Code: smtp; {esc_description(e.esc_code)}\n\n")
    out.append(f"{b}\nContent-Type: message/rfc822\n\n")
    return _with_original("".join(out).encode(), msg, original, b"\n", f"\n{b}--\n.\r\n".encode())


def _with_original(head: bytes, msg: BounceMessage, original: bytes, eol: bytes, tail: bytes) -> bytes:
    """``BOUNCE_DATA_MESSAGE``: the message file line by line (a line that is exactly
    ``.`` doubled, no other stuffed), cut at the end of its headers for a success notice
    with RET=HDRS, then the closing boundary and ``.``."""
    hdrs_only = msg.bounce_type == B_DELIVERED and msg.dsn_ret == DSN_RETHDRS
    lines = original.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # getline() sees no line after the last newline
    body = []
    for ln in lines:
        if hdrs_only and ln == b"":
            break
        body.append((b"." if ln == b"." else b"") + ln + eol)
    return head + b"".join(body) + tail


def dsn_body_68(msg: BounceMessage, boundary: int, date: str, original: bytes) -> bytes:
    """The DATA of a 6.8 notice (``bounce.c:bounce_next()`` BOUNCE_DATA_NOTICE and
    BOUNCE_DATA_MESSAGE): a MIME multipart/mixed DSN — the notice in words, a
    message/delivery-status part (``Final-Recipient``, ``Action``, ``Status`` per
    envelope), then the original message as text/rfc822-headers (only its headers for a
    success notice with RET=HDRS), and the final ``.``. The message lines are written as
    the C does: a line that is exactly ``.`` is doubled, no other is stuffed."""
    b = f"--{boundary:16d}/{msg.smtpname}"
    action = action_str(msg.bounce_type, msg.mta_without_dsn)
    out = [f"Subject: Delivery status notification: {action}\r\n"
           f"From: Mailer Daemon <MAILER-DAEMON@{msg.smtpname}>\r\n"
           f"To: {msg.to}\r\n"
           f"Date: {date}\r\n"
           "MIME-Version: 1.0\r\n"
           f"Content-Type: multipart/mixed;boundary=\"{boundary:16d}/{msg.smtpname}\"\r\n"
           "\r\n"
           "This is a MIME-encapsulated message.\r\n"
           "\r\n",
           f"{b}\r\nContent-Description: Notification\r\n"
           "Content-Type: text/plain; charset=us-ascii\r\n\r\n" + NOTICE_INTRO + "\r\n"]
    if msg.bounce_type == B_FAILED:
        out.append(NOTICE_ERROR)
    elif msg.bounce_type == B_DELAYED:
        out.append(NOTICE_WARNING.format(bounce_duration(msg.delay)))
    else:
        out.append(NOTICE_RELAY if msg.mta_without_dsn else NOTICE_SUCCESS)
    out += [report_line(e) + "\r\n" for e in msg.envelopes]
    out.append("\r\n")
    if msg.bounce_type == B_DELAYED:
        out.append(NOTICE_WARNING2.format(bounce_duration(msg.ttl)))
    out.append("    Below is a copy of the original message:\r\n\r\n")
    out.append(f"{b}\r\nContent-Description: Delivery Report\r\n"
               "Content-Type: message/delivery-status\r\n\r\n"
               f"Reporting-MTA: dns; {msg.smtpname}\r\n\r\n")
    for e in msg.envelopes:
        out.append(f"Final-Recipient: rfc822; {e.dest or e.rcpt}\r\nAction: {action}\r\n"
                   f"Status: {esc_code(e.esc_class, e.esc_code)}\r\n\r\n")
    out.append(f"{b}\r\nContent-Description: Message headers\r\n"
               "Content-Type: text/rfc822-headers\r\n\r\n")
    return _with_original("".join(out).encode(), msg, original, b"\r\n", f"\r\n{b}--\r\n.\r\n".encode())


class BounceMessage:
    """``struct bounce_message``: bounce envelopes of one msgid to one sender."""

    __slots__ = ("msgid", "to", "smtpname", "envelopes", "timeout", "bounce_type", "delay", "ttl",
                 "dsn_ret", "mta_without_dsn", "key")

    def __init__(self, msgid: int, to: str, smtpname: str, bounce_type: int) -> None:
        self.msgid = msgid
        self.to = to
        self.smtpname = smtpname
        self.bounce_type = bounce_type  # struct delivery_bounce: B_ERROR, B_WARNING...
        self.delay = 0.0  # the rest of struct delivery_bounce: the warning's delay,
        self.ttl = 0.0  # the envelope's expiry, RET=, a relay without DSN
        self.dsn_ret = 0
        self.mta_without_dsn = False
        self.envelopes: list[Envelope] = []
        self.timeout = 0.0
        self.key: tuple[Any, ...] = ()  # its key in the ``messages`` tree


class SocketPair:
    """The enqueue socketpair ``smtp.c:smtp_enqueue()`` makes: bytes written on one end are
    read (as io events) by the other process after the socketpair latency. ``queue``: the
    process at the queue's end (its timers deliver what smtp wrote)."""

    def __init__(self, queue: Process, latency: float) -> None:
        self.queue = queue
        self.latency = latency
        self.addr = "local"
        self.smtp: Any = None
        self.sid = 0
        self.session: BounceSession | None = None
        # bytes the smtp end wrote before the queue end had a session reading them (the
        # banner): they wait in the socket buffer
        self._early: list[tuple[str, str]] = []  # ("reply", text) or ("close", reason)

    # the smtp side (as a client connection)
    def attach(self, smtp: Any, sid: int) -> None:
        self.smtp = smtp
        self.sid = sid

    def server_reply(self, text: str) -> None:
        s = self.session
        if s is None:
            self._early.append(("reply", text))
            return
        for line in text.split("\n"):
            self.queue.timer(self.latency, s.on_line, line, key="bounce.io")

    def server_close(self, reason: str) -> None:
        s = self.session
        if s is None:
            self._early.append(("close", reason))
            return
        self.queue.timer(self.latency, s.on_close, None, key="bounce.io")

    def bind(self, session: BounceSession) -> None:
        """The queue's bounce session starts reading: hand it what was buffered."""
        self.session = session
        early, self._early = self._early, []
        for what, arg in early:
            if what == "reply":
                self.server_reply(arg)
            else:
                self.server_close(arg)

    # the queue side
    def write(self, data: bytes) -> None:
        smtp, sid = self.smtp, self.sid
        call_later(self.queue.env, self.latency, lambda _t: smtp.client_data(sid, data))


class BounceSession:
    """``struct bounce_session`` and ``bounce_io()``."""

    def __init__(self, engine: BounceEngine, pair: SocketPair, smtpname: str) -> None:
        self.engine = engine
        self.pair = pair
        self.smtpname = smtpname
        self.state = "EHLO"
        self.msg: BounceMessage | None = None
        self.closed = False
        self.boundary = engine.rng.getrandbits(64)  # bounce_fd(): s->boundary = generate_uid()
        pair.bind(self)

    def send(self, line: str) -> None:
        """``bounce_send()``."""
        self.pair.write(f"{line}\r\n".encode())

    def on_line(self, line: str) -> None:
        """``bounce_io()`` IO_DATAIN: one reply line from the smtp session."""
        if self.closed:
            return
        if len(line) > 3 and line[3] == "-":
            return  # continuation line
        if self.state == "CLOSE":
            self.free()
            return
        if line[:1] not in ("2", "3"):
            self.status(line)
            self.state = "QUIT"
        elif self.state == "DATA_END":
            self.status(line)
        self.next()

    def on_close(self, _arg: object) -> None:
        if not self.closed:
            self.status("442 i/o error")
            self.free()

    def next(self) -> None:
        """``bounce.c:bounce_next()``."""
        st = self.state
        if st == "EHLO":
            self.send(f"EHLO {self.smtpname}")
            self.state = "MAIL"
        elif st in ("MAIL", "DATA_END"):
            self.msg = self.engine.next_message(self.smtpname)
            if self.msg is None:
                self.send("QUIT")
                self.state = "CLOSE"
                return
            self.send("MAIL FROM: <>")
            self.state = "RCPT"
        elif st == "RCPT":
            assert self.msg is not None
            self.send(f"RCPT TO: <{self.msg.to}>")
            self.state = "DATA"
        elif st == "DATA":
            self.send("DATA")
            self.state = "DATA_NOTICE"
        elif st == "DATA_NOTICE":
            # the notice, then the original message (BOUNCE_DATA_MESSAGE), then "."
            self.pair.write(self.engine.body(self.msg, self.boundary))
            self.state = "DATA_END"
        elif st == "QUIT":
            self.send("QUIT")
            self.state = "CLOSE"

    def status(self, line: str) -> None:
        """``bounce.c:bounce_status()``: 2xx ok, 5xx/6xx permfail, else tempfail."""
        if self.msg is None:
            return
        c = line[:1]
        result = "ok" if c == "2" else "permfail" if c in ("5", "6") else "tempfail"
        self.engine.delivery(self.msg, result, line)
        self.msg = None

    def free(self) -> None:
        """``bounce.c:bounce_free()``."""
        if self.closed:
            return
        self.closed = True
        self.engine.session_done(self)


class BounceEngine:
    """The bounce state of the queue process (``bounce.c`` globals)."""

    def __init__(self, queue: QueueRole) -> None:
        self.queue = queue
        self.rng = queue.bounce_rng  # MIME boundaries (generate_uid())
        # the ``messages`` tree: messages still open to more envelopes (bounce_add() finds
        # them); a message a session took is out of it, though not yet reported
        self.messages: dict[tuple[Any, ...], BounceMessage] = {}
        self.nmessage = 0  # messages added and not yet reported (bounce_delivery())
        self.pending: deque[BounceMessage] = deque()
        self.running = 0
        self.sessions: list[BounceSession] = []
        self._timer: Any = None
        self.delivered = 0
        self.failed = 0

    def add(self, evp: Envelope) -> None:
        """``bounce.c:bounce_add()``: group by (msgid, bounce type, smtpname); the message
        waits for its 1-second aggregation timeout (``msg->timeout = time(NULL) + 1``)."""
        q = self.queue
        msgid = evp.msgid
        btype = evp.bounce_type
        if q.behaviour.smtp_variant == "6.8":  # 6.8 bounce_add(): the type follows esc_class
            btype = (B_DELIVERED if evp.esc_class == ESC_STATUS_OK else
                     B_DELAYED if evp.esc_class == ESC_STATUS_TEMPFAIL else B_FAILED)
        elif q.behaviour.smtp_variant == "5.7.3":  # 5.7.3 bounce_add(): the errorline's first digit
            e0 = evp.errorline[:1]
            btype = B_DELAYED if e0 == "4" else B_FAILED if e0 == "5" else B_DELIVERED
        key = (msgid, btype, evp.smtpname or q.hostname, evp.bounce_delay, evp.mta_without_dsn)
        msg = self.messages.get(key)
        if msg is None:
            msg = BounceMessage(msgid, evp.sender, key[2], btype)
            msg.delay, msg.ttl = evp.bounce_delay, evp.expire
            msg.dsn_ret, msg.mta_without_dsn = evp.dsn_ret, evp.mta_without_dsn
            msg.key = key
            self.messages[key] = msg
            self.nmessage += 1
            q.stat_increment("bounce.message")
        elif msg in self.pending:
            self.pending.remove(msg)
        msg.envelopes.append(evp)
        msg.timeout = math.floor(q.now) + 1.0  # time(NULL) has a one-second resolution
        self.pending.append(msg)
        q.stat_increment("bounce.envelope")
        self.drain()

    def drain(self) -> None:
        """``bounce.c:bounce_drain()``."""
        q = self.queue
        while True:
            if self.running >= BOUNCE_MAXRUN or self.nmessage == 0 or self.running >= self.nmessage:
                return
            if not self.pending:
                return
            msg = self.pending[0]
            t = math.floor(q.now)
            if msg.timeout > t:
                if self._timer is None:
                    self._timer = q.proc.timer(msg.timeout - t, self._timeout, None, key="bounce.timer")
                return
            q.send("smtp", "QUEUE_SMTP_SESSION", None, length=0)
            self.running += 1

    def _timeout(self, _arg: object) -> None:
        """``bounce.c:bounce_timeout()``."""
        self._timer = None
        self.drain()

    def fd(self, pair: SocketPair | None) -> None:
        """``bounce.c:bounce_fd()``: a new session on the enqueue socket (or cancel)."""
        if pair is None or not self.pending:
            self.running -= 1
            self.drain()
            return
        s = BounceSession(self, pair, self.pending[0].smtpname)
        self.sessions.append(s)
        self.queue.stat_increment("bounce.session")

    def next_message(self, smtpname: str) -> BounceMessage | None:
        """``bounce.c:bounce_next_message()``: the first pending message for the session's
        ``smtpname`` whose timeout passed, out of ``pending`` and out of the ``messages``
        tree (``SPLAY_REMOVE``): a bounce envelope added while the session speaks goes into
        a new message, not into this one (it would be reported twice)."""
        now = math.floor(self.queue.now)
        for msg in list(self.pending):
            if msg.timeout > now or msg.smtpname != smtpname:
                continue
            self.pending.remove(msg)
            del self.messages[msg.key]
            return msg
        return None

    def body(self, msg: BounceMessage | None, boundary: int = 0) -> bytes:
        """The DATA of a bounce: the MIME DSN of 6.8 (:func:`dsn_body_68`) and 5.7.3
        (:func:`dsn_body_573`); 5.4.2: headers, the notice per envelope, the original
        message in plain text."""
        assert msg is not None
        q = self.queue
        variant = q.behaviour.smtp_variant
        if variant in ("6.8", "5.7.3"):
            date = q.hooks.date() if q.hooks.date is not None else time_to_text(q.now)
            make = dsn_body_68 if variant == "6.8" else dsn_body_573
            return make(msg, boundary, date, q.disk.bodies.get(msg.msgid, b"(original message not kept)\n"))
        reports = "".join(f"   {e.dest or e.rcpt}: {e.errorline}\r\n" for e in msg.envelopes)
        original = q.disk.bodies.get(msg.msgid, b"")
        head = (f"Subject: Delivery status notification: error\r\nFrom: Mailer Daemon <MAILER-DAEMON@{msg.smtpname}>\r\n"
                f"To: {msg.to}\r\n\r\n"
                f"Hi!\r\n\r\nThis is the MAILER-DAEMON, please DO NOT REPLY to this email.\r\n\r\n"
                f"An error has occurred while attempting to deliver a message for\r\nthe following list of recipients:\r\n\r\n"
                f"{reports}\r\nBelow is a copy of the original message:\r\n\r\n").encode()
        lines = original.replace(b"\r\n", b"\n").split(b"\n") if original else [b"(original message not kept)"]
        stuffed = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n" for ln in lines if ln is not None)
        return head + stuffed + b".\r\n"

    def delivery(self, msg: BounceMessage, result: str, status: str) -> None:
        """``bounce.c:bounce_delivery()``: report every bounce envelope of the message."""
        q = self.queue
        n = 0
        for evp in msg.envelopes:
            n += 1
            if result == "tempfail":
                q.bounce_tempfail(evp, status)
            else:
                q.bounce_done(evp, result)
        self.nmessage -= 1
        if result == "ok":
            self.delivered += 1
        else:
            self.failed += 1
        q.stat_decrement("bounce.message")
        q.stat_decrement("bounce.envelope", n)

    def session_done(self, s: BounceSession) -> None:
        self.sessions.remove(s)
        self.running -= 1
        self.queue.stat_decrement("bounce.session")
        self.drain()
