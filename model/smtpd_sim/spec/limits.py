"""The largest values a data file or a command may ask for: generous, but finite.

A number with no upper bound lets one typo (``rate_per_s = 1e12``, ``duration_s = 1e12``)
start a run that never finishes; every bound here is far beyond what a study of one
OpenSMTPD host needs, and each says why. The data models (``Field(le=...)``) and the
command line share them, so an error names the same range everywhere.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

# Simulated time of one run: a month. The real daemon's longest timer is the queue's
# expiry (6.8.0p2 smtpd.h SMTPD_QUEUE_EXPIRY, 4 days), so a month covers every retry and
# bounce with room to spare.
MAX_TIME_S = 31 * 86400.0
# Sessions (or messages, or recipients) one run may offer: 10^8. The pure-Python model simulates ~10^3
# sessions per wall second (the default scenario: 844 in 0.9 s), so this is already about a
# day of wall time.
MAX_SESSIONS = 100_000_000
# Arrival rate: 10^5 new sessions per second, ~100x what the model's 6.8 daemon sustains on
# 8 cores (README capacity figures: about a thousand messages per second).
MAX_RATE_PER_S = 100_000.0
# Clients open at once (closed loop, or the open loop's cap): 10^5, above the daemon's own
# `smtp max-sessions`-style limits by far.
MAX_CLIENTS = 100_000
# CPU cores of the simulated host.
MAX_CORES = 1024
# Time-series samples of one run ((arrival window + drain) / sample_s): 10^6 rows.
MAX_SAMPLES = 1_000_000
# One cost or latency (CPU seconds per handler, per hop, per lookup): an hour. Measured
# costs are microseconds; an hour per item is a typo, not a what-if.
MAX_COST_S = 3600.0
# A message body: 1 GiB (6.8.0p2 smtpd.h DEFAULT_MAX_BODY_SIZE is 35 MiB).
MAX_SIZE_BYTES = 1 << 30
# Memory of one process (rss_bytes): 1 TiB.
MAX_RSS_BYTES = 1 << 40
# Seeds: what a TOML integer holds (a signed 64-bit integer), non-negative.
MAX_SEED = (1 << 63) - 1
# Replications of a sweep point.
MAX_REPLICATIONS = 10_000
# TCP ports.
MAX_PORT = 65535

# A cost or a latency in seconds, as the data models type it (dict values included).
Cost = Annotated[float, Field(ge=0, le=MAX_COST_S, description=f"seconds, 0 <= x <= {MAX_COST_S:g}")]
