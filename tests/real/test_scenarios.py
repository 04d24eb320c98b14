"""smtpd_sim.real.scenarios: the scripted SMTP dialogs, against any server (no root)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from smtpd_sim.real.scenarios import (
    SCENARIOS,
    DialogError,
    get_scenario,
    run_scenario_client,
    scenario_names,
)
from smtpd_sim.real.sink import Sink

DATA = Path(__file__).resolve().parents[1] / "data" / "real-traces"
LONG = ("local-tempfail-retry", "relay-unreachable-retry")


def test_scenario_registry() -> None:
    short = scenario_names()
    assert short[:6] == ["local-1rcpt", "local-3rcpt", "relay-1rcpt", "reject-rcpt", "protocol-errors",
                         "relay-permfail-bounce"]
    assert not set(LONG) & set(short)
    assert set(scenario_names(long=True)) == set(SCENARIOS)
    with pytest.raises(DialogError, match="long=True"):
        get_scenario("relay-unreachable-retry")
    with pytest.raises(DialogError, match="unknown scenario"):
        get_scenario("nope")


def test_scenario_client_runs_against_any_smtp_server(sink: Sink) -> None:
    """The same client drives another server (here the sink): research dialog shape."""
    d = run_scenario_client("local-1rcpt", "127.0.0.1", sink.port)
    ref = json.loads((DATA / "traces" / "local-1rcpt.dialog.json").read_text())
    assert d["name"] == "local-1rcpt" and len(d["sessions"]) == 1
    sess, ref_sess = d["sessions"][0], ref["sessions"][0]
    assert set(sess) == set(ref_sess)
    assert sess["client"][:4] == ref_sess["client"][:4] and sess["client"][-2:] == [".", "QUIT"]
    assert len(sess["replies"]) == len(ref_sess["replies"]) == 7
    assert sess["replies"][0] == sess["greeting"]
    assert {e["dir"] for e in sess["timeline"]} == {"C", "S"}
    assert sink.count == 1  # the sink accepted alice@local.test: it accepts anything not reject/defer


def test_scenario_client_connection_refused_is_a_dialog_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DialogError, match="cannot connect"):
        run_scenario_client("protocol-errors", "127.0.0.1", port, timeout=2)


def test_scenario_client_reports_a_silent_server() -> None:
    """A server that never answers: every read is bounded by the timeout, no hang."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        t0 = time.monotonic()
        d = run_scenario_client("reject-rcpt", "127.0.0.1", srv.getsockname()[1], timeout=0.2)
    assert d["sessions"][0]["greeting"] == "<TIMEOUT>"
    assert time.monotonic() - t0 < 5


def test_dialog_error_is_not_the_scenario_file_error() -> None:
    """A failed real-daemon dialog and a bad scenario file are two different errors."""
    from smtpd_sim.spec.scenario import ScenarioError

    assert not issubclass(DialogError, ScenarioError) and not issubclass(ScenarioError, DialogError)
