"""``smtpd-sim serve`` under load: messages per second with the durable queue and without
(``--ephemeral``), and the most concurrent clients it holds with nothing lost.

For each mode and each client count, a fresh ``smtpd-sim serve`` (a subprocess, in a
temporary directory) takes that many concurrent SMTP clients (asyncio, one connection
each, ``--per-client`` messages each, to alice, bob and carol); the clock runs from the
first connection to the last client done. Then the server gets ``--drain`` seconds at
most to deliver, is stopped, and every message answered 250 is looked for (by its
Message-ID) in the maildirs and in the queue directory: one that is in neither is
*lost*, one in a maildir twice is *duplicated*. With ``--ephemeral`` whatever was not
delivered when serve stops is lost: that is the point of the comparison.

    .venv/bin/python benchmarks/bench_serve.py [--clients 200,500,1000,2000] [--per-client 5]
                                               [--modes durable,ephemeral] [--drain 120] [--json]

Run it by hand (``make bench-serve``), not in ``make test``: the large settings take
minutes and every core. The figures depend on the machine (fsync latency above all).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import smtpd_sim
from smtpd_sim.serve.store import delivered_ids, queued_ids

MODEL = str(Path(smtpd_sim.__file__).parents[1])
USERS = ("alice", "bob", "carol")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(cwd: Path, port: int, durable: bool) -> subprocess.Popen[bytes]:
    """``smtpd-sim serve`` in ``cwd``; returns once it prints its start line."""
    args = ["--queue", "q"] if durable else ["--ephemeral"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [MODEL, os.environ.get("PYTHONPATH")])))
    out = open(cwd / "serve.out", "wb")  # noqa: SIM115 - the child keeps it
    err = open(cwd / "serve.err", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "smtpd_sim", "serve", "--port", str(port), "--tls-port", "0",
                             "--maildir", "m", "--spool", "spool.mbox", *args],
                            cwd=cwd, env=env, stdout=out, stderr=err)
    deadline = time.monotonic() + 60
    while "Ctrl-C stops" not in (cwd / "serve.out").read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"serve did not start: {(cwd / 'serve.err').read_text()[-500:]}")
        time.sleep(0.05)
    return proc


async def _client(port: int, i: int, n: int, accepted: list[str], errors: list[str]) -> None:
    """One connection, ``n`` messages; each Message-ID answered 250 is recorded."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 60)
    except (TimeoutError, OSError) as e:
        errors.append(f"connect: {e!r}")
        return

    async def reply() -> bytes:
        while True:
            line = await asyncio.wait_for(reader.readline(), 60)
            if not line:
                raise ConnectionError("closed by the server")
            if line[3:4] != b"-":
                return line

    try:
        await reply()
        writer.write(b"EHLO bench.test\r\n")
        await reply()
        for k in range(n):
            mid = f"<{i}-{k}@bench.test>"
            for cmd in (b"MAIL FROM:<bench@local.test>\r\n", f"RCPT TO:<{USERS[(i + k) % 3]}@local.test>\r\n".encode(),
                        b"DATA\r\n"):
                writer.write(cmd)
                await reply()
            writer.write(f"Message-ID: {mid}\r\nSubject: bench {i}-{k}\r\n\r\nbench\r\n.\r\n".encode())
            if (await reply()).startswith(b"250"):
                accepted.append(mid)
        writer.write(b"QUIT\r\n")
        await reply()
    except (TimeoutError, OSError, ConnectionError) as e:
        errors.append(f"session: {e!r}")
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def _load(port: int, clients: int, per_client: int) -> tuple[list[str], list[str], float]:
    accepted: list[str] = []
    errors: list[str] = []
    t0 = time.monotonic()
    await asyncio.gather(*(_client(port, i, per_client, accepted, errors) for i in range(clients)))
    return accepted, errors, time.monotonic() - t0


def _delivered(d: Path) -> collections.Counter[str]:
    return delivered_ids(d / "m")


def _queued(d: Path) -> set[str]:
    return queued_ids(d / "q")


def run_one(durable: bool, clients: int, per_client: int, drain: float) -> dict[str, Any]:
    """One fresh server, one load, the drain, the count."""
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        d = Path(tmp)
        port = _free_port()
        proc = _start(d, port, durable)
        try:
            accepted, errors, wall = asyncio.run(_load(port, clients, per_client))
            deadline = time.monotonic() + drain
            while time.monotonic() < deadline:
                delivered = _delivered(d)
                if all(delivered[m] for m in accepted):
                    break
                time.sleep(0.5)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        delivered, queued = _delivered(d), _queued(d)
        crashed = "Traceback" in (d / "serve.err").read_text()
    lost = sum(1 for m in accepted if not delivered[m] and m not in queued)
    return {
        "mode": "durable" if durable else "ephemeral", "clients": clients, "messages": clients * per_client,
        "accepted": len(accepted), "errors": len(errors), "first_error": errors[0] if errors else "",
        "wall_s": round(wall, 2), "accepted_per_s": round(len(accepted) / wall, 1) if wall else 0.0,
        "delivered": sum(1 for m in accepted if delivered[m]), "queued": sum(1 for m in accepted if m in queued),
        "lost": lost, "duplicated": sum(1 for c in delivered.values() if c > 1), "server_traceback": crashed,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", default="200,500,1000,2000", help="concurrent client counts, comma-separated")
    ap.add_argument("--per-client", type=int, default=5, help="messages per client connection")
    ap.add_argument("--modes", default="durable,ephemeral", help="durable and/or ephemeral")
    ap.add_argument("--drain", type=float, default=120.0, help="seconds to let the server deliver")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    a = ap.parse_args()
    try:
        counts = [int(x) for x in a.clients.split(",") if x]
        modes = [m for m in a.modes.split(",") if m]
        if not counts or any(c < 1 for c in counts) or a.per_client < 1 or set(modes) - {"durable", "ephemeral"}:
            raise ValueError
    except ValueError:
        sys.stderr.write("bench_serve: --clients takes positive integers, --modes durable,ephemeral\n")
        raise SystemExit(2) from None
    # every client and every server connection is a file descriptor
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(counts) + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    rows = []
    for mode in modes:
        for n in counts:
            row = run_one(mode == "durable", n, a.per_client, a.drain)
            rows.append(row)
            if not a.json:
                print(f"  {mode:9} {n:5} clients: {row['accepted']}/{row['messages']} accepted, "
                      f"{row['accepted_per_s']} msg/s, {row['lost']} lost", flush=True)
    if a.json:
        print(json.dumps(rows, indent=1))
        return
    cols = ["mode", "clients", "messages", "accepted", "errors", "wall_s", "accepted_per_s", "delivered",
            "queued", "lost", "duplicated"]
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r[c]).rjust(w) for c, w in zip(cols, widths, strict=True)))
    for mode in modes:
        ok = [r["clients"] for r in rows if r["mode"] == mode and not r["lost"] and not r["errors"]
              and r["accepted"] == r["messages"] and not r["server_traceback"]]
        print(f"largest client count held with 0 lost, 0 errors ({mode}): {max(ok) if ok else 'none'}")
    for r in rows:
        if r["first_error"] or r["server_traceback"]:
            print(f"note: {r['mode']} {r['clients']} clients: {r['errors']} client errors "
                  f"(first: {r['first_error']}){'; serve printed a traceback' if r['server_traceback'] else ''}")


if __name__ == "__main__":
    main()
