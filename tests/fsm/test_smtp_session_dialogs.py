"""Replay the SMTP dialogs recorded against the real OpenSMTPD 6.8.0p2 through the FSM.

``tests/data/dialogs/`` holds copies of ``research/real-traces/traces/*.dialog.json``
(one file per scenario, ``sessions[].timeline`` in write order) and, if present, JSON
Lines files in the ``tools/dialogs.py`` format (``steps[].send`` is a line, or a list of
lines sent in ONE write).  Every client write is fed as one :meth:`SmtpSession.feed`, so
pipelined writes reproduce; the requests are answered by :class:`FakeBackend` (the
research site: local.test users alice/bob/carol/dave, relay.test relayed, everything
else refused).  Every reply must equal the real one, except the 8-hex message id, which
must be the one the queue handed out.  The real STARTTLS handshakes failed (OpenSSL 3,
real-daemon.md §6): the dialog's ``<client error ...>`` entry is delivered as
``TlsResult(ok=False)``, after which the session must be closed without a reply.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from testkit import load

from smtpd_sim.fsm.smtp_session import (
    CommitMessage,
    Disconnect,
    MessageCreated,
    Reply,
    SessionConfig,
    SmtpSession,
    TlsResult,
    new_session,
)

HERE = Path(__file__).parent
DIALOGS = HERE.parent / "data" / "dialogs"



FB = load("smtpd_sim_tests_fake_backend", HERE / "fake_backend.py")

TLS_FAIL = object()  # the client saw the TLS alert: deliver TlsResult(ok=False)
CLIENT_GONE = object()  # the client closed the connection (quit-mid-data)
_MSGID_RE = re.compile(r"^(250 2\.0\.0:? )([0-9a-f]{8})( Message accepted for delivery)$")
_DATA_RE = re.compile(r"^<(\d+) data lines \+ \.>$")


@dataclass
class Script:
    name: str
    tls_listener: bool
    writes: list[Any]  # bytes (one write), TLS_FAIL or CLIENT_GONE
    replies: list[str]  # greeting first
    closed_by_server: bool | None
    notes: list[str] = field(default_factory=list)


def _stuffed(lines: list[str]) -> bytes:
    """One write of several lines; data lines starting with "." are dot-stuffed as
    ``smtpclient.py:data_body()`` did (the final "." is the terminator)."""
    out = []
    for i, ln in enumerate(lines):
        if ln.startswith(".") and not (ln == "." and i == len(lines) - 1):
            ln = "." + ln
        out.append(ln.encode() + b"\r\n")
    return b"".join(out)


def _from_timeline(name: str, sess: dict[str, Any]) -> Script:
    """``tools/scenarios.py`` format: ``client`` lines + ``timeline`` (one C entry per write)."""
    client = list(sess["client"])
    ci = 0
    writes: list[Any] = []
    for ev in sess["timeline"]:
        if ev["dir"] != "C":
            continue
        line = ev["line"]
        m = _DATA_RE.match(line)
        if m:
            n = int(m.group(1)) + 1
            writes.append(_stuffed(client[ci:ci + n]))
            ci += n
        elif line.startswith("<client error"):
            writes.append(TLS_FAIL)
        else:
            assert client[ci] == line, (name, ci, line)
            writes.append(line.encode() + b"\r\n")
            ci += 1
    assert ci == len(client), name
    replies = list(sess["replies"])
    tls = any("250-STARTTLS" in r for r in replies)
    # the traces do not store closed_by_server: they all end with QUIT or the TLS failure
    return Script(name, tls, writes, replies, True)


def _from_steps(rec: dict[str, Any]) -> Script:
    """``tools/dialogs.py`` format (JSON Lines): ``steps[].send`` str / list / None."""
    writes: list[Any] = []
    steps = rec["steps"]
    for i, st in enumerate(steps):
        send = st["send"]
        if send is None:
            continue
        if isinstance(send, str):
            writes.append(send.encode() + b"\r\n")
        else:
            writes.append(_stuffed(list(send)))
        if st["reply"] is None and i == len(steps) - 1:
            writes.append(CLIENT_GONE)  # PARTIAL: the client went away
    replies = [r for r in rec["replies"] if r not in ("<EOF>", "<TIMEOUT>")]
    return Script(rec["name"], rec.get("port") == 2587, writes, replies, rec.get("closed_by_server"))


def load_scripts() -> list[Script]:
    scripts: list[Script] = []
    for p in sorted(DIALOGS.glob("*.dialog.json")):
        d = json.loads(p.read_text())
        for k, sess in enumerate(d["sessions"]):
            scripts.append(_from_timeline(d["name"] if k == 0 else f"{d['name']}#{k}", sess))
    for p in sorted(DIALOGS.glob("*.jsonl")):
        for line in p.read_text().splitlines():
            if line.strip():
                scripts.append(_from_steps(json.loads(line)))
    return scripts


SCRIPTS = load_scripts()


def replay(script: Script, config: SessionConfig | None = None) -> tuple[list[str], SmtpSession, Any]:
    """Drive one session; returns (reply texts with msgids checked and masked, session, backend)."""
    cfg = config or SessionConfig(variant="6.8", hostname="mx.local.test", tls=script.tls_listener)
    be = FB.FakeBackend(answer_tls=False)
    s = new_session(cfg, client_addr="127.0.0.1", rdns="localhost")
    acts = be.drive(s, s.start())
    for w in script.writes:
        if w is TLS_FAIL:
            assert s.waiting and s.waiting_for == "TlsResult", script.name
            acts += be.drive(s, s.handle(TlsResult(False)))
        elif w is CLIENT_GONE:
            acts += be.drive(s, s.close())
        else:
            if s.closed:
                break
            acts += be.drive(s, s.feed(w))
    assert sum(isinstance(a, Disconnect) for a in acts) <= 1
    out: list[str] = []
    accepted = iter(ev.msgid for ev in be.events if isinstance(ev, MessageCreated) and ev.ok)
    committed = [a.msgid for a in acts if isinstance(a, CommitMessage)]
    for a in acts:
        if not isinstance(a, Reply):
            continue
        m = _MSGID_RE.match(a.text)
        if m:
            msgid = int(m.group(2), 16)
            assert msgid in committed, (script.name, a.text)
            assert msgid == next(accepted), (script.name, a.text)
            out.append(m.group(1) + "XXXXXXXX" + m.group(3))
        else:
            out.append(a.text)
    return out, s, be


def _mask(texts: list[str]) -> list[str]:
    return [_MSGID_RE.sub(r"\1XXXXXXXX\3", t) for t in texts]


def test_dialogs_present() -> None:
    assert len(SCRIPTS) >= 10, "copy research/real-traces/traces/*.dialog.json to tests/data/dialogs/"


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_real_dialog_reply_for_reply(script: Script) -> None:
    got, s, _be = replay(script)
    want = _mask(script.replies)
    for i, (g, w) in enumerate(zip(got, want, strict=False)):
        assert g == w, f"{script.name}: reply #{i} differs"
    assert len(got) == len(want), f"{script.name}: {len(got)} replies, the real daemon gave {len(want)}"
    if script.closed_by_server is not None:
        assert s.closed == script.closed_by_server, script.name


@pytest.mark.parametrize("script", [s for s in SCRIPTS if s.name.startswith("starttls")],
                         ids=lambda s: s.name)
def test_starttls_dialogs_end_in_a_silent_disconnect(script: Script) -> None:
    cfg = SessionConfig(tls=True)
    be = FB.FakeBackend(answer_tls=False)
    s = new_session(cfg)
    be.drive(s, s.start())
    acts: list[Any] = []
    for w in script.writes:
        if w is TLS_FAIL:
            acts = s.handle(TlsResult(False))
        else:
            be.drive(s, s.feed(w))
    assert acts and isinstance(acts[-1], Disconnect)
    assert not any(isinstance(a, Reply) for a in acts)
    assert s.closed and s.feed(b"EHLO x\r\n") == []


@pytest.mark.parametrize("script", [s for s in SCRIPTS if any("Message accepted" in r for r in s.replies)],
                         ids=lambda s: s.name)
def test_accepted_messages_commit_what_was_sent(script: Script) -> None:
    """The queue gets one CommitMessage per accepted message, its body the Received:
    header plus the client's lines (dot-unstuffed, CRLF -> LF), size = len(body)."""
    cfg = SessionConfig(tls=script.tls_listener, keep_body=True)
    _got, _s, be = replay(script, cfg)
    assert be.committed and len(be.committed) == len(be.bodies)
    for msgid in be.committed:
        body = be.bodies[msgid]
        assert body.startswith(b"Received: from client.local.test (localhost [127.0.0.1])\n\tby mx.local.test"
                               b" (OpenSMTPD) with ESMTP id " + f"{msgid:08x}".encode())
        assert b"\r" not in body and body.endswith(b"\n")
        assert b"\nSubject: " in body


