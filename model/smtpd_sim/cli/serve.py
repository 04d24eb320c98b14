"""The ``serve`` command: the simulated daemon as a real SMTP server on loopback."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from smtpd_sim.cli.common import PORT, SEED, SetOption, console, err_console, fail, user_errors
from smtpd_sim.spec.scenario import DEFAULT_CALIBRATION, DEFAULT_ERA, RESEARCH_SITE

# smtpd_sim.serve.net's defaults, not imported: that module imports the compiled hot path,
# which must not load before native.prepare() (tests/serve/test_cli.py checks they agree)
SMTPD_SESSION_TIMEOUT = 300.0  # smtpd.h SMTPD_SESSION_TIMEOUT (s)
DEFAULT_MAX_BODY_SIZE = 35 * 1024 * 1024  # smtpd.h DEFAULT_MAX_BODY_SIZE

DEFAULT_QUEUE = "smtpd-sim-queue"  # the queue directory when neither --queue nor --ephemeral


@user_errors
def serve(
    era: Annotated[str, typer.Option(help="Era to simulate behind the socket")] = DEFAULT_ERA,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Plain SMTP port (0: the system picks one)", **PORT)] = 2525,
    tls_port: Annotated[int, typer.Option(help="Port whose EHLO advertises STARTTLS (0: none)", **PORT)] = 2587,
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
    seed: Annotated[int, typer.Option(help="Random seed", **SEED)] = 1,
    smtps_port: Annotated[int, typer.Option(help="SMTPS port: TLS from the first byte (0: none)", **PORT)] = 0,
    cert: Annotated[Path | None, typer.Option(help="PEM certificate for STARTTLS/SMTPS (default: a self-signed one made at start)")] = None,
    key: Annotated[Path | None, typer.Option(help="PEM private key of --cert")] = None,
    session_timeout: Annotated[float, typer.Option(help="Seconds a session may stay idle (SMTPD_SESSION_TIMEOUT)",
                                                   min=0.001, max=86400.0)] = SMTPD_SESSION_TIMEOUT,
    max_sessions: Annotated[int, typer.Option(help="Concurrent sessions before accept() pauses (0: from the descriptor table, as smtp.c)",
                                              min=0, max=1_000_000)] = 0,
    max_sessions_per_ip: Annotated[int, typer.Option(help="Sessions per client address, then 421 (0: none; serve's own limit, 6.8 has none)",
                                                     min=0, max=1_000_000)] = 0,
    max_message_size: Annotated[int, typer.Option(help="smtp max-message-size in bytes (SIZE, then 554)",
                                                  min=1, max=1 << 30)] = DEFAULT_MAX_BODY_SIZE,
    sets: SetOption = None,
) -> None:
    """Speak SMTP on TCP through the simulated daemon, in real time."""
    from smtpd_sim.serve.net import BindError, NetOptions, PumpError
    from smtpd_sim.serve.server import LiveServer
    from smtpd_sim.serve.tls import server_context

    if ephemeral and queue is not None:
        fail("--queue and --ephemeral exclude each other")
    if tls_port and tls_port == port:
        fail(f"--tls-port {tls_port}: the same port as --port (give another, or 0 for no STARTTLS listener)")
    if smtps_port and smtps_port in (port, tls_port):
        fail(f"--smtps-port {smtps_port}: the same port as another listener (give another, or 0 for none)")
    if (cert is None) != (key is None):
        fail("--cert and --key go together (or neither: a self-signed pair is made)")
    if max_sessions < 0:
        fail(f"--max-sessions: expected 0 (from the descriptor table) or more, got {max_sessions}")
    ctx = server_context(cert, key) if cert is not None and key is not None else None
    net = NetOptions(session_timeout=session_timeout, max_sessions=max_sessions or None,
                     max_sessions_per_ip=max_sessions_per_ip, max_message_size=max_message_size,
                     ssl_context=ctx)
    qdir = None if ephemeral else (queue or Path(DEFAULT_QUEUE))
    given: dict[str, Any] = {"era": era, "site": site, "calibration": DEFAULT_CALIBRATION, "seed": seed}
    if sets:
        given, era = serve_parts(given, sets)
    try:
        server = LiveServer(given["era"], site=given["site"], calibration=given["calibration"], maildir=maildir,
                            spool=spool, queue=qdir,
                            trace=sys.stderr if trace else None, seed=given["seed"])
    except OSError as e:
        fail(f"cannot use the queue directory {qdir}: {e.strerror or e}")
    if qdir is None:
        durability = "queue in memory only (--ephemeral): accepted mail is lost when serve stops"
    else:
        durability = (f"queue in {qdir} (each 250 after fsync and rename; "
                      f"{server.reloaded} envelopes reloaded)")

    def ready(ports: dict[str, int]) -> None:
        parts = [f"{host}:{ports['plain']}"]
        if "starttls" in ports:
            parts.append(f"{host}:{ports['starttls']} (STARTTLS)")
        if "smtps" in ports:
            parts.append(f"{host}:{ports['smtps']} (SMTPS)")
        console.print(f"smtpd-sim serving {era} on {' and '.join(parts)}; maildirs in {maildir}, "
                      f"relayed mail in {spool}; {durability}. Ctrl-C stops.", soft_wrap=True)
        if server.tls_files is not None:
            console.print(f"self-signed TLS certificate: {server.tls_files[0]} (key {server.tls_files[1]})",
                          soft_wrap=True)
        sys.stdout.flush()

    # the edge's one-line reports (a connection's error, the session limit) on stderr
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    serve_log = logging.getLogger("smtpd_sim.serve")
    saved = (serve_log.level, serve_log.propagate)
    serve_log.addHandler(handler)
    serve_log.setLevel(logging.WARNING)
    serve_log.propagate = False
    try:
        asyncio.run(server.serve(host, port, tls_port or None, smtps_port=smtps_port or None,
                                 net=net, on_ready=ready))
    except BindError as e:
        fail(str(e))
    except PumpError as e:
        sys.stderr.write(f"smtpd-sim: fatal: {' '.join(str(e).split())}\n")
        sys.stderr.flush()
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        left = "" if server.store is None else \
            f"; {sum(map(len, server.store.queued().values()))} envelopes left in {qdir}"
        err_console.print(f"stopped: {server.delivered} delivered, {server.relayed} relayed{left}")
    finally:
        if server.store is not None:
            server.store.close()  # the queue directory's lock, for a next serve in this process
        serve_log.removeHandler(handler)
        serve_log.setLevel(saved[0])
        serve_log.propagate = saved[1]


# scenario keys serve has no use for (its clients are real, in real time)
SERVE_REFUSES = {
    "workload": "serve's clients are real: there is no workload to set",
    "fault": "serve injects no faults",
    "drain_s": "serve runs until Ctrl-C",
    "sample_s": "serve keeps no time series",
    "name": "serve has no results directory",
    "description": "serve has no results directory",
    "tables": "serve takes the site's tables (set site.tables.<name>.<field>)",
}


def serve_parts(parts: dict[str, Any], sets: list[str]) -> tuple[dict[str, Any], str]:
    """The era, site, calibration (objects) and seed after the ``--set``s, and the era's name;
    ``cores`` becomes the calibration's (the cores the daemon runs on)."""
    from smtpd_sim.spec.overrides import apply_overrides
    from smtpd_sim.spec.scenario import ScenarioSpec, resolve_scenario

    scen = resolve_scenario(apply_overrides(ScenarioSpec(name="serve", **parts), sets, refuse=SERVE_REFUSES))
    cal = scen.calibration if scen.cores is None else scen.calibration.model_copy(update={"cores": scen.cores})
    return {"era": scen.topology, "site": scen.site, "calibration": cal, "seed": scen.seed}, scen.era
