"""smtpd_sim.real.daemon: the embedded configuration and the life cycle's guards (no root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from smtpd_sim.real.commands import RealDaemonError
from smtpd_sim.real.daemon import SMTPD_CONF, RealDaemon

DATA = Path(__file__).resolve().parents[1] / "data" / "real-traces"


def _directives(text: str) -> list[str]:
    return [" ".join(ln.split()) for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def test_embedded_config_is_the_research_config() -> None:
    assert _directives(SMTPD_CONF) == _directives((DATA / "smtpd.conf").read_text())


def test_daemon_requires_context_manager(tmp_path: Path) -> None:
    with pytest.raises(RealDaemonError, match="context manager"):
        RealDaemon(tmp_path).start()
