"""Progress: plain, throttled lines on stderr when it is not a terminal, a rich bar on one."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from smtpd_sim.cli import app
from smtpd_sim.cli.progress import (
    EVERY_S,
    STEPS,
    PlainProgress,
    PlainTasks,
    count_text,
    progress_bar,
)

runner = CliRunner()
SMALL = Path(__file__).parents[1] / "data" / "small-workload.toml"


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_one_line_per_tenth_however_many_updates() -> None:
    buf, clock = io.StringIO(), _Clock()
    p = PlainProgress("sweep x", 40, buf, text=lambda d, t: count_text(d, t, "runs"), clock=clock)
    for k in range(1, 41):
        for _ in range(50):  # a chatty caller
            p.update(k)
    p.finish()
    lines = buf.getvalue().splitlines()
    assert len(lines) == STEPS
    assert lines[2] == "sweep x: 12/40 runs (30 %)"
    assert lines[-1] == "sweep x: 40/40 runs (100 %)"  # 100 % said: no extra "done"


def test_a_slow_step_still_shows_life_every_so_often() -> None:
    buf, clock = io.StringIO(), _Clock()
    p = PlainProgress("run x", 1000, buf, text=lambda d, t: "", clock=clock)
    p.update(1)
    assert buf.getvalue() == ""  # under a tenth, too soon
    clock.t = EVERY_S + 1
    p.update(1, "0.01 h simulated")
    assert buf.getvalue() == "run x: 0 %, 0.01 h simulated\n"  # moved since the start, a while ago
    clock.t = 3 * EVERY_S
    p.update(1)
    assert len(buf.getvalue().splitlines()) == 1  # nothing moved since that line
    p.update(2)
    assert len(buf.getvalue().splitlines()) == 2


def test_done_when_the_work_ends_short_of_its_total() -> None:
    buf = io.StringIO()
    p = PlainProgress("run x", 1.0, buf, text=lambda d, t: "", clock=_Clock())
    p.update(0.42, "0.08 h simulated")
    p.finish()
    assert buf.getvalue().splitlines() == ["run x: 42 %, 0.08 h simulated", "run x: done, 0.08 h simulated"]


def test_plain_lines_unless_a_terminal() -> None:
    plain, tty = io.StringIO(), io.StringIO()
    for buf, force in ((plain, False), (tty, True)):
        with progress_bar(Console(file=buf, force_terminal=force), unit="things") as prog:
            task = prog.add_task("work", total=4)
            for _ in range(4):
                prog.update(task, advance=1, description="one more")
    assert "\x1b" not in plain.getvalue()
    assert plain.getvalue().splitlines()[-1] == "work: 4/4 things (100 %), one more"
    assert "\x1b" in tty.getvalue()  # the rich bar draws with control codes


def test_plain_tasks_speak_rich_progress() -> None:
    """What run, compare and sweep call on a rich Progress works on the plain one: completed
    or advance, a description or fields as the note."""
    buf = io.StringIO()
    tasks = PlainTasks(buf, None, clock=_Clock())
    task = tasks.add_task("simulating short", total=1.0, simt="")
    tasks.update(task, completed=0.5, simt="0.04 h simulated")
    tasks.update(task, completed=0.55, simt="0.05 h simulated")  # same tenth, no time passed
    tasks.finish()
    assert buf.getvalue().splitlines() == ["simulating short: 50 %, 0.04 h simulated",
                                           "simulating short: done, 0.05 h simulated"]


def test_compare_progress_lines_on_stderr() -> None:
    r = runner.invoke(app, ["compare", "--workload", str(SMALL), "--eras", "pony,pony-6.8"])
    assert r.exit_code == 0, r.output
    lines = r.stderr.splitlines()
    assert lines[-1].startswith("simulating: 4/4 runs (100 %), pony-6.8: ")
    assert "\x1b" not in r.stderr and len(lines) == 4


def test_sweep_progress_lines_on_stderr(tmp_path: Path) -> None:
    vary = ["workload.duration_s=1", "workload.arrival.rate_per_s=20", "era=pony,pony-6.8"]
    r = runner.invoke(app, ["sweep", "default", "--workers", "0", "--out", str(tmp_path / "s"),
                            *(a for v in vary for a in ("--vary", v))])
    assert r.exit_code == 0, r.output
    assert r.stderr.splitlines() == ["sweep default: 2 points x 1: 1/2 runs (50 %)",
                                     "sweep default: 2 points x 1: 2/2 runs (100 %)"]
    assert "\x1b" not in r.stdout + r.stderr
