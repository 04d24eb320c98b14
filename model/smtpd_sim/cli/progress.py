"""Progress of a long command on stderr: a rich bar on a terminal, plain lines elsewhere.

A progress bar redraws itself with control codes, which a CI log or a file keeps as
noise. When stderr is not a terminal the progress is a few plain lines instead, e.g.
``sweep default: 12/40 runs (30 %)`` or ``run smoke: 30 %, 1.20 h simulated``: one each time another tenth is done, or when
:data:`EVERY_S` seconds passed since the last line and something moved (a long run
still shows it is alive), and ``done`` at the end if 100 % was not reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

# seconds between two plain lines at most, when progress moved but no tenth was crossed
EVERY_S = 30.0
# the plain lines' step: one line each time another 1/STEPS of the work is done
STEPS = 10

def count_text(done: float, total: float, unit: str) -> str:
    """``12/40 runs``: whole counts."""
    return f"{int(done)}/{int(total)} {unit}"


class PlainProgress:
    """Throttled progress lines on a stream that is not a terminal."""

    def __init__(self, label: str, total: float, stream: TextIO, *,
                 text: Callable[[float, float], str], clock: Callable[[], float] = time.monotonic,
                 every_s: float = EVERY_S) -> None:
        self.label, self.total, self.stream, self.text = label, total, stream, text
        self.clock, self.every_s = clock, every_s
        self.step = 0  # tenths already reported
        self.last_t = clock()
        self.last_done = 0.0
        self.last_note = ""

    def update(self, done: float, note: str = "") -> None:
        """The work done so far (same unit as ``total``); ``note``: what just finished."""
        frac = min(1.0, done / self.total) if self.total > 0 else 1.0
        step = int(frac * STEPS + 1e-9)
        now = self.clock()
        self.last_note = note
        moved = done != self.last_done
        if step > self.step or (moved and now - self.last_t >= self.every_s):
            self.step = max(self.step, step)
            self.last_t, self.last_done = now, done
            tail = f", {note}" if note else ""
            how = self.text(done, self.total)
            pct = f"{frac * 100:.0f} %"
            self.stream.write(f"{self.label}: {f'{how} ({pct})' if how else pct}{tail}\n")
            self.stream.flush()

    def finish(self) -> None:
        """The work ended: ``done`` unless the last line already said 100 % (a run that
        settles before its drain limit ends short of it)."""
        if self.step < STEPS:
            tail = f", {self.last_note}" if self.last_note else ""
            self.stream.write(f"{self.label}: done{tail}\n")
            self.stream.flush()


class PlainTasks:
    """What a command uses of ``rich.progress.Progress`` (``add_task``, ``update``), as
    :class:`PlainProgress` lines: the task's description is the label; a description or
    fields given to ``update`` are the note after the count (``pony: load done``)."""

    def __init__(self, stream: TextIO, unit: str | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.unit, self.clock = stream, unit, clock
        self.tasks: list[PlainProgress] = []
        self.done: list[float] = []

    def add_task(self, description: str, total: float | None = None, **_fields: object) -> int:
        unit = self.unit
        text = (lambda d, t: count_text(d, t, unit)) if unit else (lambda d, t: "")
        self.tasks.append(PlainProgress(description, total or 0.0, self.stream, text=text, clock=self.clock))
        self.done.append(0.0)
        return len(self.tasks) - 1

    def update(self, task: int, *, completed: float | None = None, advance: float | None = None,
               description: str | None = None, **fields: object) -> None:
        if completed is not None:
            self.done[task] = completed
        if advance is not None:
            self.done[task] += advance
        note = ", ".join(str(x) for x in ([description] if description else []) + list(fields.values()) if x)
        self.tasks[task].update(self.done[task], note)

    def finish(self) -> None:
        for t in self.tasks:
            t.finish()


class _Fields(ProgressColumn):
    """The task's fields (``simt=...``), as text after the bar."""

    def render(self, task: Task) -> Text:
        return Text("  ".join(str(v) for v in task.fields.values() if v))


@contextmanager
def progress_bar(console: Console, *, unit: str | None = None) -> Iterator[Progress | PlainTasks]:
    """A progress display used like ``rich.progress.Progress`` (``add_task``, ``update``).
    On a terminal: a transient rich bar (gone once done) with the count, the fields, the
    time spent and left. Otherwise: :class:`PlainTasks`, plain lines on the console's
    stream. ``unit`` ("runs") makes the plain lines count (``12/40 runs (30 %)``); without
    it they give the percentage alone."""
    if console.is_terminal:
        counted = [MofNCompleteColumn()] if unit else [TaskProgressColumn()]
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), *counted, _Fields(),
                      TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True) as bar:
            yield bar
        return
    plain = PlainTasks(console.file, unit)
    yield plain
    plain.finish()
