"""A remote MX the mta role talks to: replies to each command after a network delay.

The default behaviour accepts everything and offers no STARTTLS (the research's common
case, era-5.4.2-mfa.md §0.2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from model.kernel.process import Process
from model.world.params import WorldParams


class RemoteMx:
    """One simulated remote SMTP server (all connections share its behaviour)."""

    def __init__(self, params: WorldParams, hostname: str = "mx.relay.test") -> None:
        self.latency = params.remote_latency_s
        self.reply_time = params.remote_reply_s
        self.hostname = hostname
        self.accepted: list[tuple[str, list[str], int]] = []
        self.connections = 0
        self.refused = 0
        self.down = False  # fault: connections refused
        self.hook: Callable[[str, list[str], int], None] | None = None
        self.faults: Any = None
        self.on_delivered: Callable[[list[int]], None] | None = None

    def connect(self, proc: Process, deliver: Callable[[str], None]) -> RemoteConnection | None:
        """A TCP connection from ``proc``; replies arrive as io events running ``deliver(line)``.
        None: the connection is refused (the MX is down)."""
        if self.down:
            self.refused += 1
            return None
        self.connections += 1
        return RemoteConnection(self, proc, deliver)


class RemoteConnection:
    """The server side of one outbound session."""

    def __init__(self, mx: RemoteMx, proc: Process, deliver: Callable[[str], None]) -> None:
        self.mx = mx
        self.proc = proc
        self.deliver = deliver
        self.in_data = False
        self.sender = ""
        self.rcpts: list[str] = []
        self.size = 0
        self.msgid = 0
        self.evpids: list[int] = []
        self.closed = False
        bad = self._fault("connect")
        self._reply(bad or f"220 {mx.hostname} ESMTP")

    def _reply(self, *lines: str) -> None:
        delay = 2 * self.mx.latency + self.mx.reply_time  # our write reaches it, its reply comes back
        faults = self.mx.faults
        if faults is not None:
            slow = faults.active("mx_slow")
            if slow is not None:
                delay += slow.delay_s
        for line in lines:
            self.proc.timer(delay, self.deliver, line, key="mta.io")

    def send_body(self, size: int, msgid: int, evpids: list[int] | None = None) -> None:
        """The message body (dot-stuffed), written before the final '.'."""
        if not self.closed and self.in_data:
            self.size += size
            self.msgid = msgid
            self.evpids = list(evpids or [])

    def _fault(self, phase: str) -> str | None:
        """A scripted 4xx/5xx answer for this phase, if a fault says so."""
        faults = self.mx.faults
        if faults is None:
            return None
        f = faults.active("mx_reply", phase=phase)
        if f is None:
            return None
        return f"{f.code} {'4.0.0' if f.code < 500 else '5.0.0'} simulated failure at {phase}"

    def send(self, line: str) -> None:
        """The mta wrote one command line."""
        if self.closed:
            return
        if self.in_data:
            if line == ".":
                self.in_data = False
                bad = self._fault("eom")
                if bad:
                    self._reply(bad)
                    return
                self.mx.accepted.append((self.sender, list(self.rcpts), self.size))
                if self.mx.hook is not None:
                    self.mx.hook(self.sender, list(self.rcpts), self.msgid)
                if self.mx.on_delivered is not None:
                    self.mx.on_delivered(self.evpids)
                self._reply("250 2.0.0 Ok: queued")
            return
        verb = line[:4].upper()
        phase = {"EHLO": "ehlo", "HELO": "ehlo", "MAIL": "mail", "RCPT": "rcpt", "DATA": "data"}.get(verb)
        bad = self._fault(phase) if phase else None
        if bad:
            self._reply(bad)
            return
        if verb in ("EHLO", "HELO"):
            if verb == "EHLO":
                self._reply(f"250-{self.mx.hostname}", "250-PIPELINING", "250 8BITMIME")
            else:
                self._reply(f"250 {self.mx.hostname}")
        elif verb == "MAIL":
            self.sender, self.rcpts, self.size = line[10:].split(">")[0].lstrip("<"), [], 0
            self._reply("250 2.1.0 Ok")
        elif verb == "RCPT":
            self.rcpts.append(line[8:].split(">")[0].lstrip("<"))
            self._reply("250 2.1.5 Ok")
        elif verb == "DATA":
            self.in_data = True
            self._reply("354 End data with <CR><LF>.<CR><LF>")
        elif verb == "RSET":
            self._reply("250 2.0.0 Ok")
        elif verb == "QUIT":
            self._reply("221 2.0.0 Bye")
            self.closed = True
        else:
            self._reply("502 5.5.2 Error: command not recognized")
