"""``smtpd-sim real ...``: the real-daemon commands of the one Typer app; bad input and a
machine that cannot run the daemon are one line on stderr and exit status 2 (no root)."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from smtpd_sim.cli.app import app

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
    assert "traces" in res.stdout


def test_bad_scenario_names_are_one_line() -> None:
    assert "unknown scenario 'nope'" in _one_line_exit_2(["real", "traces", "local-1rcpt", "nope"])
    assert "long=True" in _one_line_exit_2(["real", "traces", "relay-unreachable-retry"])


def test_without_root_every_daemon_command_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for args in (["real", "traces", "local-1rcpt"], ["real", "traces", "--install-only"]):
        assert "root" in _one_line_exit_2(args), args
