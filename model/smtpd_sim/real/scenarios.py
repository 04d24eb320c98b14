"""Client side of the real-daemon scenarios (plain sockets, stdlib only).

Why: the same scripted SMTP dialogs drive the real OpenSMTPD (through
:mod:`smtpd_sim.real.runs`) and the simulator's own live server, so their replies and
the imsg traffic they cause can be compared. The scenarios are those of
real-daemon.md §5 (research ``tools/scenarios.py``); each returns its dialog in the
research ``traces/<name>.dialog.json`` shape::

    {"name": ..., "sessions": [{"greeting", "client", "replies", "timeline": [{"t", "dir", "line"}]}],
     "notes": {...}}            # "notes" only when there is something to note

``client`` holds every line sent (data lines and the final ``.`` included); ``replies``
holds the greeting then one full reply per command or data terminator, multi-line
replies joined by ``"\\n"``; ``"<EOF>"`` means the server closed, ``"<TIMEOUT>"`` that
it did not answer in time.

What happens around the dialog (waiting for a delivery, starting the relay sink,
``smtpctl schedule all``) goes through a :class:`ScenarioEnv`; the base class is a no-op
environment that only connects, suitable for any SMTP server at ``host:port``.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TIMEOUT = 10.0  # seconds per socket read/connect
DELIVERY_TIMEOUT = 30.0  # seconds to wait for a delivery the scenario expects
LOCAL_RETRY_WAIT = 100.0  # local-tempfail-retry: MDA retries at +10, +40, +89 s (real-daemon.md §7)
RELAY_RETRY_WAIT = 430.0  # relay-unreachable-retry: second MTA attempt at +400 s
NO_NOTICE_WAIT = 5.0  # seconds to watch for a DSN/bounce the scenario expects not to come
CLIENT_HELO = "client.local.test"


class DialogError(RuntimeError):
    """A scenario's SMTP dialog could not be run (unknown name, long scenario not allowed,
    no connection); not :class:`smtpd_sim.spec.scenario.ScenarioError` (a bad scenario file)."""


# ---------------------------------------------------------------------------- SMTP client


class SmtpSession:
    """A line-exact SMTP client session that records every line sent and received."""

    def __init__(self, sock: socket.socket, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Take over a connected socket and read the greeting (bounded by ``timeout``)."""
        sock.settimeout(timeout)
        self.sock: socket.socket = sock
        self.buf = b""
        self.log: list[tuple[float, str, str]] = []  # (time, "C" | "S", line)
        self.client: list[str] = []
        self.replies: list[str] = []
        self.closed = False
        self.greeting = self.read_reply()

    def _readline(self) -> str | None:
        while b"\n" not in self.buf:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            except (ConnectionError, ssl.SSLError, OSError):
                data = b""
            if not data:
                self.closed = True
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def read_reply(self) -> str:
        """Read one full (possibly multi-line) reply; ``<EOF>`` / ``<TIMEOUT>`` when none."""
        lines: list[str] = []
        while True:
            line = self._readline()
            if line is None:
                break
            self.log.append((time.time(), "S", line))
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                break
        reply = "\n".join(lines) if lines else ("<EOF>" if self.closed else "<TIMEOUT>")
        self.replies.append(reply)
        return reply

    def send_raw(self, data: bytes, record: str | None = None) -> None:
        """Send bytes as they are, recording ``record`` as the client line."""
        if record is not None:
            self.client.append(record)
            self.log.append((time.time(), "C", record))
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    def cmd(self, line: str) -> str:
        """Send one command line and return its reply."""
        self.send_raw(line.encode() + b"\r\n", record=line)
        return self.read_reply()

    def data_body(self, lines: Sequence[str]) -> str:
        """Send message lines (dot-stuffed) and the final ``.`` in one write; return the reply."""
        payload = b"".join((("." + x) if x.startswith(".") else x).encode() + b"\r\n" for x in lines) + b".\r\n"
        self.client.extend(lines)
        self.client.append(".")
        self.log.append((time.time(), "C", f"<{len(lines)} data lines + .>"))
        try:
            self.sock.sendall(payload)
        except OSError:
            self.closed = True
        return self.read_reply()

    def starttls(self, server_hostname: str = "mx.local.test") -> str:
        """STARTTLS then a TLS handshake without certificate checks (test pki is self-signed)."""
        reply = self.cmd("STARTTLS")
        if reply.startswith("220"):
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.sock = ctx.wrap_socket(self.sock, server_hostname=server_hostname)
            cipher = self.sock.cipher()
            self.log.append((time.time(), "C", f"<TLS handshake done: {self.sock.version()} {cipher[0] if cipher else '?'}>"))
        return reply

    def close(self) -> None:
        """Close the socket (idempotent)."""
        try:
            self.sock.close()
        except OSError:
            pass

    def to_json(self) -> dict[str, Any]:
        """The session in the research dialog shape."""
        return {
            "greeting": self.greeting,
            "client": list(self.client),
            "replies": list(self.replies),
            "timeline": [{"t": t, "dir": d, "line": x} for (t, d, x) in self.log],
        }


