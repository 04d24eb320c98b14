"""Table backends as plugins (issue 9 part 3): the lka's tables (aliases) in-process or
as forked table processes, discovered through the ``smtpd_sim.tables`` entry points."""

from model.tables.base import Backend, InprocTable, Table, TableParams, TableProcess, open_tables
from model.tables.registry import ENTRY_POINT_GROUP, backends, get_backend
from model.tables.spec import TABLE_NAMES, TableSpec, check_table_names, merge_tables

__all__ = ["ENTRY_POINT_GROUP", "TABLE_NAMES", "Backend", "InprocTable", "Table", "TableParams", "TableProcess",
           "TableSpec", "backends", "check_table_names", "get_backend", "merge_tables", "open_tables"]
