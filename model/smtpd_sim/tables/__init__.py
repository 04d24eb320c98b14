"""Table backends as plugins (issue 9 part 3): the lka's tables (aliases) in-process or
as forked table processes, discovered through the ``smtpd_sim.tables`` entry points.

Configure a table in a site or a scenario TOML (the scenario's fields win, field by
field; every field is a dotted scenario key such as ``tables.aliases.lookup_s``)::

    [tables.aliases]
    backend = "ldap"        # static db | ldap mysql postgres redis socketmap sqlite | a plugin's
    lookup_s = 0.002        # off-CPU wait on the backend server per lookup
    cpu_s = 8e-5            # CPU per lookup (the table process's; the lka's for static/db)
    lka_cpu_s = 6e-5        # the lka's own CPU per table-process lookup (table_proc.c)
    concurrency = 4         # lookups the server serves at once
    miss_tempfails = false  # a missing key is an error (Debian's table-redis): 424 to the client
    blocking = true         # 6.8: the lka blocks on each lookup; false = asynchronous what-if

Unset fields take the backend's defaults (sqlite and redis: measured on the real daemon,
``scenarios/calibration/tables-6.8.toml``). With a table configured the lka looks up
every username it expands (``aliases.c:aliases_get()``), hit or miss; without one it
behaves as before (aliases from the site, no cost).
"""

from smtpd_sim.tables.base import Backend, InprocTable, Table, TableParams, TableProcess, open_tables
from smtpd_sim.tables.registry import ENTRY_POINT_GROUP, backends, get_backend
from smtpd_sim.tables.spec import TABLE_NAMES, TableSpec, check_table_names, merge_tables

__all__ = ["ENTRY_POINT_GROUP", "TABLE_NAMES", "Backend", "InprocTable", "Table", "TableParams", "TableProcess",
           "TableSpec", "backends", "check_table_names", "get_backend", "merge_tables", "open_tables"]
