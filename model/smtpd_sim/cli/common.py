"""What every command shares: the consoles, and bad input as one line with exit status 2.

Bad input never produces a traceback: one line on stderr naming the file, the key and
what was expected, and exit status 2 (DESIGN.md rule 5). Output that is not a terminal
(``| less``, a CI log, a file) is never clipped: see :class:`OutConsole`.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.measure import Measurement
from typer.core import TyperGroup, TyperOption

from smtpd_sim.errors import SmtpdSimError
from smtpd_sim.spec.files import validation_line
from smtpd_sim.spec.limits import MAX_PORT, MAX_SEED

# what a console is at least as wide when it is not a terminal and $COLUMNS says nothing
# (rich's own default: the width of the classic terminal)
PIPE_MIN_WIDTH = 80
_UNBOUNDED = 1_000_000  # the width offered when measuring what is about to be printed


class OutConsole(Console):
    """A rich console that, when its file is not a terminal, is as wide as what it prints.

    On a terminal rich fits tables to the window. Piped (``| less``, a CI log, a file)
    rich would assume 80 columns and clip wide tables with "…" or fold long lines; here
    each ``print`` is instead rendered at the natural width of its content (at least
    ``$COLUMNS``, else :data:`PIPE_MIN_WIDTH`), so no cell is truncated and no line is
    wrapped in the middle of a value. An explicit ``width=`` given at construction wins.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._fixed_width = kwargs.get("width") is not None
        super().__init__(*args, **kwargs)

    def natural_width(self, *objects: Any) -> int:
        """The width the objects need to print without wrapping or clipping."""
        options = self.options.update_width(_UNBOUNDED)
        need = 0
        for obj in objects:
            renderable = self.render_str(obj) if isinstance(obj, str) else obj
            if not hasattr(renderable, "__rich_console__") and not hasattr(renderable, "__rich_measure__"):
                renderable = self.render_str(str(renderable))
            widest = Measurement.get(self, options, renderable).maximum
            if widest < _UNBOUNDED:  # a renderable that fills any width (a panel) takes the default
                need = max(need, widest)
        return need

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if self._fixed_width or self.is_terminal:
            super().print(*objects, **kwargs)
            return
        cols = os.environ.get("COLUMNS", "")
        base = int(cols) if cols.isdigit() and int(cols) > 0 else PIPE_MIN_WIDTH
        saved = self._width
        self._width = max(base, self.natural_width(*objects))
        try:
            super().print(*objects, **kwargs)
        finally:
            self._width = saved


def make_console(*, stderr: bool = False) -> Console:
    """A console for a command's text output (stdout) or its progress and notes (stderr)."""
    return OutConsole(stderr=stderr)


console = make_console()
err_console = make_console(stderr=True)

USER_ERRORS = (SmtpdSimError, FileNotFoundError)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> None:
    """One line on stderr, exit status 2."""
    sys.stderr.write(f"smtpd-sim: error: {' '.join(message.split())}\n")  # never wrapped
    sys.stderr.flush()
    raise typer.Exit(2)


def _one_line(text: str) -> str:
    return " ".join(text.split())


