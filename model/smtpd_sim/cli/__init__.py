"""The smtpd-sim command."""

from smtpd_sim.cli.app import app, main

__all__ = ["app", "main"]
