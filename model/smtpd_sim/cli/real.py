"""The ``real`` commands: the real OpenSMTPD 6.8.0p2 on loopback in a network namespace
(root): validate the simulator against it, record its traces, load it, run one dialog,
measure its table lookups. Each parses, calls :mod:`smtpd_sim.real` or a study, prints."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from smtpd_sim.cli.common import check_range, fail, user_errors
from smtpd_sim.spec.limits import MAX_CLIENTS, MAX_PORT, MAX_REPLICATIONS, MAX_SESSIONS, MAX_TIME_S

WORKDIR = Path(tempfile.gettempdir()) / "smtpd-sim-real"  # conf/ and certs/ of the real daemon
TABLES_WORKDIR = Path(tempfile.gettempdir()) / "smtpd-sim-tables"


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """The harness's errors (all one line already) as one line on stderr and exit status 2."""
    from smtpd_sim.real.commands import RealDaemonError
    from smtpd_sim.real.procstat import ProcStatError
    from smtpd_sim.real.scenarios import DialogError
    from smtpd_sim.real.sink import SinkError

    try:
        yield
    except (RealDaemonError, DialogError, SinkError, ProcStatError) as e:
        fail(str(e))


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While the real daemon may run, SIGTERM (e.g. a CI timeout) unwinds like Ctrl-C, so the
    namespace and smtpd are cleaned up; the previous handler is put back afterwards."""
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_names(names: list[str] | None, long: bool) -> None:
    """Every scenario name known (and long ones only with --long), else one line and exit 2."""
    from smtpd_sim.real.scenarios import get_scenario

    with _one_line_errors():
        for name in names or []:
            get_scenario(name, long=long)


def _split(value: str, what: str) -> list[str]:
    items = [x.strip() for x in value.split(",") if x.strip()]
    if not items:
        fail(f"{what}: expected a comma-separated list, got {value!r}")
    return items


def _ints(value: str, what: str) -> list[int]:
    try:
        out = [int(x) for x in _split(value, what)]
    except ValueError:
        fail(f"{what}: expected comma-separated integers, got {value!r}")
        return []
    if min(out) < 1 or max(out) > MAX_CLIENTS:
        fail(f"{what}: every value must be 1 <= x <= {MAX_CLIENTS}, got {value!r}")
    return out


def _profile(prefix: Path | None, spool: Path | None) -> Any:
    """The daemon to run: Debian's 6.8.0p2, or the 5.4.2p1 build under ``prefix``."""
    from smtpd_sim.real.daemon import DEBIAN_68
    from smtpd_sim.real.profiles import source_build_542

    if prefix is None:
        if spool is not None:
            fail("--spool: only with --prefix (Debian's smtpd has its own spool)")
        return DEBIAN_68
    if spool is None:
        fail("--prefix: needs --spool (the spool compiled into that build)")
        raise AssertionError  # fail() exits
    return source_build_542(prefix, spool)


def _hops_text(rows: list[dict[str, Any]]) -> str:
    """``[{"hop": "smtp -> queue SMTP_MESSAGE_COMMIT", "count": 2}]`` as words, not a repr."""
    return ", ".join(f"{r['hop']} x{r['count']}" for r in rows) or "-"


def _reference_lines(cmp: dict[str, dict[str, Any]]) -> list[str]:
    """One line per scenario (and what differs) of a comparison with the reference traces."""
    lines = []
    for name, c in cmp.items():
        ok = c["multiset_equal"]
        lines.append(f"{name:24s} non-stat {c['non_stat_counts']['real']:3d} ref / {c['non_stat_counts']['sim']:3d} now  "
                     f"multiset {'equal' if ok else 'DIFFERENT'}  order ratio {c['sequence_ratio']:.3f}  "
                     f"stat {c['stat_counts']['real']} ref / {c['stat_counts']['sim']} now")
        if not ok:
            lines.append(f"    only in reference: {_hops_text(c['only_in_real'])}\n"
                         f"    only now: {_hops_text(c['only_in_sim'])}")
    return lines


app = typer.Typer(
    no_args_is_help=True,
    help="The real OpenSMTPD 6.8.0p2 (Debian package; root), run on loopback inside a network "
         "namespace: validate the simulator against it, record its traces, load it. traces and load "
         "also run a 5.4.2p1 built from source (--prefix, --spool).",
)

