"""Text output that reads well in a pipe (``| less``, a CI log): no clipped cells, no
raw Python dicts; JSON unchanged."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import tiny_scenario
from typer.testing import CliRunner

from smtpd_sim.cli import app

runner = CliRunner()
SMALL = Path(__file__).parents[1] / "data" / "small-workload.toml"
REPR = re.compile(r"\{'|\['|': |<[a-zA-Z_.]+ object at ")  # a Python repr in the text



def _piped(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    return subprocess.run([sys.executable, "-m", "smtpd_sim", *args], capture_output=True, text=True, env=env)


def test_compare_piped_keeps_every_label_and_column() -> None:
    r = _piped("compare", "--workload", str(SMALL))
    assert r.returncode == 0, r.stderr
    assert "…" not in r.stdout
    assert "round trips before end of data reply" in r.stdout  # clipped at 80 columns before
    header = next(ln for ln in r.stdout.splitlines() if "with-mfa" in ln)
    assert all(e in header for e in ("with-mfa", "without-mfa", "pony", "pony-6.8"))
    assert "\x1b" not in r.stdout + r.stderr


@pytest.mark.parametrize("args", [
    ["topology", "with-mfa"],
    ["privsep", "with-mfa"],
    ["privsep", "pony", "--compromise", "smtp"],
    ["privsep", "pony-6.8", "--platform", "openbsd", "--compromise", "smtp"],
    ["privsep", "pony-6.8", "--fds"],
    ["privsep", "pony-6.8", "--trust"],
    ["plugins"],
    ["trace", "pony-6.8"],
], ids=lambda a: " ".join(a))
def test_text_commands_neither_clip_nor_print_reprs(args: list[str]) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    assert "…" not in r.stdout and not REPR.search(r.stdout), r.stdout


def test_run_text_has_no_dict_and_no_clipping(tmp_path: Path) -> None:
    r = runner.invoke(app, ["run", str(tiny_scenario(tmp_path)), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert not REPR.search(r.stdout) and "…" not in r.stdout
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    b = summary["bounces"]
    assert f"bounces (generated {b['generated']}, delivered {b['delivered']}, failed {b['failed']}, " \
           f"double bounces dropped {b['double_bounces_dropped']})" in r.stdout
    assert f"results in {tmp_path / 'o'}/ (" in r.stdout  # the path in one piece, not wrapped
    assert "simulating tiny: " in r.stderr and "\x1b" not in r.stderr


def test_json_outputs_are_untouched_by_the_text_rendering(tmp_path: Path) -> None:
    """--json goes straight to stdout: one line of JSON; no progress, only notes on stderr."""
    for args in (["compare", "--json", "--workload", str(SMALL), "--eras", "pony"],
                 ["run", str(tiny_scenario(tmp_path)), "--json", "--out", str(tmp_path / "j")]):
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
        assert len(r.stdout.splitlines()) == 1 and json.loads(r.stdout)
        assert all(ln.startswith("note: ") for ln in r.stderr.splitlines())  # no progress


def test_real_traces_lines_name_differing_hops_in_words() -> None:
    """``real traces`` (root) prints these lines; checked here without the daemon."""
    from smtpd_sim.cli.real import _reference_lines

    cmp = {"local-1rcpt": {"multiset_equal": False, "non_stat_counts": {"real": 3, "sim": 2},
                           "sequence_ratio": 0.5, "stat_counts": {"real": 0, "sim": 0},
                           "only_in_real": [{"hop": "smtp -> queue SMTP_MESSAGE_COMMIT", "count": 2}],
                           "only_in_sim": []}}
    lines = "\n".join(_reference_lines(cmp))
    assert "only in reference: smtp -> queue SMTP_MESSAGE_COMMIT x2" in lines and "only now: -" in lines
    assert not REPR.search(lines)
