"""``smtpd-sim native build|clean|status``: the hot path compiled with mypyc (``smtpd_sim.native``)."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="The hot path compiled with mypyc: build, clean, status.")


@app.command()
def build() -> None:
    """Compile the hot-path modules in place (needs mypy, setuptools and a C compiler)."""
    from smtpd_sim.native import build as build_modules

    build_modules()


@app.command()
def clean() -> None:
    """Remove the compiled modules (pure Python from then on)."""
    from smtpd_sim.native import clean as clean_modules

    clean_modules()


@app.command()
def status() -> None:
    """Say which hot-path modules run compiled; drop a build older than its sources."""
    from smtpd_sim.native import drop_stale
    from smtpd_sim.native import status as module_status

    dropped = drop_stale()
    if dropped:
        typer.echo(f"dropped a stale build ({len(dropped)} modules): a source changed since it was compiled")
    st = module_status()
    n = sum(st.values())
    typer.echo(f"{n} of {len(st)} hot-path modules compiled (mypyc)" + ("" if n else ": pure Python"))
