"""smtpd-sim: the OpenSMTPD daemon as simulated privilege-separated processes."""

import os as _os

from smtpd_sim.native import drop_stale as _drop_stale
from smtpd_sim.native import use_pure_python as _use_pure_python

_drop_stale()  # a compiled module older than its source must not shadow it
if _os.environ.get("SMTPD_SIM_PURE"):
    _use_pure_python()
