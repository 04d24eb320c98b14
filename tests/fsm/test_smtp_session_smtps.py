"""The 6.8 SMTPS listener (F_SMTPS): the handshake first, the banner after it, the session
secured (``smtp_proceed_connected()`` → ``smtp_cert_init()``; ``smtp_cert_verify()``)."""

from __future__ import annotations

import pytest

from smtpd_sim.fsm.smtp_session import (
    SF_SECURE,
    Disconnect,
    Reply,
    SessionConfig,
    StartTls,
    TlsResult,
    new_session,
)


def test_smtps_handshakes_before_the_banner_and_is_secured() -> None:
    s = new_session(SessionConfig(smtps=True))
    assert s.start() == [StartTls()]  # no banner yet
    assert s.feed(b"EHLO early\r\n") == []  # not read while the handshake runs
    out = s.handle(TlsResult(True, "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", 128))
    assert out == [Reply("220 mx.local.test ESMTP OpenSMTPD")]
    assert s.flags & SF_SECURE and s.state == "STATE_CONNECTED"
    ehlo = s.feed(b"EHLO client\r\n")
    assert isinstance(ehlo[0], Reply) and "STARTTLS" not in ehlo[0].text


def test_smtps_handshake_failure_closes_without_a_banner() -> None:
    s = new_session(SessionConfig(smtps=True))
    s.start()
    assert s.handle(TlsResult(False)) == [Disconnect("io-error")]


def test_smtps_is_modelled_for_6_8_only() -> None:
    with pytest.raises(ValueError, match="6.8 only"):
        SessionConfig(variant="5.7.3", smtps=True)
