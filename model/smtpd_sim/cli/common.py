"""What every command shares: the consoles, and bad input as one line with exit status 2.

Bad input never produces a traceback: one line on stderr naming the file, the key and
what was expected, and exit status 2 (DESIGN.md rule 5).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from smtpd_sim.errors import SmtpdSimError

console = Console()
err_console = Console(stderr=True)

USER_ERRORS = (SmtpdSimError, FileNotFoundError)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> None:
    """One line on stderr, exit status 2."""
    sys.stderr.write(f"smtpd-sim: error: {' '.join(message.split())}\n")  # never wrapped
    sys.stderr.flush()
    raise typer.Exit(2)


def user_errors(fn: F) -> F:
    """Turn the model's input errors into one line and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*a: Any, **kw: Any) -> Any:
        try:
            return fn(*a, **kw)
        except USER_ERRORS as e:
            fail(str(e).splitlines()[0] if str(e) else type(e).__name__)

    return wrapper  # type: ignore[return-value]


def split_list(values: list[str] | None) -> list[str]:
    """``--eras a,b --eras c`` → ``[a, b, c]``."""
    out: list[str] = []
    for v in values or []:
        out.extend(x for x in v.split(",") if x)
    return out
