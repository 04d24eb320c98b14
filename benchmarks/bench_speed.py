"""`make bench`: bare SimPy ping-pong hops and the model's imsgs per second, in one process.

Prints both rates, their ratio (goal: the model at least 0.5 of SimPy), how wall time per
message scales from 1k to 100k messages, and peak traced memory for 1k and 10k messages
(it should not grow with the number of messages that have passed).
"""

from __future__ import annotations

import json
import sys

from model.bench import run_bench


def main() -> None:
    sizes = tuple(int(x) for x in sys.argv[1:]) or (1_000, 10_000, 100_000)

    def progress(what: str, r: dict) -> None:
        rate = r.get("hops_per_s") or r.get("imsgs_per_s")
        print(f"  {what:>12}: {rate:,.0f} per second ({r['wall_s']:.2f} s)", file=sys.stderr, flush=True)

    result = run_bench(sizes, progress=progress)
    print(f"bare SimPy ping-pong : {result['simpy_hops_per_s']:>10,.0f} hops/s")
    print(f"model (pony-6.8)     : {result['model_imsgs_per_s']:>10,.0f} imsgs/s")
    print(f"ratio                : {result['ratio']:.2f} (goal >= 0.5)")
    for r in result["scaling"]:
        print(f"  {r['messages']:>7} messages: {r['imsgs']:>9} imsgs, {r['wall_s']:7.2f} s, "
              f"{r['wall_ms_per_message']:.3f} ms/message")
    for m in result["memory"]:
        print(f"  peak traced memory, {m['messages']:>6} messages: {m['peak_traced_bytes'] / 1e6:.1f} MB")
    print(json.dumps(result), file=sys.stderr)


if __name__ == "__main__":
    main()
