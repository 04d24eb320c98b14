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

# seconds between two plain lines at most, when progress moved but no tenth was crossed
EVERY_S = 30.0
# the plain lines' step: one line each time another 1/STEPS of the work is done
STEPS = 10

Update = Callable[..., None]  # update(done, note="")


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


@contextmanager
def progress(label: str, total: float, console: Console, *,
             text: Callable[[float, float], str]) -> Iterator[Update]:
    """Report progress towards ``total``: yields ``update(done, note="")``. On a terminal a
    transient rich bar (gone once done); otherwise :class:`PlainProgress` lines on the
    console's stream. ``text(done, total)`` says how far, e.g. ``12/40 runs`` ("": the
    percentage alone)."""
    if console.is_terminal:
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[how]}"),
                      TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True) as bar:
            task = bar.add_task(label, total=total, how="")

            def update(done: float, note: str = "") -> None:
                how = text(done, total) + (f"  {note}" if note else "")
                bar.update(task, completed=min(done, total), how=how)

            yield update
        return
    plain = PlainProgress(label, total, console.file, text=text)
    yield plain.update
    plain.finish()
