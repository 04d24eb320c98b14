"""SMTP clients: the sessions a workload (``smtpd_sim.spec.workload``) drives.

Arrivals, message counts, recipients, local/relay mix and sizes are drawn from RNG
streams of their own, independent of the era, so two eras compared with the same seed
see exactly the same clients (common random numbers).
"""

from __future__ import annotations

import functools
import math
import random
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from smtpd_sim.kernel.sched import call_later
from smtpd_sim.spec.workload import read_replay_csv

if TYPE_CHECKING:
    import simpy

    from smtpd_sim.kernel.process import Process
    from smtpd_sim.observe.client_log import ClientLog
    from smtpd_sim.spec.workload import WorkloadSpec
    from smtpd_sim.spec.world import WorldParams
    from smtpd_sim.world.faults import FaultPort


class Server(Protocol):
    """What the clients connect to: the daemon's smtp listener (its ``connect(conn, tls)``),
    unless the daemon is down (between a crash and the restart)."""

    @property
    def down(self) -> bool: ...

    def listener(self) -> Any: ...


@dataclass(slots=True)
class MessagePlan:
    """One message a client will send."""

    rcpts: list[str]
    size: int
    sender: str = "sender@client.test"


@dataclass(slots=True)
class SessionPlan:
    """One client session, drawn before the run from the workload's RNG streams."""

    start: float
    messages: list[MessagePlan] = field(default_factory=list)
    tls: bool = False
    behaviour: str = "normal"  # normal | protocol_errors | bad_rcpt | early_quit


class SessionPlanner:
    """Draws sessions lazily from the workload's RNG streams (arrivals, mix, sizes, TLS),
    so memory does not grow with the number of sessions that have passed; the same seed
    gives the same sessions in every era (common random numbers)."""

    def __init__(self, spec: WorkloadSpec, seed: int) -> None:
        self.spec = spec
        self.arr = random.Random(f"{seed}:arrivals")
        self.mixr = random.Random(f"{seed}:mix")
        self.sizer = random.Random(f"{seed}:sizes")
        self.tlsr = random.Random(f"{seed}:tls")
        self.badr = random.Random(f"{seed}:misbehave")
        # drawn only when the workload asks (recipients_max, relay_domains): the other
        # streams, and so every workload without them, are unchanged
        self.rcptr = random.Random(f"{seed}:recipients")
        self.turn = 0
        self.limit = spec.sessions or math.inf
        self.drawn = 0
        self._t = 0.0
        self._replay: list[float] | None = None
        if spec.arrival.process == "replay":
            times = sorted(spec.arrival.times) if spec.arrival.times else read_replay_csv(spec.arrival.csv)
            self._replay = [t for t in times if t <= spec.duration_s]

    def next_time(self) -> float | None:
        """The next open-loop arrival time (None when the arrivals are over)."""
        a, spec = self.spec.arrival, self.spec
        if self.drawn >= self.limit:
            return None
        if self._replay is not None:
            return self._replay[self.drawn] if self.drawn < len(self._replay) else None
        self._t += self.arr.expovariate(a.rate_per_s) if a.process == "poisson" else 1.0 / a.rate_per_s
        if self._t > spec.duration_s and spec.sessions == 0:
            return None
        return self._t

    def draw(self, t: float) -> SessionPlan:
        """The content of one session starting at ``t``."""
        self.drawn += 1
        m = self.spec.mix
        mixr = self.mixr
        msgs = []
        for _ in range(m.messages):
            rcpts = []
            n_rcpts = m.recipients
            if m.recipients_max > n_rcpts:
                n_rcpts = self.rcptr.randint(n_rcpts, m.recipients_max)
            for _ in range(n_rcpts):
                if mixr.random() < m.local_share:
                    if m.pick == "cycle":
                        user = m.local_users[self.turn % len(m.local_users)]
                        self.turn += 1
                    else:
                        user = mixr.choice(m.local_users)
                    rcpts.append(f"{user}@{m.local_domain}")
                else:
                    user_n = mixr.randrange(1000)
                    domain = self.rcptr.choice(m.relay_domains) if m.relay_domains else m.relay_domain
                    rcpts.append(f"user{user_n}@{domain}")
            size = m.size_bytes if m.size_distribution == "fixed" else int(self.sizer.expovariate(1 / max(1, m.size_bytes)))
            msgs.append(MessagePlan(rcpts, size, m.sender))
        u = self.badr.random()
        behaviour = "normal"
        for name, share in (("protocol_errors", m.protocol_error_share), ("bad_rcpt", m.bad_rcpt_share),
                            ("early_quit", m.early_quit_share)):
            if u < share:
                behaviour = name
                if name == "bad_rcpt":
                    msgs[0].rcpts.insert(0, f"nobody@{m.local_domain}")
                break
            u -= share
        return SessionPlan(t, msgs, self.tlsr.random() < m.tls_share, behaviour)


