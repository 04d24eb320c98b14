"""What every command shares: the consoles, and bad input as one line with exit status 2.

Bad input never produces a traceback: one line on stderr naming the file, the key and
what was expected, and exit status 2 (DESIGN.md rule 5).
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
from typer.core import TyperGroup

from smtpd_sim.errors import SmtpdSimError
from smtpd_sim.spec.files import validation_line
from smtpd_sim.spec.limits import MAX_PORT, MAX_SEED

console = Console()
err_console = Console(stderr=True)

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
