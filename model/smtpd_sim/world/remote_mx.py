"""A remote MX the mta role talks to: replies to each command after a network delay.

The default behaviour accepts everything and offers no STARTTLS (the research's common
case, era-5.4.2-mfa.md §0.2). Faults change it (``smtpd_sim.sim.faults``):

* ``mx_down``: connections are refused (``down``; ``down_addrs`` refuses only some
  addresses of a multi-address MX);
* ``mx_reply``: a 4xx/5xx answer at one phase (connect = the banner, ehlo, mail, rcpt,
  data, eom = the reply to the final ".");
* ``mx_slow``: every reply comes ``delay_s`` later.

**Nagle + delayed ACK** (real-daemon.md §9): ``mta_session.c`` writes the dot-stuffed
body and the final ``.`` in two separate writes (MTA_BODY drains to IO_LOWAT, then
MTA_EOM sends ``.``), and does not set TCP_NODELAY. The body segment goes out at once;
Nagle holds the small ``.`` segment until the body is acknowledged, and the receiver,
having nothing to answer to a body, delays that ACK by the delayed-ACK timer. So the
``.`` reaches the MX about 40 ms late: the real 6.8.0p2 daemon logged ``>>> .`` →
``<<< 250`` in 40.7 ms (relay-unreachable-retry, final delivery) and 42–44 ms per message
in the relay drain benchmark, i.e. ≈ 23 msg/s per connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from smtpd_sim.spec.world import WorldParams
from smtpd_sim.world.faults import FaultPort

# Linux TCP_DELACK_MIN = HZ/25 = 40 ms (include/net/tcp.h), the receiver's minimum ACK
# delay; measured on the real daemon as the `>>> .` → `<<< 250` time of 40.7 ms
# (tests/data/real-traces/traces/relay-unreachable-retry.log) and 42-44 ms under load
# (real-daemon.md §9). A calibration may set RemoteMx.delayed_ack_s; 0 disables the stall.
DELAYED_ACK_S = 0.040


class ClientProcess(Protocol):
    """What a connection uses of the client's process (a :class:`~smtpd_sim.kernel.process.Process`):
    timers for the replies, and the clock."""

    @property
    def env(self) -> Any: ...

    def timer(self, delay: float, fn: Callable[[Any], Any], arg: Any = None,
              key: str = "timer") -> object: ...


class Profile:
    """What one remote server offers (a sink of the real harness, an MX): STARTTLS and the
    certificates it presents (leaf included), DSN in its EHLO reply."""

    __slots__ = ("starttls", "cert_chain", "dsn")

    def __init__(self, starttls: bool = False, cert_chain: int = 2, dsn: bool = False) -> None:
        self.starttls = starttls
        self.cert_chain = cert_chain
        self.dsn = dsn


class RemoteMx:
    """The simulated remote SMTP servers: one behaviour (replies, faults, the accepted log)
    shared by all connections, and what each server offers (:class:`Profile`) by the
    address and port connected to (``profiles``; the defaults ``starttls``,
    ``cert_chain``, ``dsn`` otherwise)."""

    def __init__(self, params: WorldParams, hostname: str = "mx.relay.test") -> None:
        self.latency = params.remote_latency_s
        self.reply_time = params.remote_reply_s
        self.delayed_ack_s = DELAYED_ACK_S
        self.hostname = hostname
        self.accepted: list[tuple[str, list[str], int]] = []  # (sender, rcpts, size), if keep_log
        # the MAIL and RCPT parameters of each accepted message (RET=, ENVID=, NOTIFY=,
        # ORCPT=: what the mta passed on to a DSN server), if keep_log
        self.accepted_params: list[list[str]] = []
        self.keep_log = True  # off in a streaming run: the count only
        self.accepted_count = 0
        self.connections = 0
        self.refused = 0
        self.open = 0  # connections currently open
        self.max_open = 0  # the most open at once (what maxconn_per_route allows)
        self.stalls = 0  # final dots held back by Nagle + delayed ACK
        self.by_addr: dict[str, int] = {}  # connections accepted per address
        self.down = False  # fault: connections refused
        self.down_addrs: set[str] = set()  # fault on some addresses only (multi-address MX)
        self.hook: Callable[[str, list[str], int], None] | None = None
        self.faults = FaultPort()  # the run's faults, once armed (smtpd_sim.sim.faults)
        # the research sink (real-traces/tools/sink.py): a reply for some recipients
        self.rcpt_policy: Callable[[str], str | None] | None = None
        self.on_delivered: Callable[[list[int]], None] | None = None
        # outbound TLS (workload [remote]): the MX offers STARTTLS and presents a chain of
        # ``cert_chain`` certificates, leaf included
        self.starttls = False
        self.cert_chain = 2
        self.tls_sessions = 0
        self.dsn = False  # workload [remote] dsn: "250-DSN" in the EHLO reply (RFC 3461)
        # (addr, port) -> Profile; addr "" matches any address, port 0 any port
        self.profiles: dict[tuple[str, int], Profile] = {}

    def profile(self, addr: str | None, port: int) -> Profile:
        """What the server at ``addr``:``port`` offers: the most specific entry of
        ``profiles``, else the defaults."""
        for key in ((addr or "", port), ("", port), (addr or "", 0)):
            p = self.profiles.get(key)
            if p is not None:
                return p
        return Profile(self.starttls, self.cert_chain, self.dsn)

    def connect(self, proc: ClientProcess, deliver: Callable[[str], None],
                addr: str | None = None, port: int = 0) -> RemoteConnection | None:
        """A TCP connection from ``proc`` (to ``addr``:``port``, one address of the MX);
        replies arrive as io events running ``deliver(line)``. None: the connection is
        refused (the MX, or that address, is down)."""
        if self.down or (addr is not None and addr in self.down_addrs):
            self.refused += 1
            return None
        self.connections += 1
        if addr is not None:
            self.by_addr[addr] = self.by_addr.get(addr, 0) + 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        return RemoteConnection(self, proc, deliver, self.profile(addr, port))


class RemoteConnection:
    """The server side of one outbound session."""

    def __init__(self, mx: RemoteMx, proc: ClientProcess, deliver: Callable[[str], None],
                 profile: Profile | None = None) -> None:
        self.mx = mx
        self.offers = profile if profile is not None else mx.profile(None, 0)
        self.proc = proc
        self.deliver = deliver
        self.in_data = False
        self.sender = ""
        self.rcpts: list[str] = []
        self.size = 0
        self.msgid = 0
        self.evpids: list[int] = []
        self.params: list[str] = []  # MAIL and RCPT parameters of the transaction
        self.closed = False
        self.tls = False  # STARTTLS done on this connection
        # when the ACK of the last body segment reaches the client (Nagle releases the ".")
        self.body_acked_at = 0.0
        self._counted = True  # in mx.open until the connection goes
        bad = self._fault("connect")
        self._reply(bad or f"220 {mx.hostname} ESMTP")

    def close(self) -> None:
        """The client closed the connection (``mta_free()`` → ``io_free()``)."""
        self.closed = True
        self._gone()

    def _gone(self) -> None:
        if self._counted:
            self._counted = False
            self.mx.open -= 1

    def _reply(self, *lines: str, hold: float = 0.0) -> None:
        """Reply lines reach the client after our write crossed the network, the MX
        worked on it and its reply came back; ``hold``: the client's write left late."""
        delay = hold + 2 * self.mx.latency + self.mx.reply_time
        faults = self.mx.faults.armed
        if faults is not None:
            slow = faults.active("mx_slow")
            if slow is not None:
                delay += slow.delay_s
        for line in lines:
            self.proc.timer(delay, self.deliver, line, key="mta.io")

    def send_body(self, size: int, msgid: int, evpids: list[int] | None = None) -> None:
        """The message body (dot-stuffed), written before the final '.' in its own write:
        it goes out at once, its ACK comes back after the delayed-ACK timer."""
        if not self.closed and self.in_data:
            self.size += size
            self.msgid = msgid
            self.evpids = list(evpids or [])
            # never empty: the message file starts with the Received: header smtp added
            self.body_acked_at = self.proc.env.now + 2 * self.mx.latency + self.mx.delayed_ack_s

    def _fault(self, phase: str) -> str | None:
        """A scripted 4xx/5xx answer for this phase, if a fault says so."""
        faults = self.mx.faults.armed
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
                # Nagle: the "." waits for the ACK of the body still in flight
                hold = max(0.0, self.body_acked_at - self.proc.env.now)
                if hold > 0:
                    self.mx.stalls += 1
                bad = self._fault("eom")
                if bad:
                    self._reply(bad, hold=hold)
                    return
                self.mx.accepted_count += 1
                if self.mx.keep_log:
                    self.mx.accepted.append((self.sender, list(self.rcpts), self.size))
                    self.mx.accepted_params.append(list(self.params))
                if self.mx.hook is not None:
                    self.mx.hook(self.sender, list(self.rcpts), self.msgid)
                if self.mx.on_delivered is not None:
                    self.mx.on_delivered(self.evpids)
                self._reply("250 2.0.0 Ok: queued", hold=hold)
            return
        verb = line[:4].upper()
        phase = {"EHLO": "ehlo", "HELO": "ehlo", "MAIL": "mail", "RCPT": "rcpt", "DATA": "data"}.get(verb)
        bad = self._fault(phase) if phase else None
        if bad:
            self._reply(bad)
            return
        if verb in ("EHLO", "HELO"):
            if verb == "EHLO":
                ext = ["250-PIPELINING"] + (["250-DSN"] if self.offers.dsn else [])
                if self.offers.starttls and not self.tls:
                    ext.append("250-STARTTLS")
                self._reply(f"250-{self.mx.hostname}", *ext, "250 8BITMIME")
            else:
                self._reply(f"250 {self.mx.hostname}")
        elif verb == "MAIL":
            self.sender, self.rcpts, self.size = line[10:].split(">")[0].lstrip("<"), [], 0
            self.params = line.partition(">")[2].split()
            self._reply("250 2.1.0 Ok")
        elif verb == "RCPT":
            rcpt = line[8:].split(">")[0].lstrip("<")
            policy = self.mx.rcpt_policy(rcpt) if self.mx.rcpt_policy is not None else None
            if policy:
                self._reply(policy)
                return
            self.rcpts.append(rcpt)
            self.params += line.partition(">")[2].split()
            self._reply("250 2.1.5 Ok")
        elif verb == "DATA":
            self.in_data = True
            self._reply("354 End data with <CR><LF>.<CR><LF>")
        elif verb == "STAR" and line.upper() == "STARTTLS" and self.offers.starttls and not self.tls:
            # RFC 3207: 220, then the handshake; the client starts over with EHLO
            self.tls = True
            self.mx.tls_sessions += 1
            self._reply("220 2.0.0 Ready to start TLS")
        elif verb == "RSET":
            self._reply("250 2.0.0 Ok")
        elif verb == "QUIT":
            self._reply("221 2.0.0 Bye")
            self.closed = True
            self._gone()
        else:
            self._reply("502 5.5.2 Error: command not recognized")
