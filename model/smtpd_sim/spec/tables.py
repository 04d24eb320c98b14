"""The configuration of one table: ``[tables.<name>]`` in a site or a scenario.

``backend`` names a table backend (built-in or from the ``smtpd_sim.tables`` entry-point
group); the cost fields left unset take the backend's defaults (each default names its
source in the backend). Every field is reachable by a dotted scenario key, e.g.
``tables.aliases.lookup_s``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from smtpd_sim.errors import ModelError
from smtpd_sim.spec.files import Strict
from smtpd_sim.spec.limits import MAX_CLIENTS, MAX_COST_S

# The tables the model's lka looks things up in (lka_session.c:lka_expand() → aliases_get()).
TABLE_NAMES: tuple[str, ...] = ("aliases",)


class TableSpec(Strict):
    """``table <name> <backend>:<config>`` of smtpd.conf plus the costs of its lookups."""

    # 6.8 smtpd.conf `table aliases file:/etc/aliases` is the static backend
    backend: str = Field(default="static", description="the table backend (`smtpd-sim plugins` lists them: "
                         "static, db, sqlite, redis, ldap, ...)")
    config: str = Field(default="", description="the backend's config file (documentation only: the data is "
                        "the site's)")
    cpu_s: float | None = Field(default=None, ge=0, le=MAX_COST_S, description="CPU per lookup: the lka's for "
                                "an in-process backend, the table process's otherwise (unset: the backend's "
                                "default)")
    lookup_s: float | None = Field(default=None, ge=0, le=MAX_COST_S, description="off-CPU wait per lookup on "
                                   "the backend's server (unset: the backend's default; required for ldap, "
                                   "mysql, postgres, socketmap)")
    concurrency: int | None = Field(default=None, ge=1, le=MAX_CLIENTS, description="lookups the backend's "
                                    "server serves at once (unset: the backend's default)",
                                    json_schema_extra={"unit": "lookups"})
    lka_cpu_s: float | None = Field(default=None, ge=0, le=MAX_COST_S, description="table-process backends: the "
                                    "lka's own CPU per lookup (unset: the backend's default)")
    # a key not in the table is an error (lookup returns -1) rather than a miss: lka_expand()
    # tempfails the recipient (424 4.2.4). Debian's table-redis 6.7.1 does this with its
    # default `GET alias:%s` (measured: tables-6.8.toml rcpt_not_in_table); off by default
    miss_tempfails: bool = Field(default=False, description="a key not in the table is an error, and "
                                 "lka_expand() tempfails the recipient (table-redis 6.7.1 does this)")
    # 6.8's table_proc_lookup() blocks the lka (True, the default). False is a what-if: the
    # lka sends the lookup and goes on (an asynchronous table process, pipelined); only then
    # can the server's concurrency matter. Table processes only.
    blocking: bool = Field(default=True, description="the lka waits for each lookup (6.8's "
                           "table_proc_lookup()); false is a what-if: lookups pipelined")

    @field_validator("backend")
    @classmethod
    def _known(cls, v: str) -> str:
        from smtpd_sim.spec.backends import get_backend

        get_backend(v)  # raises ValueError naming the known backends
        return v

    @model_validator(mode="after")
    def _resolvable(self) -> TableSpec:
        from smtpd_sim.spec.backends import get_backend

        get_backend(self.backend).resolve(self)  # e.g. ldap without lookup_s: say so now
        return self


def merge_tables(base: dict[str, TableSpec], over: dict[str, TableSpec]) -> dict[str, TableSpec]:
    """The site's tables with the scenario's on top, field by field (only the fields the
    scenario set), so ``--vary tables.aliases.lookup_s=...`` keeps the site's backend."""
    out = dict(base)
    for name, spec in over.items():
        if name in out:
            data: dict[str, Any] = out[name].model_dump()
            data.update({k: getattr(spec, k) for k in spec.model_fields_set})
            try:
                out[name] = TableSpec.model_validate(data)
            except ValidationError as e:
                msg = e.errors()[0]["msg"].removeprefix("Value error, ")
                raise ModelError(f"tables.{name}: {msg}") from None
        else:
            out[name] = spec
    return out


def check_table_names(tables: dict[str, Any]) -> dict[str, Any]:
    """Only tables the lka consults may be configured (a typo would otherwise be silent)."""
    for name in tables:
        if name not in TABLE_NAMES:
            raise ValueError(f"unknown table {name!r} (the model's lka looks up: {', '.join(TABLE_NAMES)})")
    return tables
