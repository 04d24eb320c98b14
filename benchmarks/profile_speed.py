"""Where the model's CPU goes: the `make bench` load (pony-6.8, 100 sessions/s, streaming)
without the interleaved SimPy, to run under a sampling profiler.

    py-spy record --format raw -o prof.txt -- python benchmarks/profile_speed.py 5000
    python benchmarks/profile_summary.py prof.txt

``SMTPD_SIM_PURE=1`` profiles the pure-Python model.
"""

from __future__ import annotations

import sys

from smtpd_sim import native

native.prepare()

from smtpd_sim.studies.bench import model_run  # noqa: E402

if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    r = model_run(n)
    print(f"{n} messages: {r['imsgs']} imsgs, {r['cpu_s']:.2f} s CPU, "
          f"{r['cpu_ms_per_message']:.3f} ms/message")
