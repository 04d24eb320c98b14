"""smtpd_sim.real.netns: the namespace has loopback only (root; run on request)."""

from __future__ import annotations

import os
import subprocess

import pytest

from smtpd_sim.real import netns
from smtpd_sim.real.install import check_prerequisites
from smtpd_sim.real.netns import NetNamespace


@pytest.mark.real
def test_real_netns_is_loopback_only(real_requested: None) -> None:
    check_prerequisites()
    with NetNamespace(f"{netns.NETNS_PREFIX}t{os.getpid()}") as ns:
        cp = subprocess.run(["ip", "-n", ns.name, "-o", "addr"], capture_output=True, text=True, timeout=10)
        assert all(" lo " in ln for ln in cp.stdout.splitlines())
        with pytest.raises(OSError):  # no route to anything but loopback
            ns.connect("192.0.2.1", 25, 1.0).close()
    assert not ns.path.exists()
