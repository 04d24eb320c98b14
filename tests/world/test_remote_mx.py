"""The simulated remote MX: replies, faults, and the Nagle + delayed-ACK stall.

Timings: a reply reaches the client 2 × remote latency + the MX's reply time after the
client's write; the final "." written apart from the body is held back by Nagle until the
body's ACK, which the MX delays by ``DELAYED_ACK_S`` (real-daemon.md §9).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from smtpd_sim.spec.world import WorldParams
from smtpd_sim.world.remote_mx import DELAYED_ACK_S, RemoteMx

LAT, REPLY = 100e-6, 50e-6
RTT = 2 * LAT + REPLY


class _Env:
    now = 0.0


class FakeProc:
    """What RemoteConnection uses of a Process: ``timer()`` and ``env.now``."""

    def __init__(self) -> None:
        self.env = _Env()
        self.timers: list[tuple[float, Any]] = []

    def timer(self, delay: float, fn: Any, arg: Any = None, key: str = "timer") -> None:
        self.timers.append((delay, arg))

    def take(self) -> list[tuple[float, Any]]:
        out, self.timers = self.timers, []
        return out


@dataclass
class _Fault:
    code: int = 550
    delay_s: float = 0.0


class FakeFaults:
    """``smtpd_sim.sim.faults.Faults.active()`` with fixed answers."""

    def __init__(self, **active: _Fault) -> None:
        self.active_faults = active

    def active(self, kind: str, **match: str) -> _Fault | None:
        key = kind if not match else f"{kind}:{match.get('phase')}"
        return self.active_faults.get(key)


def _mx() -> RemoteMx:
    return RemoteMx(WorldParams(remote_latency_s=LAT, remote_reply_s=REPLY))


def _open(mx: RemoteMx, proc: FakeProc, addr: str | None = None):
    lines: list[str] = []
    conn = mx.connect(proc, lines.append, addr=addr)
    return conn


def test_dialogue_replies_after_one_round_trip() -> None:
    mx, proc = _mx(), FakeProc()
    conn = _open(mx, proc)
    assert proc.take() == [(pytest.approx(RTT), "220 mx.relay.test ESMTP")]
    conn.send("EHLO mx.local.test")
    assert [a for _d, a in proc.take()] == ["250-mx.relay.test", "250-PIPELINING", "250 8BITMIME"]
    conn.send("MAIL FROM:<a@local.test>")
    conn.send("RCPT TO:<b@relay.test>")
    conn.send("DATA")
    assert [(round(d, 9), a[:3]) for d, a in proc.take()] == [(round(RTT, 9), "250")] * 2 + [(round(RTT, 9), "354")]
    conn.send_body(100, 1, [1])
    conn.send(".")
    conn.send("QUIT")
    assert [a[:3] for _d, a in proc.take()] == ["250", "221"]
    assert mx.open == 0 and mx.max_open == 1


def test_final_dot_after_the_body_waits_for_the_delayed_ack() -> None:
    """Body and "." are two writes: the "." leaves when the body's ACK comes back
    (2 × latency + the delayed-ACK timer), then takes its own round trip."""
    mx, proc = _mx(), FakeProc()
    delivered: list[list[int]] = []
    mx.on_delivered = delivered.append
    conn = _open(mx, proc)
    for line in ("EHLO h", "MAIL FROM:<a@x>", "RCPT TO:<b@y>", "DATA"):
        conn.send(line)
    proc.take()
    proc.env.now = 1.0
    conn.send_body(1024, 7, [71, 72])
    conn.send(".")
    ((delay, line),) = proc.take()
    assert line.startswith("250")
    assert delay == pytest.approx(2 * LAT + DELAYED_ACK_S + RTT)
    assert mx.stalls == 1
    assert mx.accepted == [("a@x", ["b@y"], 1024)]
    assert delivered == [[71, 72]]
    # one message per ~40.4 ms on a connection: the ≈23 msg/s of real-daemon.md §9 once
    # the daemon's own per-message work is added
    assert 0.040 < delay < 0.0435


def test_dot_written_after_the_ack_is_not_held() -> None:
    mx, proc = _mx(), FakeProc()
    conn = _open(mx, proc)
    for line in ("EHLO h", "MAIL FROM:<a@x>", "RCPT TO:<b@y>", "DATA"):
        conn.send(line)
    conn.send_body(10, 1, [1])
    proc.take()
    proc.env.now = 1.0  # long after the ACK
    conn.send(".")
    assert proc.take()[0][0] == pytest.approx(RTT)
    assert mx.stalls == 0


def test_delayed_ack_can_be_switched_off() -> None:
    mx, proc = _mx(), FakeProc()
    mx.delayed_ack_s = 0.0
    conn = _open(mx, proc)
    for line in ("EHLO h", "MAIL FROM:<a@x>", "RCPT TO:<b@y>", "DATA"):
        conn.send(line)
    proc.take()
    conn.send_body(10, 1, [1])
    conn.send(".")
    assert proc.take()[0][0] == pytest.approx(2 * LAT + RTT)


def test_down_refuses_every_connection_and_down_addrs_only_some() -> None:
    mx, proc = _mx(), FakeProc()
    mx.down = True
    assert mx.connect(proc, print) is None
    mx.down = False
    mx.down_addrs = {"192.0.2.1"}
    assert mx.connect(proc, print, addr="192.0.2.1") is None
    assert mx.connect(proc, print, addr="192.0.2.2") is not None
    assert mx.refused == 2 and mx.connections == 1 and mx.by_addr == {"192.0.2.2": 1}


@pytest.mark.parametrize("phase,command", [("mail", "MAIL FROM:<a@x>"), ("rcpt", "RCPT TO:<b@y>"),
                                           ("data", "DATA")])
def test_reply_fault_at_a_phase(phase: str, command: str) -> None:
    mx, proc = _mx(), FakeProc()
    mx.faults.armed = FakeFaults(**{f"mx_reply:{phase}": _Fault(code=550)})
    conn = _open(mx, proc)
    conn.send("EHLO h")
    proc.take()
    conn.send(command)
    assert proc.take()[0][1] == f"550 5.0.0 simulated failure at {phase}"


def test_reply_fault_at_connect_is_the_banner_and_at_eom_the_final_reply() -> None:
    mx, proc = _mx(), FakeProc()
    mx.faults.armed = FakeFaults(**{"mx_reply:connect": _Fault(code=421)})
    _open(mx, proc)
    assert proc.take()[0][1] == "421 4.0.0 simulated failure at connect"
    mx.faults.armed = FakeFaults(**{"mx_reply:eom": _Fault(code=452)})
    conn = _open(mx, proc)
    for line in ("EHLO h", "MAIL FROM:<a@x>", "RCPT TO:<b@y>", "DATA"):
        conn.send(line)
    proc.take()
    conn.send_body(10, 1, [1])
    conn.send(".")
    assert proc.take()[0][1].startswith("452")
    assert mx.accepted == []


def test_slow_mx_adds_its_delay_to_every_reply() -> None:
    mx, proc = _mx(), FakeProc()
    mx.faults.armed = FakeFaults(mx_slow=_Fault(delay_s=2.0))
    conn = _open(mx, proc)
    conn.send("MAIL FROM:<a@x>")
    assert [d for d, _ in proc.take()] == [pytest.approx(RTT + 2.0)] * 2


def test_closed_connection_stays_silent() -> None:
    mx, proc = _mx(), FakeProc()
    conn = _open(mx, proc)
    proc.take()
    conn.close()
    conn.send("MAIL FROM:<a@x>")
    assert proc.take() == []
    assert mx.open == 0
    conn.close()
    assert mx.open == 0


def test_each_server_offers_its_profile_by_port_or_address() -> None:
    """The real harness's sinks differ by port (smtpd_sim.real.daemon.SINKS): DSN on one,
    STARTTLS with a chain of 1 or 2 on others; an MX of its own address. What is not
    listed offers the defaults."""
    from smtpd_sim.world.remote_mx import Profile

    mx, proc = _mx(), FakeProc()
    mx.profiles[("", 2627)] = Profile(dsn=True)
    mx.profiles[("", 2628)] = Profile(starttls=True, cert_chain=1)
    mx.profiles[("192.0.2.25", 0)] = Profile(starttls=True, cert_chain=3)

    def ehlo(addr: str, port: int) -> list[str]:
        conn = mx.connect(proc, lambda _l: None, addr=addr, port=port)
        proc.take()
        conn.send("EHLO mx.local.test")
        return [a for _d, a in proc.take()]

    assert "250-DSN" in ehlo("127.0.0.1", 2627) and "250-STARTTLS" not in ehlo("127.0.0.1", 2627)
    assert "250-STARTTLS" in ehlo("127.0.0.1", 2628) and "250-DSN" not in ehlo("127.0.0.1", 2628)
    assert mx.profile("127.0.0.1", 2628).cert_chain == 1
    assert mx.profile("192.0.2.25", 25).cert_chain == 3
    assert ehlo("127.0.0.1", 2626) == ["250-mx.relay.test", "250-PIPELINING", "250 8BITMIME"]


def test_accepted_messages_keep_their_mail_and_rcpt_parameters() -> None:
    mx, proc = _mx(), FakeProc()
    conn = mx.connect(proc, lambda _l: None)
    conn.send("MAIL FROM:<bob@local.test> RET=HDRS ENVID=x")
    conn.send("RCPT TO:<user@dsn.test> NOTIFY=SUCCESS ORCPT=rfc822;user@dsn.test")
    conn.send("DATA")
    conn.send_body(10, 1, [1])
    conn.send(".")
    assert mx.accepted_params == [["RET=HDRS", "ENVID=x", "NOTIFY=SUCCESS", "ORCPT=rfc822;user@dsn.test"]]
