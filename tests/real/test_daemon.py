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


def test_workdir_lets_the_unprivileged_lka_read_the_sinks_ca(tmp_path: Path) -> None:
    """6.8 cert_do_verify() opens the `ca` file in lka as _smtpd: every directory down to
    it is traversable by others and the file readable (pytest's tmp dirs are 0700), while
    the keys stay private; the sinks' chains are 1 and 2 long (the STARTTLS scenarios)."""
    import stat

    from cryptography import x509

    from smtpd_sim.real.daemon import TLS_SINK_HOSTS

    work = tmp_path / "w"
    d = RealDaemon(work)
    d._prepare_workdir()
    ca = work / "certs" / "sinks" / "ca.pem"
    for p in (tmp_path, work, work / "certs", work / "certs" / "sinks"):
        assert p.stat().st_mode & stat.S_IXOTH, p
    assert ca.stat().st_mode & stat.S_IROTH
    assert not (work / "certs" / "key.pem").stat().st_mode & 0o077
    for name, host in TLS_SINK_HOSTS.items():
        chain = x509.load_pem_x509_certificates((work / "certs" / "sinks" / f"{host}.chain.pem").read_bytes())
        assert len(chain) == {"tls1": 1, "tls2": 2}[name]
        assert d.sinks[name].tls is not None
    assert 'ca sinkca cert "certs/sinks/ca.pem"' in SMTPD_CONF
