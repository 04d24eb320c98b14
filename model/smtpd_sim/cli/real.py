"""The ``real`` commands: the real OpenSMTPD 6.8.0p2 on loopback in a network namespace
(root): record its traces. Each parses, calls :mod:`smtpd_sim.real` or a study, prints."""

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

WORKDIR = Path(tempfile.gettempdir()) / "smtpd-sim-real"  # conf/ and certs/ of the real daemon


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """The harness's errors (all one line already) as one line on stderr and exit status 2."""
    from smtpd_sim.cli.app import fail
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


def _reference_lines(cmp: dict[str, dict[str, Any]]) -> list[str]:
    """One line per scenario (and what differs) of a comparison with the reference traces."""
    lines = []
    for name, c in cmp.items():
        ok = c["multiset_equal"]
        lines.append(f"{name:24s} non-stat {c['non_stat_counts']['real']:3d} ref / {c['non_stat_counts']['sim']:3d} now  "
                     f"multiset {'equal' if ok else 'DIFFERENT'}  order ratio {c['sequence_ratio']:.3f}  "
                     f"stat {c['stat_counts']['real']} ref / {c['stat_counts']['sim']} now")
        if not ok:
            lines.append(f"    only in reference: {c['only_in_real']}\n    only now: {c['only_in_sim']}")
    return lines


def register(app: typer.Typer) -> None:
    from smtpd_sim.cli.app import user_errors

    real = typer.Typer(
        no_args_is_help=True,
        help="The real OpenSMTPD 6.8.0p2 (Debian package; root), run on loopback inside a network "
             "namespace: record its traces.",
    )
    app.add_typer(real, name="real")

    @real.command()
    @user_errors
    def traces(
        names: Annotated[list[str] | None, typer.Argument(help="Scenarios (default: every non-long one)")] = None,
        workdir: Annotated[Path, typer.Option(help="conf/ and certs/ of the real daemon go here")] = WORKDIR,
        out: Annotated[Path | None, typer.Option(help="Write traces/, csv/ and compare.json here")] = None,
        ref: Annotated[Path | None, typer.Option(
            help="Reference dir with csv/<name>.imsg.csv (default: the checkout's tests/data/real-traces)")] = None,
        long: Annotated[bool, typer.Option("--long", help="Include the retry scenarios (~10 min)")] = False,
        install_only: Annotated[bool, typer.Option(
            "--install-only", help="Install opensmtpd and the test users, then exit")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as one JSON object")] = False,
    ) -> None:
        """Record the real daemon's traces and dialogs; compare them with the reference traces."""
        from smtpd_sim.real.install import check_prerequisites, ensure_installed, ensure_test_users
        from smtpd_sim.real.runs import REFERENCE_DIR, compare_with_reference, run_real_scenarios

        _check_names(names, long)
        say = (lambda s: print(s, file=sys.stderr)) if as_json else print
        with _sigterm_unwinds(), _one_line_errors():
            if install_only:
                check_prerequisites()
                say(f"OpenSMTPD {ensure_installed()} installed")
                ensure_test_users()
                return
            t0 = time.monotonic()
            runs = run_real_scenarios(workdir, names or None, long=long, outdir=out, progress=say)
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
