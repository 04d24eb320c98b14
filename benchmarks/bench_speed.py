"""`make bench`: the model's imsgs and bare SimPy's hops per CPU second, in one process.

The two run interleaved slice by slice, so a shared machine's drifting speed hits both
alike. Prints both rates, their ratio (goal: the model at least 0.5 of SimPy), how CPU
time per message scales from 1k to 100k messages, and memory: allocated blocks and
envelopes in flight at every size, peak traced memory for 1k and 10k messages (the runs
stream, so it should not grow with the number of messages that have passed). Arguments:
the scaling sizes. ``SMTPD_SIM_PURE=1`` measures the pure-Python model.
"""

from __future__ import annotations

import json
import sys

from smtpd_sim import native

native.prepare()  # before the model loads: a stale build dropped, SMTPD_SIM_PURE honoured

from smtpd_sim.studies.bench import report_lines, run_bench  # noqa: E402


def main() -> None:
    sizes = tuple(int(x) for x in sys.argv[1:]) or (1_000, 10_000, 100_000)

    def progress(what: str, r: dict) -> None:
        print(f"  {what}: {r['imsgs_per_s']:,.0f} imsgs per CPU second ({r['cpu_s']:.2f} s)",
              file=sys.stderr, flush=True)

    result = run_bench(sizes, progress=progress)
    print("\n".join(report_lines(result)))
    print(json.dumps(result), file=sys.stderr)


if __name__ == "__main__":
    main()
