"""The consoles every command prints through: never clipped when not a terminal; flags
show no value type in --help."""

from __future__ import annotations

import io

import pytest
from rich.panel import Panel
from rich.table import Table
from typer.main import get_command
from typer.testing import CliRunner

from smtpd_sim.cli import app
from smtpd_sim.cli.common import PIPE_MIN_WIDTH, OutConsole

runner = CliRunner()
LONG = "a label much longer than the rest of its row, to push the table past eighty columns"


def _wide_table() -> Table:
    t = Table(title="wide")
    t.add_column("what")
    for n in range(6):
        t.add_column(f"column {n}", justify="right")
    t.add_row(LONG, *(f"{n * 1234.5678:.4f}" for n in range(6)))
    return t


def test_piped_table_is_as_wide_as_it_needs_no_ellipsis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    buf = io.StringIO()
    OutConsole(file=buf).print(_wide_table())
    text = buf.getvalue()
    assert "…" not in text and LONG in text
    assert max(len(ln) for ln in text.splitlines()) > PIPE_MIN_WIDTH


def test_piped_long_line_is_not_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    buf = io.StringIO()
    line = "results in " + "/very/long/directory" * 8 + "/ (config.json, summary.json)"
    OutConsole(file=buf).print(line)
    assert buf.getvalue() == line + "\n"


def test_columns_is_the_least_width_when_piped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "150")
    buf = io.StringIO()
    t = Table(expand=True)
    t.add_column("x")
    OutConsole(file=buf).print(t)
    assert max(len(ln) for ln in buf.getvalue().splitlines()) == 150


def test_what_fills_any_width_gets_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    buf = io.StringIO()
    OutConsole(file=buf).print(Panel("short"))
    assert max(len(ln) for ln in buf.getvalue().splitlines()) == PIPE_MIN_WIDTH


@pytest.mark.parametrize("terminal", [True, False])
def test_a_terminal_still_fits_the_window(monkeypatch: pytest.MonkeyPatch, terminal: bool) -> None:
    """On a terminal rich fits the table to the window ($COLUMNS here), as before; only a
    pipe gets the natural width."""
    monkeypatch.setenv("COLUMNS", "60")
    buf = io.StringIO()
    OutConsole(file=buf, force_terminal=terminal, color_system=None).print(_wide_table())
    widest = max(len(ln) for ln in buf.getvalue().splitlines())
    assert (widest <= 60) if terminal else (widest > 60)


def _commands() -> list[list[str]]:
    out: list[list[str]] = [[]]

    def walk(cmd: object, path: list[str]) -> None:
        for name, sub in getattr(cmd, "commands", {}).items():
            out.append([*path, name])
            walk(sub, [*path, name])

    walk(get_command(app), [])
    return out


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p) or "smtpd-sim")
def test_no_bool_value_in_help(path: list[str]) -> None:
    r = runner.invoke(app, [*path, "--help"])
    assert r.exit_code == 0, r.output
    assert "<bool>" not in r.stdout and "--help" in r.stdout


def test_the_command_tree_is_walked() -> None:
    names = {" ".join(p) for p in _commands()}
    assert {"run", "compare", "sweep", "privsep", "real", "real validate", "native"} <= names
    assert any(n.startswith("native ") for n in names)
