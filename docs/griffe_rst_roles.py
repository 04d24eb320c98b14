"""Griffe extension for the API pages: the package's docstrings name objects the Sphinx way
(``:class:`smtpd_sim.spec.backends.Backend```); Markdown would show the role literally, so
each role becomes inline code (``smtpd_sim.spec.backends.Backend``). The docstrings stay as
they are."""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension, Object

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`~?([^`]+)`")


class RstRoles(Extension):
    """Rewrite ``:role:`target``` as ``target`` in every docstring griffe loads."""

    def on_object(self, *, obj: Object, **kwargs: Any) -> None:
        """Called once per object after the tree is built (before rendering parses it)."""
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(r"`\1`", obj.docstring.value)
