"""Table backends: what one is, the ones 6.8 ships and the OpenSMTPD-extras programs, and
the registry (the built-ins, then what installed packages add: ``smtpd_sim.tables``).

In 6.8 (``table.c:table_create()``) a backend is either compiled into the daemon —
``static`` (``file:``/inline tables), ``db`` (Berkeley DB), ``getpwnam`` — and looked up
inside the lka, or it is a program ``/usr/libexec/opensmtpd/table-<backend>`` that the
lka forks (``table_proc.c``). A backend here is data: whether it is such a program
(``external``) and the default costs of a lookup, each with its source; the lookups
themselves are simulated by ``smtpd_sim.world.tables``. A plugin subclasses
:class:`Backend` (or builds an instance) and registers it in the ``smtpd_sim.tables``
entry-point group; nothing in the core changes.

Defaults and their sources:

* ``static`` and ``db`` run inside the lka (``table_static.c`` walks an in-memory dict;
  ``table_db.c`` reads a Berkeley DB btree — not built in Debian's 6.8.0p2). Their
  default extra cost is 0: the lookup is part of the lka handler's CPU as calibrated
  (``SMTP_EXPAND_RCPT`` in scenarios/calibration/*-6.8.toml); a user parameter.
* ``sqlite`` and ``redis``: measured on the real 6.8.0p2 with Debian's
  opensmtpd-extras 6.7.1 by ``smtpd_sim/real/tables_bench.py``; the figures are read from
  ``scenarios/calibration/tables-6.8.toml`` (how they were taken is written there).
* ``ldap``, ``mysql``, ``postgres``, ``socketmap``: a server we did not measure; the
  lookup wait must be given (``lookup_s``), the table process's own CPU defaults to the
  one measured for table-redis (the same ``api/table_api.c`` loop plus a client
  library's request/parse), a stand-in named as such.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from smtpd_sim.spec.files import scenario_dir
from smtpd_sim.spec.plugins import TABLE_ENTRY_POINT_GROUP, load

if TYPE_CHECKING:
    from smtpd_sim.spec.tables import TableSpec

ENTRY_POINT_GROUP = TABLE_ENTRY_POINT_GROUP


@dataclass(frozen=True)
class TableParams:
    """The resolved costs of one table (the spec's values, else the backend's defaults)."""

    cpu_s: float
    lookup_s: float
    concurrency: int
    source: str
    lka_cpu_s: float = 0.0
    miss_tempfails: bool = False
    blocking: bool = True


class Backend:
    """A table backend: its kind and its default costs, each with a source.

    ``external``: True for a table process the lka forks (``table_proc.c``), False for a
    backend compiled into the daemon (the lookup runs in the lka's own handler).
    ``lookup_s = None``: no measured default, the configuration must give one.
    """

    name: str = ""
    external: bool = True
    description: str = ""
    cpu_s: float = 0.0
    lookup_s: float | None = None
    concurrency: int = 1
    lka_cpu_s: float = 0.0
    source: str = ""

    def defaults(self) -> dict[str, Any]:
        """cpu_s, lookup_s, concurrency, lka_cpu_s and source; backends whose figures live
        in a data file override this to read it lazily."""
        return {"cpu_s": self.cpu_s, "lookup_s": self.lookup_s, "concurrency": self.concurrency,
                "lka_cpu_s": self.lka_cpu_s, "source": self.source}

    def resolve(self, spec: TableSpec) -> TableParams:
        """Fill the fields the configuration left unset from the backend's defaults."""
        d = self.defaults()
        if not spec.blocking and not self.external:
            raise ValueError(f"table backend {self.name!r} is looked up inside the lka: blocking = false "
                             f"applies to table processes only")
        if spec.lookup_s is None and d["lookup_s"] is None:
            raise ValueError(f"table backend {self.name!r} has no measured lookup cost: set lookup_s")
        set_by_user = [k for k in ("cpu_s", "lookup_s", "concurrency", "lka_cpu_s") if getattr(spec, k) is not None]
        source = d["source"] if not set_by_user else f"user parameter ({', '.join(set_by_user)}); else {d['source']}"
        return TableParams(
            cpu_s=d["cpu_s"] if spec.cpu_s is None else spec.cpu_s,
            lookup_s=d["lookup_s"] if spec.lookup_s is None else spec.lookup_s,
            concurrency=d["concurrency"] if spec.concurrency is None else spec.concurrency,
            lka_cpu_s=d["lka_cpu_s"] if spec.lka_cpu_s is None else spec.lka_cpu_s,
            source=source,
            miss_tempfails=spec.miss_tempfails,
            blocking=spec.blocking,
        )


CALIBRATION_FILE = "tables-6.8.toml"


@cache
def measured() -> dict[str, Any]:
    """``scenarios/calibration/tables-6.8.toml``: the per-backend figures measured on the
    real daemon (``[backend.<name>]`` with cpu_s, lookup_s, concurrency)."""
    path = scenario_dir() / "calibration" / CALIBRATION_FILE
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: missing (the measured table costs)") from None


class _InProcess(Backend):
    external = False
    cpu_s = 0.0
    lookup_s = 0.0
    concurrency = 1
    source = ("user parameter (default 0: an in-process lookup is part of the lka handler cost, "
              "calibration SMTP_EXPAND_RCPT)")


class StaticBackend(_InProcess):
    name = "static"
    description = "table_static.c: file: and inline tables, in the lka's memory"


class DbBackend(_InProcess):
    name = "db"
    description = "table_db.c: a Berkeley DB file (makemap), read in the lka"


class _Measured(Backend):
    """A table process whose costs were measured on the real daemon."""

    def defaults(self) -> dict[str, Any]:
        b = measured().get("backend", {}).get(self.name)
        if b is None:
            raise ValueError(f"{CALIBRATION_FILE}: no [backend.{self.name}] figures")
        return {"cpu_s": float(b["cpu_s"]), "lookup_s": float(b["lookup_s"]),
                "concurrency": int(b.get("concurrency", 1)), "lka_cpu_s": float(b.get("lka_cpu_s", 0.0)),
                "source": f"scenarios/calibration/{CALIBRATION_FILE} [backend.{self.name}]"}


class SqliteBackend(_Measured):
    name = "sqlite"
    description = "table-sqlite (extras): SQLite in the table process itself"


class RedisBackend(_Measured):
    name = "redis"
    description = "table-redis (extras): hiredis requests to a redis-server"


class _Unmeasured(Backend):
    """A table process in front of a server we have not measured: ``lookup_s`` is required."""

    lookup_s = None
    concurrency = 1

    def defaults(self) -> dict[str, Any]:
        try:
            b = measured().get("backend", {}).get("redis")
        except ValueError:
            b = None
        if b is None:
            return {"cpu_s": 0.0, "lookup_s": None, "concurrency": self.concurrency, "lka_cpu_s": 0.0,
                    "source": "lookup_s: user parameter; cpu_s, lka_cpu_s: 0 (no measured stand-in)"}
        # the lka's side is table_proc.c whatever the program: table-redis's figure applies
        return {"cpu_s": float(b["cpu_s"]), "lookup_s": None, "concurrency": self.concurrency,
                "lka_cpu_s": float(b.get("lka_cpu_s", 0.0)),
                "source": f"lookup_s: user parameter; cpu_s: table-redis's measured CPU as a stand-in, "
                          f"lka_cpu_s: table-redis's (the lka side is table_proc.c for every program) "
                          f"(scenarios/calibration/{CALIBRATION_FILE})"}


class LdapBackend(_Unmeasured):
    name = "ldap"
    description = "table-ldap (extras): LDAP search on a directory server"


class MysqlBackend(_Unmeasured):
    name = "mysql"
    description = "table-mysql (extras): a query on a MySQL server"


class PostgresBackend(_Unmeasured):
    name = "postgres"
    description = "table-postgres (extras): a query on a PostgreSQL server"


class SocketmapBackend(_Unmeasured):
    name = "socketmap"
    description = "table-socketmap (extras): the sendmail socketmap protocol to a map server"


BUILTIN: tuple[type[Backend], ...] = (StaticBackend, DbBackend, LdapBackend, MysqlBackend, PostgresBackend,
                                      RedisBackend, SocketmapBackend, SqliteBackend)


# ---- the registry ----------------------------------------------------------------------

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


def discover(refresh: bool = False) -> dict[str, Backend | str]:
    """Built-ins plus the entry points; a plugin that fails to load is kept as its error
    text (reported when that backend is asked for), a plugin may not shadow a built-in."""
    found: dict[str, Backend | str] = {cls.name: cls() for cls in BUILTIN}
    for name, (obj, err) in load(TABLE_ENTRY_POINT_GROUP, refresh=refresh).items():
        if name in found:
            continue
        if err:
            found[name] = f"table backend {name!r} {err}"
            continue
        try:
            backend = _instantiate(obj)
        except Exception as e:  # a broken plugin must not break the core
            found[name] = f"table backend {name!r} failed to load: {type(e).__name__}: {e}"
            continue
        backend.name = name
        found[name] = backend
    return found


def backends(refresh: bool = False) -> dict[str, Backend | str]:
    """Every backend name known now (cached; ``refresh`` re-reads the entry points)."""
    global _cache
    if _cache is None or refresh:
        _cache = discover(refresh)
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
