"""What installed packages add: the entry-point groups, read once (one registry).

As OpenSMTPD-extras added programs to the daemon without touching it, a package adds

* a role: ``[project.entry-points."smtpd_sim.roles"] spamd = "pkg.roles:SpamdRole"``,
  a :class:`smtpd_sim.roles.base.Role` subclass; the entry point's name is the role name a
  topology uses (``roles = ["spamd"]``); its ``imsgs = {"KIND": "IMSG_NAME"}`` join every
  era's vocabulary;
* a table backend: ``[project.entry-points."smtpd_sim.tables"] http = "pkg:HttpBackend"``,
  a :class:`smtpd_sim.spec.backends.Backend` (class, instance or factory); the name is what
  ``[tables.<name>] backend = ...`` says.

A plugin that fails to load is kept as its error text, shown only when something names it:
a broken plugin must not break the core.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

ROLE_ENTRY_POINT_GROUP = "smtpd_sim.roles"
TABLE_ENTRY_POINT_GROUP = "smtpd_sim.tables"
BUILTIN_ROLES = ("parent", "smtp", "mta", "mda", "mfa", "lka", "queue", "scheduler", "control", "ca")

_cache: dict[str, dict[str, tuple[Any, str]]] = {}


def load(group: str, *, refresh: bool = False) -> dict[str, tuple[Any, str]]:
    """name -> (the loaded object, "") or (None, why it failed to load), by name; cached
    per group (``refresh`` reads the installed distributions again)."""
    if refresh or group not in _cache:
        found: dict[str, tuple[Any, str]] = {}
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            if ep.name in found:
                continue
            try:
                found[ep.name] = (ep.load(), "")
            except Exception as e:  # a broken plugin must not break the core
                found[ep.name] = (None, f"({ep.value}) failed to load: {type(e).__name__}: {e}")
        _cache[group] = found
    return _cache[group]


def plugin_roles(refresh: bool = False) -> dict[str, Any]:
    """Role classes installed packages declare (a plugin may not replace a daemon role);
    each class's ``name`` is its entry point's name."""
    out: dict[str, Any] = {}
    for name, (obj, err) in load(ROLE_ENTRY_POINT_GROUP, refresh=refresh).items():
        if err or name in BUILTIN_ROLES:
            continue
        if isinstance(obj, type):
            obj.name = name
        out[name] = obj
    return out


def plugin_errors() -> dict[str, str]:
    """Role plugins that failed to load, with why (shown when a topology names one)."""
    return {name: f"role plugin {name!r} {err}" for name, (_obj, err) in load(ROLE_ENTRY_POINT_GROUP).items()
            if err and name not in BUILTIN_ROLES}


def role_names() -> tuple[str, ...]:
    """Every role a topology may name: the daemon's, then the plugins'."""
    return BUILTIN_ROLES + tuple(plugin_roles())


def plugin_imsgs() -> dict[str, str]:
    """Imsg kinds the plugin roles declare, with their names (the simulation adds them to
    the era's vocabulary)."""
    out: dict[str, str] = {}
    for cls in plugin_roles().values():
        out.update(getattr(cls, "imsgs", {}) or {})
    return out