def message(subject: str, extra_headers: Sequence[str] = ()) -> list[str]:
    """The small RFC 5322 test message the research used (headers, blank line, one body line);
    ``extra_headers`` go first (a ``Delivered-To:`` for the mail-loop scenario)."""
    return [
        *extra_headers,
        "From: <sender@local.test>",
        "To: <rcpt@local.test>",
        f"Subject: {subject}",
        f"Message-ID: <{subject.replace(' ', '-')}.{time.time():f}@{CLIENT_HELO}>",
        "",
        f"This is a test message for {subject}.",
    ]


# ---------------------------------------------------------------------------- environment


class ScenarioEnv:
    """What a scenario needs besides the SMTP dialog; this base is a bare server (no-ops).

    :class:`smtpd_sim.real.runs.DaemonScenarioEnv` connects inside the daemon's namespace,
    writes trace markers, watches maildirs and the sink, and runs ``smtpctl``. A simulator
    can do the same against its own model. ``wait_*`` return the time the condition held, or None.
    """

    def connect(self, host: str, port: int, timeout: float) -> socket.socket:
        """A connected TCP socket to ``host:port``."""
        return socket.create_connection((host, port), timeout)

    def mark(self, text: str) -> None:
        """Insert ``### <text>`` into the trace."""

    def sleep(self, seconds: float) -> None:
        """Let the server's timers run for ``seconds`` (base: no wait)."""

    def maildir_count(self, user: str) -> int:
        """Messages in ``~user/Maildir/new``."""
        return 0

    def wait_maildir(self, user: str, above: int, timeout: float) -> float | None:
        """Wait until ``maildir_count(user) > above``."""
        return None

    # ``which`` names the sink (smtpd_sim.real.daemon.SINKS): "relay" (the smarthost on
    # :2626), "mx" (the MX of mx.test on :25), "dsn" (advertises DSN), "tls1"/"tls2"
    # (STARTTLS with a certificate chain of 1/2)

    def sink_count(self, which: str = "relay") -> int:
        """Messages accepted by the sink ``which``."""
        return 0

    def wait_sink(self, above: int, timeout: float, which: str = "relay") -> float | None:
        """Wait until ``sink_count(which) > above``."""
        return None

    def sink_start(self, which: str = "relay") -> None:
        """Make the sink ``which`` answer (the relay sink: on 127.0.0.1:2626)."""

    def sink_stop(self, which: str = "relay") -> None:
        """Make the sink ``which`` unreachable."""

    def sink_params(self, which: str = "relay") -> list[list[str]] | None:
        """MAIL and RCPT parameters of each message the sink accepted (None: not known)."""
        return None

    def schedule_all(self) -> None:
        """``smtpctl schedule all``: retry every queued envelope now."""

    def set_maildir_broken(self, user: str, broken: bool) -> None:
        """Make ``~user/Maildir`` a regular file (delivery tempfails) or remove that file."""


