"""The one error base: bad input, or a request the model cannot honour.

Every error a user can cause (a wrong scenario key, an unknown era, a process hosting an
unknown role, a channel to nowhere...) is a :class:`SmtpdSimError` whose message is one
line naming the file, the key and what was expected; the command line prints it and
exits with status 2 (DESIGN.md rule 5). It sits beneath every room, the kernel included.
"""

from __future__ import annotations


class SmtpdSimError(ValueError):
    """Bad input (one line). Subclasses say which kind of input."""


class ModelError(SmtpdSimError):
    """The model was asked to do something the topology does not allow (one line)."""
