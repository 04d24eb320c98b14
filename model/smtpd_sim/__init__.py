"""smtpd-sim: the OpenSMTPD daemon as simulated privilege-separated processes.

Importing the package does nothing else (no compiled-module check, no I/O). The command
is ``smtpd_sim.cli`` (``smtpd-sim``, ``python -m smtpd_sim``); the rooms and what each may
import are drawn in ``docs/design.md``.
"""