@dataclass
class ScenarioContext:
    """What a scenario body gets: where the server is, the environment, the sessions so far."""

    host: str
    port: int
    tls_port: int
    env: ScenarioEnv
    timeout: float = DEFAULT_TIMEOUT
    retry_wait: float | None = None
    sessions: list[SmtpSession] = field(default_factory=list)

    def session(self, *, tls_listener: bool = False) -> SmtpSession:
        """Open a session (plain listener, or the STARTTLS one) and read the greeting."""
        port = self.tls_port if tls_listener else self.port
        try:
            sock = self.env.connect(self.host, port, self.timeout)
        except OSError as e:
            raise DialogError(f"cannot connect to {self.host}:{port}: {e.strerror or e}") from e
        s = SmtpSession(sock, timeout=self.timeout)
        self.sessions.append(s)
        return s

    def simple_send(self, mail_from: str, rcpts: Sequence[str], subject: str) -> SmtpSession:
        """EHLO, MAIL, RCPT..., DATA, the test message, QUIT."""
        s = self.session()
        s.cmd(f"EHLO {CLIENT_HELO}")
        s.cmd(f"MAIL FROM:<{mail_from}>")
        for r in rcpts:
            s.cmd(f"RCPT TO:<{r}>")
        s.cmd("DATA")
        s.data_body(message(subject))
        s.cmd("QUIT")
        s.close()
        return s


def _after(t0: float, t: float | None) -> float | None:
    return None if t is None else round(t - t0, 3)


# ---------------------------------------------------------------------------- scenarios


def _local_1rcpt(c: ScenarioContext, name: str) -> dict[str, Any]:
    n0 = c.env.maildir_count("alice")
    t0 = time.time()
    c.simple_send("sender@local.test", ["alice@local.test"], name)
    return {"delivered_after_s": _after(t0, c.env.wait_maildir("alice", n0, DELIVERY_TIMEOUT))}


def _local_3rcpt(c: ScenarioContext, name: str) -> dict[str, Any]:
    users = ("alice", "bob", "carol")
    n0 = {u: c.env.maildir_count(u) for u in users}
    t0 = time.time()
    c.simple_send("sender@local.test", [f"{u}@local.test" for u in users], name)
    done = [c.env.wait_maildir(u, n0[u], DELIVERY_TIMEOUT) for u in users]
    return {"delivered_after_s": None if None in done else _after(t0, max(t for t in done if t is not None))}


def _relay_1rcpt(c: ScenarioContext, name: str) -> dict[str, Any]:
    c.env.sink_start()
    n0 = c.env.sink_count()
    t0 = time.time()
    c.simple_send("sender@local.test", ["user@relay.test"], name)
    return {"delivered_after_s": _after(t0, c.env.wait_sink(n0, DELIVERY_TIMEOUT))}


def _reject_rcpt(c: ScenarioContext, name: str) -> dict[str, Any]:
    s = c.session()
    s.cmd(f"EHLO {CLIENT_HELO}")
    s.cmd("MAIL FROM:<sender@local.test>")
    s.cmd("RCPT TO:<nosuchuser@local.test>")  # unknown local user
    s.cmd("RCPT TO:<someone@example.com>")  # no matching rule: relaying denied
    s.cmd("DATA")
    s.cmd("QUIT")
    s.close()
    return {}


def _protocol_errors(c: ScenarioContext, name: str) -> dict[str, Any]:
    s = c.session()
    for line in ("MAIL FROM:<sender@local.test>", "RCPT TO:<alice@local.test>", "FOO bar", "DATA",
                 f"HELO {CLIENT_HELO}", "RCPT TO:<alice@local.test>", "DATA", "NOOP", "RSET",
                 "VRFY alice", "EXPN staff", "HELP", "QUIT"):
        s.cmd(line)
    s.close()
    return {}


def _relay_permfail_bounce(c: ScenarioContext, name: str) -> dict[str, Any]:
    c.env.sink_start()
    n0 = c.env.maildir_count("alice")
    t0 = time.time()
    c.simple_send("alice@local.test", ["reject-me@relay.test"], name)
    return {"bounce_delivered_after_s": _after(t0, c.env.wait_maildir("alice", n0, DELIVERY_TIMEOUT))}


def _starttls_local_1rcpt(c: ScenarioContext, name: str) -> dict[str, Any]:
    # 6.8.0p2 + OpenSSL 3: the privsep key engine fails, the handshake is aborted (real-daemon.md §6).
    s = c.session(tls_listener=True)
    s.cmd(f"EHLO {CLIENT_HELO}")
    err = None
    try:
        s.starttls()
        s.cmd(f"EHLO {CLIENT_HELO}")
        s.cmd("MAIL FROM:<sender@local.test>")
        s.cmd("RCPT TO:<alice@local.test>")
        s.cmd("DATA")
        s.data_body(message(name))
        s.cmd("QUIT")
    except (ssl.SSLError, OSError) as e:
        err = f"{type(e).__name__}: {e}"
        s.log.append((time.time(), "C", f"<client error: {err}>"))
    s.close()
    return {"client_error": err}


