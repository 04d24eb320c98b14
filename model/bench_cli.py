"""The ``bench`` command: speed against bare SimPy, measured in the same process."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    from model.cli import console, err_console, user_errors

    @app.command()
    @user_errors
    def bench(
        sizes: Annotated[str, typer.Option(help="Message counts for the scaling runs")] = "1000,10000,100000",
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    ) -> None:
        """Bare SimPy ping-pong hops/s vs the model's imsgs/s (pony-6.8, load workload)."""
        from model.bench import run_bench

        try:
            scaling = tuple(int(x) for x in sizes.split(",") if x)
        except ValueError:
            from model.cli import fail

            fail(f"--sizes: expected comma-separated integers, got {sizes!r}")
            return

        def progress(what: str, r: dict) -> None:
            rate = r.get("hops_per_s") or r.get("imsgs_per_s")
            err_console.print(f"  {what:>12}: {rate:,.0f}/s ({r['wall_s']:.2f} s)")

        res = run_bench(scaling, progress=None if as_json else progress)
        if as_json:
            sys.stdout.write(json.dumps(res) + "\n")
            return
        console.print(f"bare SimPy ping-pong : {res['simpy_hops_per_s']:>10,.0f} hops/s")
        console.print(f"model (pony-6.8)     : {res['model_imsgs_per_s']:>10,.0f} imsgs/s")
        console.print(f"ratio                : {res['ratio']:.2f} (goal >= 0.5)")
        for r in res["scaling"]:
            console.print(f"  {r['messages']:>7} messages: {r['imsgs']:>9} imsgs in {r['wall_s']:7.2f} s, "
                          f"{r['wall_ms_per_message']:.3f} ms/message")
        for m in res["memory"]:
            console.print(f"  peak traced memory, {m['messages']:>6} messages: {m['peak_traced_bytes'] / 1e6:.1f} MB")
