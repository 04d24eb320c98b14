"""Roles from other packages: the ``smtpd_sim.roles`` entry-point group.

As OpenSMTPD-extras added programs to the daemon without touching it, a package can add
a role: an entry point names a :class:`~smtpd_sim.roles.base.Role` subclass, e.g. ::

    [project.entry-points."smtpd_sim.roles"]
    spamd = "smtpd_sim_table_example.roles:SpamdRole"

The entry point's name is the role name a topology uses (``roles = ["spamd"]``). The class
may declare ``imsgs = {"KIND": "IMSG_NAME", ...}`` for the imsgs it sends or handles; they
join every era's vocabulary. Table backends have their own group (``smtpd_sim.tables``).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

ROLE_ENTRY_POINT_GROUP = "smtpd_sim.roles"
BUILTIN_ROLES = ("parent", "smtp", "mta", "mda", "mfa", "lka", "queue", "scheduler", "control", "ca")

_cache: tuple[dict[str, Any], dict[str, str]] | None = None


def _discover() -> tuple[dict[str, Any], dict[str, str]]:
    from smtpd_sim.roles.base import Role

    roles: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for ep in sorted(entry_points(group=ROLE_ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in BUILTIN_ROLES or ep.name in roles:
            continue  # a plugin may not replace a role of the daemon
        try:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Role)):
                raise TypeError(f"{cls!r} is not a Role subclass")
        except Exception as e:  # a broken plugin must not break the core
            errors[ep.name] = f"role plugin {ep.name!r} ({ep.value}) failed to load: {type(e).__name__}: {e}"
            continue
        cls.name = ep.name
        roles[ep.name] = cls
    return roles, errors


def plugin_roles(refresh: bool = False) -> dict[str, Any]:
    """Role classes installed packages declare (cached; ``refresh`` re-reads)."""
    global _cache
    if _cache is None or refresh:
        _cache = _discover()
    return _cache[0]


def plugin_errors() -> dict[str, str]:
    """Role plugins that failed to load, with why (shown when a topology names one)."""
    plugin_roles()
    assert _cache is not None
    return _cache[1]


def role_names() -> tuple[str, ...]:
    """Every role a topology may name: the daemon's, then the plugins'."""
    return BUILTIN_ROLES + tuple(plugin_roles())


def plugin_imsgs() -> dict[str, str]:
    """Imsg kinds the plugin roles declare, with their names."""
    out: dict[str, str] = {}
    for cls in plugin_roles().values():
        out.update(getattr(cls, "imsgs", {}) or {})
    return out