def plan_sessions(spec: WorkloadSpec, seed: int) -> list[SessionPlan]:
    """Every open-loop session of the run, drawn at once (tests and small runs)."""
    p = SessionPlanner(spec, seed)
    if spec.arrival.process == "closed":
        return [p.draw(0.0) for _ in range(int(min(p.limit, spec.arrival.concurrency)))]
    out = []
    while (t := p.next_time()) is not None:
        out.append(p.draw(t))
    return out


def body_lines(plan: MessagePlan, n: int) -> bytes:
    """A body of about ``plan.size`` bytes with RFC 5322 headers (the real server checks them)."""
    head = f"From: <{plan.sender}>\r\nTo: <{plan.rcpts[0]}>\r\nSubject: message {n}\r\n\r\n"
    return head.encode() + _filler(max(0, plan.size - len(head)))


@functools.lru_cache(maxsize=1024)
def _filler(filler: int) -> bytes:
    """Lines of at most 76 'x' adding up to about ``filler`` bytes, then the final dot."""
    lines = []
    while filler > 0:
        chunk = min(filler, 76)
        lines.append("x" * chunk)
        filler -= chunk + 2
    return ("".join(f"{ln}\r\n" for ln in lines) + ".\r\n").encode()


class ClientSession:
    """One simulated client connection: sends the next command when a reply arrives."""

    __slots__ = ("fleet", "env", "latency", "plan", "n", "addr", "smtp", "sid", "step", "msg_index",
                 "rcpt_index", "t_data_end", "t_start", "done", "on_done", "latencies", "replies", "helo",
                 "cpu_proc", "cpu_cost", "closed", "secured")

    def __init__(self, fleet: ClientFleet, plan: SessionPlan, n: int, spec: WorkloadSpec,
                 on_done: Any) -> None:
        self.fleet = fleet
        self.env = fleet.env
        self.latency = fleet.net_latency
        self.plan = plan
        self.n = n
        self.addr = spec.client_addr
        self.helo = spec.helo
        self.smtp: Any = None
        self.sid = 0
        self.step = "banner"
        self.msg_index = 0
        self.rcpt_index = 0
        self.t_data_end = 0.0
        self.t_start = self.env.now
        self.done = False
        self.closed = False
        self.secured = False
        self.on_done = on_done
        self.replies: list[str] = []
        self.cpu_proc = fleet.cpu_proc
        self.cpu_cost = spec.client_cpu_s

    # ---- called by the smtp role -----------------------------------------------------------

    def attach(self, smtp: Any, sid: int) -> None:
        self.smtp = smtp
        self.sid = sid

    def server_reply(self, text: str) -> None:
        """The server wrote a reply; it reaches us one network latency later."""
        call_later(self.env, self.latency, self._on_reply, text)

    def server_close(self, _reason: str) -> None:
        call_later(self.env, self.latency, self._on_close, None)

    # ---- client logic ------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self.closed:
            return
        smtp, sid = self.smtp, self.sid
        call_later(self.env, self.latency, lambda _t: smtp.client_data(sid, data))

    def _on_close(self, _t: Any) -> None:
        self.closed = True
        self._finish()

    def _on_reply(self, t: Any) -> None:
        text = t.arg
        self.replies.append(text)
        if self.cpu_proc is not None and self.cpu_cost:
            self.cpu_proc.post(self._react, text, key="client")
        else:
            self._react(text)

    def _react(self, text: str) -> None:
        if self.cpu_proc is not None and self.cpu_cost:
            self.cpu_proc.charge(self.cpu_cost)
        now = self.env.now
        code = text[:3]
        step = self.step
        plan = self.plan
        if step == "banner":
            if plan.behaviour == "protocol_errors":
                self.step = "err1"
                self._write(f"MAIL FROM:<{plan.messages[0].sender}>\r\n".encode())  # 503 before EHLO
                return
            self.step = "ehlo"
            self._write(f"EHLO {self.helo}\r\n".encode())
        elif step == "err1":
            self.step = "err2"
            self._write(b"FOO bar\r\n")  # 500 Command unrecognized
        elif step == "err2":
            self.step = "ehlo"
            self._write(f"EHLO {self.helo}\r\n".encode())
        elif step in ("ehlo", "next"):
            if step == "ehlo" and not code.startswith("2"):
                return self._quit()
            if step == "ehlo" and plan.behaviour == "early_quit":
                return self._quit()
            if step == "ehlo" and plan.tls and not self.secured:
                self.step = "starttls"
                self._write(b"STARTTLS\r\n")
                return
            if self.msg_index >= len(plan.messages):
                return self._quit()
            self._mail()
        elif step == "mail":
            if code != "250":
                return self._quit()
            self._next_rcpt()
        elif step == "rcpt":
            self.rcpt_index += 1
            if self.rcpt_index < len(plan.messages[self.msg_index].rcpts):
                self._next_rcpt()
            else:
                self.step = "data"
                self._write(b"DATA\r\n")
        elif step == "data":
            if code != "354":
                self.msg_index += 1
                self.step = "next"
                self._write(b"RSET\r\n")
                return
            self.step = "eom"
            body = body_lines(plan.messages[self.msg_index], self.n)
            faults = self.fleet.faults.armed
            if faults is not None and faults.active("client_vanish"):
                # half the body, then the connection drops: nothing may be delivered
                faults.vanished += 1
                self._write(body[: len(body) // 2])
                self._vanish()
                return
            self.t_data_end = now  # measured when "." leaves
            self._write(body)
        elif step == "eom":
            self.fleet.log.latency.append(now - self.t_data_end)
            self.msg_index += 1
            self.step = "next"
            self._react_next()
        elif step == "starttls":
            if code != "220":
                return self._quit()
            self.step = "handshake"  # the server side drives it; tls_ready() ends it
        elif step == "quit":
            pass

    def tls_ready(self) -> None:
        """The TLS handshake completed (server side IO_TLSREADY): EHLO again."""
        call_later(self.env, self.latency, self._after_tls)

    def _after_tls(self, _t: Any) -> None:
        self.secured = True
        self.step = "ehlo"
        self._write(f"EHLO {self.helo}\r\n".encode())

    def _vanish(self) -> None:
        smtp, sid = self.smtp, self.sid
        self.closed = True
        call_later(self.env, 2 * self.latency, lambda _t: smtp.client_gone(sid))
        self._finish()

    def _react_next(self) -> None:
        if self.msg_index >= len(self.plan.messages):
            self._quit()
        else:
            self._mail()

    def _mail(self) -> None:
        self.step, self.rcpt_index = "mail", 0
        self._write(f"MAIL FROM:<{self.plan.messages[self.msg_index].sender}>\r\n".encode())

    def _next_rcpt(self) -> None:
        self.step = "rcpt"
        rcpt = self.plan.messages[self.msg_index].rcpts[self.rcpt_index]
        self._write(f"RCPT TO:<{rcpt}>\r\n".encode())

    def _quit(self) -> None:
        self.step = "quit"
        self._write(b"QUIT\r\n")

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            self.fleet.log.sessions.append(self.env.now - self.t_start)
            self.on_done(self)


class ClientFleet:
    """Starts sessions (open loop: at their arrival times, each arrival scheduling the
    next; closed loop: ``concurrency`` clients, each reconnecting when its session ends,
    until the workload's duration) and counts the ones still open."""

    def __init__(self, env: simpy.Environment, spec: WorkloadSpec, seed: int, *, server: Server,
                 world: WorldParams, log: ClientLog, faults: FaultPort, cpu_proc: Process | None = None) -> None:
        """``server``: what sessions connect to; ``log``: where latencies and session times go;
        ``cpu_proc``: the load generator's process on the daemon's cores, if it has one."""
        self.env = env
        self.server = server
        self.net_latency = world.net_latency_s  # loopback TCP, one way
        self.log = log
        self.faults = faults
        self.cpu_proc = cpu_proc
        self.spec = spec
        self.planner = SessionPlanner(spec, seed)
        self.open = 0
        self.finished = 0
        self.started = 0
        self.refused = 0
        self.arrivals_over = False
        self.closed_loop = spec.arrival.process == "closed"
        self.waiting: deque[SessionPlan] = deque()
        self.t0 = 0.0

    def start(self, t0: float) -> None:
        env = self.env
        self.t0 = t0
        if self.closed_loop:
            for _ in range(int(min(self.planner.limit, self.spec.arrival.concurrency))):
                call_later(env, t0 - env.now, self._launch, self.planner.draw(0.0))
            return
        self._schedule_next()

    def _schedule_next(self) -> None:
        t = self.planner.next_time()
        if t is None:
            self.arrivals_over = True
            return
        env = self.env
        call_later(env, self.t0 + t - env.now, self._arrive, t)

    def _arrive(self, timer: Any) -> None:
        plan = self.planner.draw(timer.arg)
        self._schedule_next()
        self._launch_plan(plan)

    def _launch(self, timer: Any) -> None:
        self._launch_plan(timer.arg)

    def _launch_plan(self, plan: SessionPlan) -> None:
        cap = self.spec.arrival.max_open
        if cap and self.open >= cap and not self.closed_loop:
            self.waiting.append(plan)  # the client waits for one of its connections to end
            return
        self.started += 1
        if self.server.down:
            # the daemon is not running: connection refused (the client will try elsewhere)
            self.log.refused += 1
            self.refused += 1
            if self.closed_loop:
                self._reconnect()
            return
        self.open += 1
        c = ClientSession(self, plan, self.started, self.spec, self._session_done)
        smtp = self.server.listener()
        call_later(self.env, self.net_latency, lambda _t: smtp.connect(c, plan.tls))

    def _session_done(self, c: ClientSession) -> None:
        self.open -= 1
        self.finished += 1
        if self.closed_loop:
            self._reconnect()
        elif self.waiting:
            self._launch_plan(self.waiting.popleft())

    def _reconnect(self) -> None:
        env = self.env
        if env.now - self.t0 < self.spec.duration_s and self.planner.drawn < self.planner.limit:
            call_later(env, 0.0, self._launch, self.planner.draw(env.now - self.t0))
        else:
            self.arrivals_over = self.open == 0 or self.arrivals_over

    @property
    def idle(self) -> bool:
        if self.closed_loop:
            return self.open == 0 and (self.env.now - self.t0 >= self.spec.duration_s
                                       or self.planner.drawn >= self.planner.limit)
        return self.arrivals_over and self.open == 0 and not self.waiting
