"""An example smtpd-sim table backend shipped as its own package.

``table-http`` is a hypothetical OpenSMTPD-extras-style program: the lka forks it
(``table_proc.c``) and each lookup becomes one HTTP GET to a key-value service. In
the model it is a table process like ldap or redis: ``cpu_s`` of its own CPU per
lookup, then ``lookup_s`` waiting on the service, which serves ``concurrency``
requests at once.
"""

from __future__ import annotations

from smtpd_sim.spec.backends import Backend

__all__ = ["HttpBackend"]


class HttpBackend(Backend):
    """A forked table process doing one HTTP request per lookup."""

    name = "http"
    external = True
    description = "table-http (example plugin): GET /aliases/<key> on a key-value service"
    cpu_s = 60e-6  # user parameter: request building and JSON parsing in the table process
    lookup_s = 1e-3  # user parameter: a service on the LAN answering in about a millisecond
    concurrency = 8  # user parameter: the service's worker pool
    source = "smtpd-sim-table-example defaults (user parameters, not measured)"
