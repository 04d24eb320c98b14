"""The ``bench`` command: speed against bare SimPy, measured in the same process."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from smtpd_sim.cli.common import err_console, fail, user_errors
from smtpd_sim.spec.limits import MAX_SESSIONS


@user_errors
def bench(
    sizes: Annotated[str, typer.Option(help="Message counts for the scaling runs")] = "1000,10000,100000",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Bare SimPy ping-pong hops/s vs the model's imsgs/s (pony-6.8, load workload)."""
    from smtpd_sim.studies.bench import report_lines, run_bench

    try:
        scaling = tuple(int(x) for x in sizes.split(",") if x.strip())
    except ValueError:
        fail(f"--sizes: expected comma-separated integers, got {sizes!r}")
        return
    if not scaling or not all(1 <= n <= MAX_SESSIONS for n in scaling):
        fail(f"--sizes: expected comma-separated message counts, each 1 <= x <= {MAX_SESSIONS}, got {sizes!r}")

    def progress(what: str, r: dict) -> None:
        err_console.print(f"  {what}: {r['imsgs_per_s']:,.0f} imsgs per CPU second ({r['cpu_s']:.2f} s)")

    res = run_bench(scaling, progress=None if as_json else progress)
    if as_json:
        sys.stdout.write(json.dumps(res) + "\n")
        return
    sys.stdout.write("\n".join(report_lines(res)) + "\n")