def _local_tempfail_retry(c: ScenarioContext, name: str) -> dict[str, Any]:
    wait = LOCAL_RETRY_WAIT if c.retry_wait is None else c.retry_wait
    c.env.set_maildir_broken("dave", True)
    t0 = time.time()
    c.simple_send("sender@local.test", ["dave@local.test"], name)
    c.env.mark(f"dave's Maildir is broken; waiting {wait:.0f} s for mda retries")
    c.env.sleep(wait)
    c.env.mark("fixing Maildir and forcing 'smtpctl schedule all'")
    c.env.set_maildir_broken("dave", False)
    n0 = c.env.maildir_count("dave")
    c.env.schedule_all()
    return {"t_msg_accepted": t0, "delivered_after_s": _after(t0, c.env.wait_maildir("dave", n0, DELIVERY_TIMEOUT))}


def _relay_unreachable_retry(c: ScenarioContext, name: str) -> dict[str, Any]:
    wait = RELAY_RETRY_WAIT if c.retry_wait is None else c.retry_wait
    c.env.sink_stop()
    t0 = time.time()
    c.simple_send("sender@local.test", ["user@relay.test"], name)
    c.env.mark(f"sink is down; waiting {wait:.0f} s for scheduler retries")
    c.env.sleep(wait)
    c.env.mark("starting sink and forcing 'smtpctl schedule all'")
    c.env.sink_start()
    n0 = c.env.sink_count()
    c.env.schedule_all()
    td = c.env.wait_sink(n0, DELIVERY_TIMEOUT)
    c.env.sleep(1.0)
    return {"t_msg_accepted": t0, "delivered_after_force_s": _after(t0, td)}


# ---------------------------------------------------------------- past the 250 (issue 17)


def _relay_mx_1rcpt(c: ScenarioContext, name: str) -> dict[str, Any]:
    # no smarthost: mta asks lka for the MX of mx.test (namespace DNS), then its address
    c.env.sink_start("mx")
    n0 = c.env.sink_count("mx")
    t0 = time.time()
    c.simple_send("sender@local.test", ["user@mx.test"], name)
    return {"delivered_after_s": _after(t0, c.env.wait_sink(n0, DELIVERY_TIMEOUT, "mx"))}


def _rcpt_reject_after_250(c: ScenarioContext, name: str) -> dict[str, Any]:
    n0 = c.env.maildir_count("alice")
    t0 = time.time()
    s = c.session()
    s.cmd(f"EHLO {CLIENT_HELO}")
    s.cmd("MAIL FROM:<sender@local.test>")
    s.cmd("RCPT TO:<alice@local.test>")  # 250
    s.cmd("RCPT TO:<nosuchuser@local.test>")  # 550: unknown local user, the transaction goes on
    s.cmd("DATA")
    s.data_body(message(name))
    s.cmd("QUIT")
    s.close()
    return {"delivered_after_s": _after(t0, c.env.wait_maildir("alice", n0, DELIVERY_TIMEOUT))}


NOTICE_TO = "bob"  # the sender of the DSN and loop scenarios: notices and bounces land in his Maildir


def _dsn_send(c: ScenarioContext, name: str, rcpt: str, notify: str,
              extra_headers: Sequence[str] = ()) -> SmtpSession:
    """One message from bob with RET=HDRS ENVID=<name> and RCPT ... NOTIFY=<notify> ORCPT=."""
    s = c.session()
    s.cmd(f"EHLO {CLIENT_HELO}")
    s.cmd(f"MAIL FROM:<{NOTICE_TO}@local.test> RET=HDRS ENVID={name}")
    s.cmd(f"RCPT TO:<{rcpt}> NOTIFY={notify} ORCPT=rfc822;{rcpt}")
    s.cmd("DATA")
    s.data_body(message(name, extra_headers))
    s.cmd("QUIT")
    s.close()
    return s


