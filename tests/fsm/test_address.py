"""Address and host-name checks of the SMTP session (``model/smtpd_sim/fsm/address.py``):
``to.c:text_to_mailaddr()``, ``util.c:valid_localpart()`` / ``valid_domainpart()`` per
release, ``base64_decode()`` and ``valid_smtp_response()``."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from smtpd_sim.fsm.address import (
    b64_pton,
    text_to_mailaddr,
    valid_domainpart,
    valid_localpart,
    valid_smtp_response,
)


def test_address_checks() -> None:
    assert valid_localpart("a.b+c=d") and not valid_localpart("a..b") and not valid_localpart(".a")
    assert not valid_localpart("a b") and not valid_localpart("") and not valid_localpart("é")
    for d in ("local.test", "a_b.test", "x-.test", "[127.0.0.1]", "[IPv6:::1]", "[::1]"):
        assert valid_domainpart(d, "6.8"), d
    for d in ("", "a..b", "-a.test", "a.test.", "a b", "[127.0.0.1", "[1.2.3.4]x", "x" * 64 + ".test",
              ("d" * 60 + ".") * 5 + "test", "é.test"):
        assert not valid_domainpart(d, "6.8"), d
    assert valid_domainpart("a\\045b", "6.8") and not valid_domainpart("a\\046b", "6.8")
    assert not valid_domainpart("x-.test", "5.4.2") and not valid_domainpart("a_b", "5.4.2")
    assert valid_domainpart("", "5.7.3") and not valid_domainpart("-a", "5.7.3")


def test_text_to_mailaddr_splits_at_the_last_at() -> None:
    assert text_to_mailaddr("alice@local.test") == ("alice", "local.test")
    assert text_to_mailaddr('"a@b"@local.test') == ('"a@b"', "local.test")
    assert text_to_mailaddr("postmaster") == ("postmaster", "")
    assert text_to_mailaddr("") == ("", "")
    assert text_to_mailaddr("u" * 255 + "@d") == ("u" * 255, "d")
    assert text_to_mailaddr("u" * 256 + "@d") is None  # SMTPD_MAXLOCALPARTSIZE
    assert text_to_mailaddr("u@" + "d" * 256) is None  # SMTPD_MAXDOMAINPARTSIZE
    assert text_to_mailaddr("x" * 2048) is None  # LINE_MAX


def test_b64_pton_strict_padding_and_size() -> None:
    assert b64_pton("AGFsaWNlAHNlY3JldA==", 1023) == b"\0alice\0secret"
    assert b64_pton(" YW Jj\n", 10) == b"abc"  # whitespace skipped anywhere
    assert b64_pton("YWJj", 2) is None  # more than targsize bytes
    assert b64_pton("YWJjZA=", 10) is None  # one '=' where two are needed
    assert b64_pton("YWJjZA==x", 10) is None  # garbage after the padding
    assert b64_pton("YW*j", 10) is None  # not a base64 character
    assert b64_pton("YWJjZ", 10) is None  # a partial quantum
    assert b64_pton("", 10) == b""


@given(st.binary(max_size=60))
def test_b64_pton_decodes_what_base64_encodes(data: bytes) -> None:
    assert b64_pton(base64.b64encode(data).decode(), 64) == data


def test_valid_smtp_response() -> None:
    assert valid_smtp_response("550 no") and valid_smtp_response("421 x y")
    for s in ("550", "550-no", "650 no", "1xx no", "55 no", "550 a\nb", "550 a\rb", "5٣0 no"):
        assert not valid_smtp_response(s), s
