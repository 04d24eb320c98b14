"""Summarise a py-spy ``--format raw`` profile (collapsed stacks): the functions with the
most samples on top of the stack (self) and anywhere in it (total), in percent of all
samples, as a Markdown table.

    python benchmarks/profile_summary.py prof.txt [--top 25] [--within Environment.run]

``--within``: only the samples whose stack holds that function (the simulation loop, not
the imports and the scenario's validation), in percent of those.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m["file"]
    for anchor in ("smtpd_sim/", "simpy/", "site-packages/", "lib/python"):
        if anchor in path:
            path = path[path.index(anchor):]
            break
    return f"{m['fn']} ({path})"


def summarise(path: str, top: int, within: str = "") -> list[str]:
    self_n: Counter[str] = Counter()
    total_n: Counter[str] = Counter()
    samples = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            n = int(count)
            frames = [_short(f) for f in stack.split(";")]
            if within and not any(f.startswith(within + " ") for f in frames):
                continue
            samples += n
            self_n[frames[-1]] += n
            for f in set(frames):
                total_n[f] += n
    lines = [f"{samples} samples", "", "| function | self % | total % |", "|---|---:|---:|"]
    for fn, n in self_n.most_common(top):
        lines.append(f"| `{fn}` | {100 * n / samples:.1f} | {100 * total_n[fn] / samples:.1f} |")
    lines += ["", "Largest totals (inclusive):", "", "| function | total % | self % |", "|---|---:|---:|"]
    for fn, n in total_n.most_common(top):
        lines.append(f"| `{fn}` | {100 * n / samples:.1f} | {100 * self_n[fn] / samples:.1f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--within", default="")
    a = ap.parse_args()
    print("\n".join(summarise(a.profile, a.top, a.within)))


if __name__ == "__main__":
    main()