def _notice(c: ScenarioContext, t0: float, n0: int, expected: bool) -> dict[str, Any]:
    """Wait for the DSN or bounce in bob's Maildir (briefly when none is expected)."""
    t = c.env.wait_maildir(NOTICE_TO, n0, DELIVERY_TIMEOUT if expected else NO_NOTICE_WAIT)
    return {"notice_expected": expected, "notice_after_s": _after(t0, t)}


def _dsn_local(notify: str, expected: bool) -> Callable[[ScenarioContext, str], dict[str, Any]]:
    def body(c: ScenarioContext, name: str) -> dict[str, Any]:
        n0, a0 = c.env.maildir_count(NOTICE_TO), c.env.maildir_count("alice")
        t0 = time.time()
        _dsn_send(c, name, "alice@local.test", notify)
        out = {"delivered_after_s": _after(t0, c.env.wait_maildir("alice", a0, DELIVERY_TIMEOUT))}
        return {**out, **_notice(c, t0, n0, expected)}
    return body


def _dsn_relay(notify: str, rcpt: str, sink: str, expected: bool) -> Callable[[ScenarioContext, str], dict[str, Any]]:
    def body(c: ScenarioContext, name: str) -> dict[str, Any]:
        c.env.sink_start(sink)
        n0, s0 = c.env.maildir_count(NOTICE_TO), c.env.sink_count(sink)
        t0 = time.time()
        _dsn_send(c, name, rcpt, notify)
        out: dict[str, Any] = {}
        if not rcpt.startswith("reject"):
            out["relayed_after_s"] = _after(t0, c.env.wait_sink(s0, DELIVERY_TIMEOUT, sink))
        out.update(_notice(c, t0, n0, expected))
        params = c.env.sink_params(sink)
        if params is not None:
            out["sink_params"] = params[s0:]
        return out
    return body


def _mail_loop_delivered_to(c: ScenarioContext, name: str) -> dict[str, Any]:
    # the message already carries Delivered-To: its recipient: mda_check_loop() -> loop bounce
    n0 = c.env.maildir_count(NOTICE_TO)
    t0 = time.time()
    _dsn_send(c, name, "alice@local.test", "FAILURE", extra_headers=["Delivered-To: alice@local.test"])
    return _notice(c, t0, n0, True)


def _forward_loop(c: ScenarioContext, name: str) -> dict[str, Any]:
    # erin's ~/.forward says frank@local.test, frank's says erin@local.test: lka expands
    # the loop at RCPT time until EXPAND_DEPTH, so RCPT is refused and nothing is queued
    s = c.session()
    s.cmd(f"EHLO {CLIENT_HELO}")
    s.cmd(f"MAIL FROM:<{NOTICE_TO}@local.test>")
    s.cmd("RCPT TO:<erin@local.test>")
    s.cmd("QUIT")
    s.close()
    return {}


def _relay_starttls(sink: str, rcpt: str) -> Callable[[ScenarioContext, str], dict[str, Any]]:
    def body(c: ScenarioContext, name: str) -> dict[str, Any]:
        c.env.sink_start(sink)
        n0 = c.env.sink_count(sink)
        t0 = time.time()
        c.simple_send("sender@local.test", [rcpt], name)
        return {"delivered_after_s": _after(t0, c.env.wait_sink(n0, DELIVERY_TIMEOUT, sink))}
    return body


