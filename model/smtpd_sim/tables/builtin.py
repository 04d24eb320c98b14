"""The backends 6.8 ships (static, db) and the OpenSMTPD-extras table processes.

Defaults and their sources:

* ``static`` and ``db`` run inside the lka (``table_static.c`` walks an in-memory dict;
  ``table_db.c`` reads a Berkeley DB btree — not built in Debian's 6.8.0p2). Their
  default extra cost is 0: the lookup is part of the lka handler's CPU as calibrated
  (``SMTP_EXPAND_RCPT`` in scenarios/calibration/*-6.8.toml); a user parameter.
* ``sqlite`` and ``redis``: measured on the real 6.8.0p2 with Debian's
  opensmtpd-extras 6.7.1 by ``model/real/tables_bench.py``; the figures are read from
  ``scenarios/calibration/tables-6.8.toml`` (how they were taken is written there).
* ``ldap``, ``mysql``, ``postgres``, ``socketmap``: a server we did not measure; the
  lookup wait must be given (``lookup_s``), the table process's own CPU defaults to the
  one measured for table-redis (the same ``api/table_api.c`` loop plus a client
  library's request/parse), a stand-in named as such.
"""

from __future__ import annotations

import tomllib
from functools import cache
from typing import Any

from smtpd_sim.spec.paths import scenario_dir
from smtpd_sim.tables.base import Backend

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