class OneLineErrors(TyperGroup):
    """The command group: a usage error (an unknown option, ``--seed abc``, a value out of its
    range) is one line on stderr and exit status 2, like every other bad input."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except typer.TyperException as e:  # click's exceptions (typer vendors click)
            if type(e).__name__ == "NoArgsIsHelpError":  # bare `smtpd-sim real`: typer printed the help
                sys.exit(getattr(e, "exit_code", 2))
            ctx = getattr(e, "ctx", None)
            where = ctx.command_path if ctx is not None else "smtpd-sim"
            cmd = where.split(" ", 1)[1] + ": " if " " in where else ""
            param = getattr(e, "param", None)
            lo, hi = getattr(param, "min", None), getattr(param, "max", None)
            allowed = "" if lo is None and hi is None else (
                f" (allowed: {'' if lo is None else f'{lo} <= '}x{'' if hi is None else f' <= {hi}'})")
            sys.stderr.write(f"smtpd-sim: error: {cmd}{_one_line(e.format_message())}{allowed} "
                             f"(see {where} --help)\n")
            sys.stderr.flush()
            sys.exit(e.exit_code)
        except typer.Abort:
            sys.stderr.write("smtpd-sim: aborted\n")
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


def _flags_show_no_type() -> None:
    """``--json`` is a flag: its help line shows no ``<bool>`` value to give.

    Typer 0.29 renders every option's type in --help, flags included (``--json <bool>``,
    even ``--help <bool>``), which reads as if a value were expected. Declared flags
    (``bool`` options, click's ``is_flag``) take none, so their type column is left empty;
    every other option keeps typer's rendering. Done once, for every command and group
    (``real``/``native`` too), as help is rendered."""
    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "_flags_hidden", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag or self.count else shown(self, ctx)

    display_type_rich._flags_hidden = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_type()


# --seed of every command: what a scenario's seed may be (spec.scenario.ScenarioSpec.seed)
SEED = {"min": 0, "max": MAX_SEED}
# --port and friends: a TCP port (0: the system picks one, where a command allows it)
PORT = {"min": 0, "max": MAX_PORT}


def user_errors(fn: F) -> F:
    """Turn the model's input errors into one line and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        try:
            return fn(*a, **kw)
        except USER_ERRORS as e:
            fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
        except ValidationError as e:  # a study built a model from command-line values
            fail(validation_line(fn.__name__, e))
        except RecursionError:  # a structure too deep for the parser or the validator
            fail("input nested too deeply")
        except OSError as e:  # a path the checks below could not foresee (the disk filled up...)
            fail(f"{e.filename}: {e.strerror}" if e.filename and e.strerror else str(e) or type(e).__name__)

    return wrapper  # type: ignore[return-value]


def check_range(option: str, value: float, lo: float, hi: float, *, lo_open: bool = False) -> None:
    """A number given on the command line is finite and within [lo, hi] (``lo_open``: > lo),
    else one line naming the option and the range, exit status 2."""
    low_ok = value > lo if lo_open else value >= lo
    if not (math.isfinite(value) and low_ok and value <= hi):
        fail(f"{option}: got {value:g}; allowed: {lo:g} {'<' if lo_open else '<='} x <= {hi:g}")


def check_output(path: Path | None, option: str, *, directory: bool = False) -> None:
    """An output path that can be written, checked before anything runs (a long run's results
    are not lost at the end): a file where a file goes, a directory where a directory goes,
    under a writable directory (the nearest one that exists: the rest is created)."""
    if path is None:
        return
    if directory and path.exists() and not path.is_dir():
        fail(f"{option} {path}: exists and is not a directory")
    if not directory and path.is_dir():
        fail(f"{option} {path}: is a directory (expected a file name)")
    anc = path if directory else path.parent
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir():
        fail(f"{option} {path}: {anc} is not a directory")
    if not os.access(anc, os.W_OK):
        fail(f"{option} {path}: {anc} is not writable")


def counts_text(counts: dict[str, Any]) -> str:
    """``{"generated": 3, "double_bounces_dropped": 0}`` → ``generated 3, double bounces
    dropped 0``: counters in words, never a Python dict in a command's text."""
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items())


def split_list(values: list[str] | None) -> list[str]:
    """``--eras a,b --eras c`` → ``[a, b, c]``."""
    out: list[str] = []
    for v in values or []:
        out.extend(x for x in v.split(",") if x)
    return out


# --set of every command that takes a scenario (spec/overrides.py applies them)
SET_HELP = ("key.path=value: change one scenario value (a TOML value), e.g. world.cores=4, "
            "workload.arrival.rate_per_s=50, era=pony; the keys of sweep --vary; repeatable")
SetOption = Annotated[list[str] | None, typer.Option("--set", help=SET_HELP, metavar="KEY=VALUE")]