@app.command("validate")
@user_errors
def validate_cmd(
    names: Annotated[list[str] | None, typer.Argument(help="Scenarios (default: every non-long one)")] = None,
    long: Annotated[bool, typer.Option("--long", help="Also the retry scenarios (~10 minutes)")] = False,
    workdir: Annotated[Path | None, typer.Option(
        help="conf/ and certs/ of the real daemon (default results/validate-real)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Compare smtpd-sim with the real daemon: the same clients, hops and replies per scenario."""
    from smtpd_sim.studies.validate import print_table, validate

    _check_names(names, long)
    t0 = time.monotonic()
    with _sigterm_unwinds(), _one_line_errors():
        checks = validate(names or None, long=long, workdir=workdir, out=sys.stderr if as_json else sys.stdout)
    bad = [c.name for c in checks if not c.ok]
    if as_json:
        sys.stdout.write(json.dumps({"scenarios": [
            {"name": c.name, "ok": c.ok, "hops": c.hops, "replies": c.replies, "real_s": c.real_s,
             "sim_s": c.sim_s} for c in checks], "all_match": not bad}, default=str) + "\n")
    else:
        print_table(checks)
        print(f"{len(checks)} scenarios in {time.monotonic() - t0:.0f} s: "
              + ("all match" if not bad else f"MISMATCH in {', '.join(bad)}"))
    if bad:
        raise typer.Exit(1)

@app.command()
@user_errors
def traces(
    names: Annotated[list[str] | None, typer.Argument(help="Scenarios (default: every non-long one)")] = None,
    workdir: Annotated[Path, typer.Option(help="conf/ and certs/ of the real daemon go here")] = WORKDIR,
    out: Annotated[Path | None, typer.Option(help="Write traces/, csv/ and compare.json here")] = None,
    ref: Annotated[Path | None, typer.Option(
        help="Reference dir with csv/<name>.imsg.csv (default: the checkout's tests/data/real-traces)")] = None,
    long: Annotated[bool, typer.Option("--long", help="Include the retry scenarios (~10 min)")] = False,
    install_only: Annotated[bool, typer.Option(
        "--install-only", help="Install opensmtpd, dnsmasq and the test users, then exit")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as one JSON object")] = False,
    prefix: Annotated[Path | None, typer.Option(
        help="Run the OpenSMTPD 5.4.2p1 installed under this prefix (sbin/smtpd, sbin/smtpctl) "
             "instead of Debian's 6.8.0p2; needs --spool")] = None,
    spool: Annotated[Path | None, typer.Option(help="The spool compiled into the --prefix build")] = None,
) -> None:
    """Record the real daemon's traces and dialogs; compare them with the reference traces."""
    from smtpd_sim.real.dns import ensure_dnsmasq
    from smtpd_sim.real.install import check_prerequisites, ensure_test_users
    from smtpd_sim.real.runs import REFERENCE_DIR, compare_with_reference, run_real_scenarios

    _check_names(names, long)
    say = (lambda s: print(s, file=sys.stderr)) if as_json else print
    with _sigterm_unwinds(), _one_line_errors():
        profile = _profile(prefix, spool)
        if install_only:
            check_prerequisites()
            say(f"OpenSMTPD {profile.ensure()} installed")
            say(f"dnsmasq at {ensure_dnsmasq()}")
            ensure_test_users()
            return
        t0 = time.monotonic()
        runs = run_real_scenarios(workdir, names or None, long=long, outdir=out, progress=say, profile=profile)
        elapsed = time.monotonic() - t0
    cmp = compare_with_reference(runs, ref or REFERENCE_DIR)
    if as_json:
        sys.stdout.write(json.dumps(cmp, default=str) + "\n")
    else:
        for line in _reference_lines(cmp):
            print(line)
        print(f"total {elapsed:.1f} s for {len(runs)} scenarios")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.json").write_text(json.dumps(cmp, indent=1, default=str))
    if not all(c["multiset_equal"] for c in cmp.values()):
        raise typer.Exit(1)

@app.command()
@user_errors
def load(
    workdir: Annotated[Path, typer.Option(help="conf/, certs/ and logs/ of the real daemon go here")] = WORKDIR,
    modes: Annotated[str, typer.Option(help="Workloads, comma-separated: local, relay (accept-only)")] = "local,relay",
    concurrency: Annotated[str, typer.Option(help="Closed-loop clients per run, comma-separated")] = "1,4,16",
    duration: Annotated[float, typer.Option(help="Seconds of load per run")] = 10.0,
    repeats: Annotated[int, typer.Option(help="Runs of each (mode, concurrency)")] = 1,
    prefix: Annotated[Path | None, typer.Option(
        help="Load the OpenSMTPD 5.4.2p1 installed under this prefix instead of Debian's 6.8.0p2; needs --spool")] = None,
    spool: Annotated[Path | None, typer.Option(help="The spool compiled into the --prefix build")] = None,
) -> None:
    """Load fresh untraced daemons: JSON lines for calibrate --from (how, then one per run)."""
    from smtpd_sim.real.load import MODES, LoadError, how_measured, run_loads

    mode_list = _split(modes, "--modes")
    if unknown := [m for m in mode_list if m not in MODES]:
        fail(f"--modes: expected {' or '.join(MODES)}, got {', '.join(unknown)}")
    conc = _ints(concurrency, "--concurrency")
    check_range("--duration", duration, 0, MAX_TIME_S, lo_open=True)
    check_range("--repeats", repeats, 1, MAX_REPLICATIONS)
    runs = [(m, c) for _ in range(repeats) for m in mode_list for c in conc]

    def emit(record: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()

    with _sigterm_unwinds(), _one_line_errors():
        profile = _profile(prefix, spool)
        try:
            emit({"how": how_measured(duration, repeats, profile)})
            run_loads(workdir, runs, duration, progress=lambda res: emit(res.to_dict()), profile=profile)
        except LoadError as e:
            fail(str(e))

@app.command("load-worker", hidden=True)
@user_errors
def load_worker(
    pid: Annotated[int, typer.Option(min=1, help="PID of the running smtpd parent")],
    mode: Annotated[str, typer.Option(help="local or relay")],
    concurrency: Annotated[int, typer.Option(min=1, max=MAX_CLIENTS, help="Closed-loop clients")],
    duration: Annotated[float, typer.Option(help="Seconds of load")],
) -> None:
    """Drive one load run inside the daemon's namespace (started by real load): one JSON line."""
    from smtpd_sim.real.load import LoadError, measure

    check_range("--duration", duration, 0, MAX_TIME_S, lo_open=True)
    with _one_line_errors():
        try:
            sys.stdout.write(json.dumps(measure(pid, mode, concurrency, duration).to_dict()) + "\n")
        except LoadError as e:
            fail(str(e))

@app.command()
@user_errors
def dialog(
    name: Annotated[str, typer.Argument(help="Scenario (local-1rcpt, reject-rcpt, protocol-errors, ...)")],
    host: Annotated[str, typer.Argument(help="SMTP server address")] = "127.0.0.1",
    port: Annotated[int, typer.Argument(help="SMTP server port", min=1, max=MAX_PORT)] = 2525,
    tls_port: Annotated[int, typer.Option(help="Port of the STARTTLS listener", min=1, max=MAX_PORT)] = 2587,
    long: Annotated[bool, typer.Option("--long", help="Allow the long retry scenarios")] = False,
) -> None:
    """Run one scenario's SMTP client against any server; print its dialog (JSON)."""
    from smtpd_sim.real.scenarios import run_scenario_client

    _check_names([name], long)
    with _one_line_errors():
        d = run_scenario_client(name, host, port, tls_port=tls_port, long=long)
    sys.stdout.write(json.dumps(d, indent=1) + "\n")

@app.command("tables-bench")
@user_errors
def tables_bench(
    workdir: Annotated[Path, typer.Option(help="conf/, certs/ and the table files go here")] = TABLES_WORKDIR,
    out: Annotated[Path | None, typer.Option(help="Write the calibration TOML here (default: print it)")] = None,
    lookups: Annotated[int, typer.Option(min=1, max=MAX_SESSIONS, help="Direct table-protocol lookups per backend")] = 10000,
    messages: Annotated[int, typer.Option(min=1, max=MAX_SESSIONS, help="Messages per (backend, clients) daemon run")] = 300,
    repeats: Annotated[int, typer.Option(min=1, max=MAX_REPLICATIONS, help="Daemon runs per (backend, clients)")] = 5,
) -> None:
    """Measure alias lookups through OpenSMTPD-extras tables; print the calibration TOML."""
    from smtpd_sim.real.tables_bench import TablesBenchError, calibration_file

    with _sigterm_unwinds(), _one_line_errors():
        try:
            text = calibration_file(workdir, lookups=lookups, messages=messages, repeats=repeats)
        except TablesBenchError as e:
            fail(str(e))
            return
    if out is not None:
        out.write_text(text)
    sys.stdout.write(text + "\n")
