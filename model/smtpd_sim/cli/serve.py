"""The ``serve`` command: the simulated daemon as a real SMTP server on loopback."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from smtpd_sim.cli.common import console, err_console, fail, user_errors
from smtpd_sim.spec.scenario import DEFAULT_ERA, RESEARCH_SITE

DEFAULT_QUEUE = "smtpd-sim-queue"  # the queue directory when neither --queue nor --ephemeral


@user_errors
def serve(
    era: Annotated[str, typer.Option(help="Era to simulate behind the socket")] = DEFAULT_ERA,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Plain SMTP port")] = 2525,
    tls_port: Annotated[int, typer.Option(help="Port whose EHLO advertises STARTTLS (0: none)")] = 2587,
    site: Annotated[str, typer.Option(help="Site name or TOML (default: the research smtpd.conf)")] = RESEARCH_SITE,
    maildir: Annotated[Path, typer.Option(help="Where local users' maildirs are written")] = Path("maildirs"),
    spool: Annotated[Path, typer.Option(help="mbox file receiving relayed mail")] = Path("relay-spool.mbox"),
    queue: Annotated[Path | None, typer.Option(
        help=f"Queue directory: each message is written, fsynced and renamed into it before its 250, "
             f"and what it holds is delivered at start-up [default: ./{DEFAULT_QUEUE}]")] = None,
    ephemeral: Annotated[bool, typer.Option(
        "--ephemeral", help="Keep the queue in memory only (teaching runs): accepted mail is lost "
                            "when serve stops")] = False,
    trace: Annotated[bool, typer.Option("--trace", help="Log every imsg to stderr (-T imsg format)")] = False,
    seed: Annotated[int, typer.Option(help="Random seed")] = 1,
) -> None:
    """Speak SMTP on TCP through the simulated daemon, in real time."""
    if ephemeral and queue is not None:
        fail("--queue and --ephemeral exclude each other")
    from smtpd_sim.serve.server import LiveServer

    qdir = None if ephemeral else (queue or Path(DEFAULT_QUEUE))
    try:
        server = LiveServer(era, site=site, maildir=maildir, spool=spool, queue=qdir,
                            trace=sys.stderr if trace else None, seed=seed)
    except OSError as e:
        fail(f"cannot use the queue directory {qdir}: {e.strerror or e}")
    if qdir is None:
        durability = "queue in memory only (--ephemeral): accepted mail is lost when serve stops"
    else:
        durability = (f"queue in {qdir} (each 250 after fsync and rename; "
                      f"{server.reloaded} envelopes reloaded)")
    console.print(f"smtpd-sim serving {era} on {host}:{port}"
                  + (f" and {host}:{tls_port} (STARTTLS)" if tls_port else "")
                  + f"; maildirs in {maildir}, relayed mail in {spool}; {durability}. Ctrl-C stops.",
                  soft_wrap=True)
    sys.stdout.flush()
    try:
        asyncio.run(server.serve(host, port, tls_port or None))
    except OSError as e:
        fail(f"cannot listen on {host}:{port}: {e.strerror}")
    except KeyboardInterrupt:
        left = "" if server.store is None else \
            f"; {sum(map(len, server.store.queued().values()))} envelopes left in {qdir}"
        err_console.print(f"stopped: {server.delivered} delivered, {server.relayed} relayed{left}")
