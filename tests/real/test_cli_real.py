"""``smtpd-sim real ...``: the real-daemon commands of the one Typer app; bad input and a
machine that cannot run the daemon are one line on stderr and exit status 2 (no root)."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from smtpd_sim.cli import app
from smtpd_sim.real.sink import Sink

runner = CliRunner()


def _one_line_exit_2(args: list[str]) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("smtpd-sim: error:"), err
    assert "Traceback" not in res.output
    return err[0]


def test_real_commands_are_listed() -> None:
    res = runner.invoke(app, ["real", "--help"])
    assert res.exit_code == 0, res.output
    for cmd in ("validate", "traces", "load", "dialog", "tables-bench"):
        assert cmd in res.stdout
    assert "load-worker" not in res.stdout  # hidden: started by `real load` inside the namespace
    assert runner.invoke(app, ["real", "load-worker", "--help"]).exit_code == 0


def test_dialog_against_any_server_prints_json(sink: Sink) -> None:
    res = runner.invoke(app, ["real", "dialog", "local-1rcpt", "127.0.0.1", str(sink.port)])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["name"] == "local-1rcpt" and len(d["sessions"]) == 1
    assert sink.count == 1


def test_bad_scenario_names_are_one_line() -> None:
    assert "unknown scenario 'nope'" in _one_line_exit_2(["real", "dialog", "nope"])
    assert "unknown scenario 'nope'" in _one_line_exit_2(["real", "validate", "local-1rcpt", "nope"])
    assert "long=True" in _one_line_exit_2(["real", "traces", "relay-unreachable-retry"])


def test_dialog_connection_refused_is_one_line() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert "cannot connect" in _one_line_exit_2(["real", "dialog", "protocol-errors", "127.0.0.1", str(port)])


def test_bad_load_options_are_one_line() -> None:
    assert "--modes" in _one_line_exit_2(["real", "load", "--modes", "local,bulk"])
    assert "--concurrency" in _one_line_exit_2(["real", "load", "--concurrency", "1,x"])
    assert "--concurrency" in _one_line_exit_2(["real", "load", "--concurrency", "0"])
    assert "--duration" in _one_line_exit_2(["real", "load", "--duration", "0"])


def test_load_worker_bad_mode_is_one_line() -> None:
    assert "mode must be one of" in _one_line_exit_2(["real", "load-worker", "--pid", str(os.getpid()), "--mode",
                                                      "bulk", "--concurrency", "1", "--duration", "1"])


def test_without_root_every_daemon_command_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for args in (["real", "validate", "local-1rcpt"], ["real", "traces", "--install-only"],
                 ["real", "load", "--duration", "1"], ["real", "tables-bench"]):
        assert "root" in _one_line_exit_2(args), args


def test_prefix_and_spool_go_together_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--prefix selects a 5.4.2p1 install and needs its compiled-in --spool; a prefix without
    sbin/smtpd is refused before anything runs."""
    assert "--spool: only with --prefix" in _one_line_exit_2(["real", "traces", "--spool", str(tmp_path)])
    assert "needs --spool" in _one_line_exit_2(["real", "load", "--prefix", str(tmp_path)])
    msg = _one_line_exit_2(["real", "traces", "--prefix", str(tmp_path), "--spool", str(tmp_path)])
    assert "no smtpd there" in msg
