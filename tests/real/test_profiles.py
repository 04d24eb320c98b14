"""smtpd_sim.real.profiles: the two daemons the harness runs (no root, nothing started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from smtpd_sim.real.commands import RealDaemonError
from smtpd_sim.real.daemon import (
    DEBIAN_68,
    PKI_NAME,
    SINK_PORT,
    SMTP_PORT,
    SMTPD_CONF,
    SPOOL,
    TLS_PORT,
)
from smtpd_sim.real.profiles import source_build_542


def test_debian_profile_is_the_6_8_research_setup() -> None:
    assert DEBIAN_68.conf == SMTPD_CONF and DEBIAN_68.spool == SPOOL
    assert DEBIAN_68.version == "6.8.0p2" and DEBIAN_68.processes == 7
    assert DEBIAN_68.parse_options() == {"parent_traced": False, "profile_ms": False}
    assert "action \"relay\" relay host smtp+notls://127.0.0.1:2626" in DEBIAN_68.conf


def _fake_prefix(tmp_path: Path) -> Path:
    (tmp_path / "sbin").mkdir()
    (tmp_path / "etc").mkdir()
    exe = tmp_path / "sbin" / "smtpd"
    exe.write_text("#!/bin/sh\necho 'version: OpenSMTPD 5.4.2p1' >&2\nexit 1\n")
    exe.chmod(0o755)
    return tmp_path


def test_source_build_profile_speaks_5_4(tmp_path: Path) -> None:
    p = source_build_542(_fake_prefix(tmp_path), tmp_path / "spool")
    assert p.version == "5.4.2p1" and p.processes == 9
    assert p.parse_options() == {"parent_traced": True, "profile_ms": True}
    assert p.spool == (tmp_path / "spool").resolve()
    assert p.smtpd() == str(tmp_path / "sbin" / "smtpd") and p.smtpctl() is None
    conf = p.conf
    assert f"listen on 127.0.0.1 port {SMTP_PORT} hostname mx.local.test\n" in conf
    assert f"port {TLS_PORT} hostname mx.local.test tls pki mx.local.test" in conf
    assert 'accept from any for domain "local.test" deliver to maildir' in conf
    assert f'relay via "smtp://127.0.0.1:{SINK_PORT}"' in conf
    assert "dhparams" in conf and p.dhparams
    assert p.mailname == (tmp_path / "etc" / "mailname").resolve()
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "dh.pem").write_text("kept\n")  # an existing group is not rewritten
    p.prepare(tmp_path / "certs")
    assert p.mailname.read_text() == PKI_NAME + "\n"
    assert (tmp_path / "certs" / "dh.pem").read_text() == "kept\n"
    assert [ln.split(":")[1].strip() for ln in p.ready_lines] == ["lka <- parent", "mfa <- parent", "smtp <- parent"]


def test_source_build_profile_checks_what_it_finds(tmp_path: Path) -> None:
    with pytest.raises(RealDaemonError, match="no smtpd there"):
        source_build_542(tmp_path, tmp_path)
    p = source_build_542(_fake_prefix(tmp_path), tmp_path)
    assert p.installed_version() == "5.4.2p1"
    with pytest.raises(RealDaemonError, match="smtpctl not found"):
        p.ensure()
    (tmp_path / "sbin" / "smtpctl").write_text("")
    assert p.ensure() == "5.4.2p1"
