"""smtpd_sim.real.dns: the namespace's dnsmasq command line and its readiness check (no root)."""

from __future__ import annotations

import socket
from pathlib import Path

from smtpd_sim.real.dns import DnsServer, udp_listening
from smtpd_sim.real.netns import NetNamespace


def test_dnsmasq_answers_only_the_test_records(tmp_path: Path) -> None:
    d = DnsServer(NetNamespace("smtpdsim-test"), mx={"mx.test": [(10, "smtp.mx.test")]},
                  hosts={"smtp.mx.test": "127.0.0.1"}, log_path=tmp_path / "dns.log")
    cmd = d.command("dnsmasq")
    assert cmd[:4] == ["ip", "netns", "exec", "smtpdsim-test"] or cmd[1:4] == ["netns", "exec", "smtpdsim-test"]
    for opt in ("--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--listen-address=127.0.0.1",
                "--local=/test/", "--mx-host=mx.test,smtp.mx.test,10", "--host-record=smtp.mx.test,127.0.0.1"):
        assert opt in cmd, opt
    assert not any(o.startswith("--server") for o in cmd)  # no upstream: nothing leaves the namespace


def test_udp_listening_reads_this_process_namespace() -> None:
    import os

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert udp_listening(os.getpid(), port)
    assert not udp_listening(os.getpid(), port)
