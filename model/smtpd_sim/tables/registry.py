"""Table backends by name: the built-ins, then whatever installed packages declare in
the ``smtpd_sim.tables`` entry-point group (as OpenSMTPD-extras added ``table-*``
programs to the daemon without touching it).

An entry point names a :class:`~smtpd_sim.tables.base.Backend` subclass, an instance, or a
callable returning one, e.g. in a plugin's pyproject.toml::

    [project.entry-points."smtpd_sim.tables"]
    example = "smtpd_sim_table_example:ExampleBackend"

The entry point's name is the backend name used in ``[tables.<name>] backend = ...``.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from smtpd_sim.tables.base import Backend
from smtpd_sim.tables.builtin import BUILTIN

ENTRY_POINT_GROUP = "smtpd_sim.tables"

_cache: dict[str, Backend | str] | None = None


def _instantiate(obj: Any) -> Backend:
    if isinstance(obj, type) and issubclass(obj, Backend):
        return obj()
    if isinstance(obj, Backend):
        return obj
    if callable(obj):
        out = obj()
        if isinstance(out, Backend):
            return out
    raise TypeError(f"{obj!r} is not a table Backend")


def discover() -> dict[str, Backend | str]:
    """Built-ins plus the entry points; a plugin that fails to load is kept as its error
    text (reported when that backend is asked for), a plugin may not shadow a built-in."""
    found: dict[str, Backend | str] = {cls.name: cls() for cls in BUILTIN}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in found:
            continue
        try:
            backend = _instantiate(ep.load())
        except Exception as e:  # a broken plugin must not break the core
            found[ep.name] = f"table backend {ep.name!r} ({ep.value}) failed to load: {type(e).__name__}: {e}"
            continue
        backend.name = ep.name
        found[ep.name] = backend
    return found


def backends(refresh: bool = False) -> dict[str, Backend | str]:
    """Every backend name known now (cached; ``refresh`` re-reads the entry points)."""
    global _cache
    if _cache is None or refresh:
        _cache = discover()
    return _cache


def get_backend(name: str) -> Backend:
    """The backend called ``name``; ValueError (one line) if unknown or broken."""
    known = backends()
    if name not in known:
        known = backends(refresh=True)  # a plugin installed since the first look
    b = known.get(name)
    if b is None:
        raise ValueError(f"unknown table backend {name!r} (expected one of {', '.join(sorted(known))})")
    if isinstance(b, str):
        raise ValueError(b)
    return b