def test_jsonl_format_replays(tmp_path: Path) -> None:
    """The ``tools/dialogs.py`` JSON Lines format (the held-out conformance set): a
    pipelined write is one feed, a body step is dot-stuffed, <EOF> means closed."""
    recs = [
        {"name": "pipelined-data-body", "port": 2525, "closed_by_server": True,
         "replies": ["220 mx.local.test ESMTP OpenSMTPD", EHLO, "250 2.0.0 Ok", RCPT_OK,
                     "500 5.5.1 Invalid command: Pipelining not supported", "<EOF>"],
         "steps": [{"send": None, "reply": "220 mx.local.test ESMTP OpenSMTPD"},
                   {"send": "EHLO client.local.test", "reply": EHLO},
                   {"send": "MAIL FROM:<sender@local.test>", "reply": "250 2.0.0 Ok"},
                   {"send": "RCPT TO:<alice@local.test>", "reply": RCPT_OK},
                   {"send": ["DATA", "Subject: x", "", "body", "."],
                    "reply": ["500 5.5.1 Invalid command: Pipelining not supported", "<EOF>"]}]},
        {"name": "quit-mid-data", "port": 2525, "closed_by_server": False,
         "replies": ["220 mx.local.test ESMTP OpenSMTPD", EHLO, "250 2.0.0 Ok", RCPT_OK, GO_AHEAD],
         "steps": [{"send": None, "reply": "220 mx.local.test ESMTP OpenSMTPD"},
                   {"send": "EHLO client.local.test", "reply": EHLO},
                   {"send": "MAIL FROM:<sender@local.test>", "reply": "250 2.0.0 Ok"},
                   {"send": "RCPT TO:<alice@local.test>", "reply": RCPT_OK},
                   {"send": "DATA", "reply": GO_AHEAD},
                   {"send": ["Subject: cut", "", "partial"], "reply": None}]},
        {"name": "ehlo-basic-local", "port": 2525, "closed_by_server": True,
         "replies": ["220 mx.local.test ESMTP OpenSMTPD", EHLO, "250 2.0.0 Ok", RCPT_OK, GO_AHEAD,
                     "250 2.0.0 0badcafe Message accepted for delivery", "221 2.0.0 Bye", ],
         "steps": [{"send": None, "reply": "220 mx.local.test ESMTP OpenSMTPD"},
                   {"send": "EHLO client.local.test", "reply": EHLO},
                   {"send": "MAIL FROM:<sender@local.test>", "reply": "250 2.0.0 Ok"},
                   {"send": "RCPT TO:<alice@local.test>", "reply": RCPT_OK},
                   {"send": "DATA", "reply": GO_AHEAD},
                   {"send": ["From: <sender@local.test>", "Subject: conformance", "", "hello",
                             ".dot-stuffed line", "bye", "."],
                    "reply": "250 2.0.0 0badcafe Message accepted for delivery"},
                   {"send": "QUIT", "reply": "221 2.0.0 Bye"}]},
    ]
    outcome = {}
    for rec in recs:
        script = _from_steps(rec)
        got, s, be = replay(script)
        assert got == _mask(script.replies), rec["name"]
        assert s.closed  # closed by the server, or by close() when the client vanished
        outcome[rec["name"]] = (be.created, be.committed, be.rolled_back)
    created, committed, rolled_back = outcome["quit-mid-data"]
    assert len(created) == 1 and committed == [] and rolled_back == created  # client vanished in DATA
    created, committed, rolled_back = outcome["pipelined-data-body"]
    assert committed == [] and rolled_back == created
    created, committed, rolled_back = outcome["ehlo-basic-local"]
    assert committed == created and rolled_back == []


EHLO = ("250-mx.local.test Hello client.local.test [127.0.0.1], pleased to meet you\n250-8BITMIME\n"
        "250-ENHANCEDSTATUSCODES\n250-SIZE 36700160\n250-DSN\n250 HELP")
RCPT_OK = "250 2.1.5 Destination address valid: Recipient ok"
GO_AHEAD = '354 Enter mail, end with "." on a line by itself'
