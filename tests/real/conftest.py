"""Shared by the tests of smtpd_sim.real: whether the real daemon was asked for, a sink.

The tests marked ``real`` start the Debian OpenSMTPD 6.8.0p2 as root in a loopback-only
network namespace. They run only when asked for, with ``SMTPD_SIM_REAL=1`` or
``pytest -m real``; otherwise they are reported as skipped (never as passed). When asked
for, a missing prerequisite (root, ``ip``, the package) is a failure, not a skip.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

from smtpd_sim.real.sink import Sink


def _real_requested(config: pytest.Config) -> bool:
    if os.environ.get("SMTPD_SIM_REAL") == "1":
        return True
    expr = str(config.getoption("markexpr", "") or "")
    return re.search(r"(?<!not )\breal\b", expr) is not None


@pytest.fixture(scope="session")
def real_requested(request: pytest.FixtureRequest) -> None:
    """Skip (visibly) unless the real-daemon tests were explicitly requested."""
    if not _real_requested(request.config):
        pytest.skip("real-daemon test: run with SMTPD_SIM_REAL=1 or pytest -m real (root, Debian)")


@pytest.fixture
def sink() -> Iterator[Sink]:
    """The relay sink on a free loopback port (no root needed)."""
    s = Sink(port=0)
    s.start()
    try:
        yield s
    finally:
        s.stop()
