"""The ``serve`` command: the simulated daemon as a real SMTP server on loopback."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from smtpd_sim.cli.common import PORT, SEED, console, err_console, fail, user_errors
from smtpd_sim.spec.scenario import DEFAULT_ERA, RESEARCH_SITE


@user_errors
def serve(
    era: Annotated[str, typer.Option(help="Era to simulate behind the socket")] = DEFAULT_ERA,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Plain SMTP port (0: the system picks one)", **PORT)] = 2525,
    tls_port: Annotated[int, typer.Option(help="Port whose EHLO advertises STARTTLS (0: none)", **PORT)] = 2587,
    site: Annotated[str, typer.Option(help="Site name or TOML (default: the research smtpd.conf)")] = RESEARCH_SITE,
    maildir: Annotated[Path, typer.Option(help="Where local users' maildirs are written")] = Path("maildirs"),
    spool: Annotated[Path, typer.Option(help="mbox file receiving relayed mail")] = Path("relay-spool.mbox"),
    trace: Annotated[bool, typer.Option("--trace", help="Log every imsg to stderr (-T imsg format)")] = False,
    seed: Annotated[int, typer.Option(help="Random seed", **SEED)] = 1,
) -> None:
    """Speak SMTP on TCP through the simulated daemon, in real time."""
    from smtpd_sim.serve.server import LiveServer

    if tls_port and tls_port == port:
        fail(f"--tls-port {tls_port}: the same port as --port (give another, or 0 for no STARTTLS listener)")

    server = LiveServer(era, site=site, maildir=maildir, spool=spool,
                        trace=sys.stderr if trace else None, seed=seed)
    console.print(f"smtpd-sim serving {era} on {host}:{port}"
                  + (f" and {host}:{tls_port} (STARTTLS)" if tls_port else "")
                  + f"; maildirs in {maildir}, relayed mail in {spool}. Ctrl-C stops.")
    try:
        asyncio.run(server.serve(host, port, tls_port or None))
    except OSError as e:
        fail(f"cannot listen on {host}:{port}: {e.strerror}")
    except KeyboardInterrupt:
        err_console.print(f"stopped: {server.delivered} delivered, {server.relayed} relayed")