@dataclass(frozen=True)
class Scenario:
    """One scenario: its body, whether it is long (minutes of retry timers), what it is."""

    name: str
    body: Callable[[ScenarioContext, str], dict[str, Any]]
    description: str
    long: bool = False


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("local-1rcpt", _local_1rcpt, "1 message to alice (maildir)"),
        Scenario("local-3rcpt", _local_3rcpt, "1 message to alice, bob, carol"),
        Scenario("relay-1rcpt", _relay_1rcpt, "1 message to user@relay.test, relayed to the sink"),
        Scenario("reject-rcpt", _reject_rcpt, "unknown local user and unrouted domain (550 x2), DATA -> 503"),
        Scenario("protocol-errors", _protocol_errors, "commands out of order, unknown verbs, NOOP/RSET/VRFY/EXPN/HELP"),
        Scenario("relay-permfail-bounce", _relay_permfail_bounce, "sink 550 at RCPT -> bounce delivered to alice"),
        Scenario("starttls-local-1rcpt", _starttls_local_1rcpt, "STARTTLS on :2587 (fails with 6.8.0p2 + OpenSSL 3)"),
        Scenario("relay-mx-1rcpt", _relay_mx_1rcpt, "1 message to user@mx.test, relayed to its MX (DNS MX + A lookups)"),
        Scenario("rcpt-reject-after-250", _rcpt_reject_after_250, "RCPT alice 250, RCPT nosuchuser 550, DATA: alice gets it"),
        Scenario("dsn-success-local", _dsn_local("SUCCESS", True), "NOTIFY=SUCCESS to alice: delivered, success DSN to bob"),
        Scenario("dsn-success-relay", _dsn_relay("SUCCESS", "user@relay.test", "relay", True),
                 "NOTIFY=SUCCESS relayed to a sink without DSN: 'relayed' DSN to bob"),
        Scenario("dsn-success-relay-dsn", _dsn_relay("SUCCESS", "user@dsn.test", "dsn", False),
                 "NOTIFY=SUCCESS relayed to a sink advertising DSN: NOTIFY passed on, no notice"),
        Scenario("dsn-never-permfail", _dsn_relay("NEVER", "reject-me@relay.test", "relay", False),
                 "NOTIFY=NEVER, sink 550 at RCPT: no bounce"),
        Scenario("dsn-failure-permfail", _dsn_relay("FAILURE", "reject-me@relay.test", "relay", True),
                 "NOTIFY=FAILURE, sink 550 at RCPT: bounce to bob"),
        Scenario("dsn-success-permfail", _dsn_relay("SUCCESS", "reject-me@relay.test", "relay", True),
                 "NOTIFY=SUCCESS, sink 550 at RCPT: 6.8 queue_bounce() bounces anyway (only NEVER stops it)"),
        Scenario("mail-loop-delivered-to", _mail_loop_delivered_to,
                 "message carrying Delivered-To: alice@local.test to alice: loop detected, bounce to bob"),
        Scenario("forward-loop", _forward_loop, "to erin, whose .forward points to frank, whose .forward points back"),
        Scenario("relay-starttls-chain1", _relay_starttls("tls1", "user@tls1.test"),
                 "relayed with STARTTLS to a sink whose certificate chain has 1 link (verified with the test CA)"),
        Scenario("relay-starttls-chain2", _relay_starttls("tls2", "user@tls2.test"),
                 "relayed with STARTTLS to a sink whose certificate chain has 2 links (verified with the test CA)"),
        Scenario("local-tempfail-retry", _local_tempfail_retry, "dave's Maildir broken for 100 s, MDA retries, then fixed", long=True),
        Scenario("relay-unreachable-retry", _relay_unreachable_retry, "sink down for 430 s, MTA retry at +400 s, then up", long=True),
    )
}


def scenario_names(*, long: bool = False) -> list[str]:
    """Scenario names in run order; the long (retry-timer) ones only with ``long=True``."""
    return [n for n, s in SCENARIOS.items() if long or not s.long]


def get_scenario(name: str, *, long: bool = False) -> Scenario:
    """The scenario called ``name``; a long one only with ``long=True``."""
    try:
        sc = SCENARIOS[name]
    except KeyError:
        raise DialogError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})") from None
    if sc.long and not long:
        raise DialogError(f"scenario {name!r} waits for retry timers for minutes; pass long=True")
    return sc


def run_scenario_client(
    name: str,
    host: str = "127.0.0.1",
    port: int = 2525,
    *,
    tls_port: int = 2587,
    env: ScenarioEnv | None = None,
    long: bool = False,
    retry_wait: float | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """Run the client side of scenario ``name`` against the SMTP server at ``host:port``.

    Returns the dialog (research ``*.dialog.json`` shape). ``env`` defaults to the bare
    :class:`ScenarioEnv` (no delivery checks, no waits); ``retry_wait`` shortens the
    long scenarios' wait for retry timers.
    """
    sc = get_scenario(name, long=long)
    ctx = ScenarioContext(host, port, tls_port, env or ScenarioEnv(), timeout=timeout, retry_wait=retry_wait)
    try:
        notes = sc.body(ctx, name)
    finally:
        for s in ctx.sessions:
            s.close()
    dialog: dict[str, Any] = {"name": name, "sessions": [s.to_json() for s in ctx.sessions]}
    if any(v is not None for v in notes.values()):
        dialog["notes"] = notes
    return dialog
