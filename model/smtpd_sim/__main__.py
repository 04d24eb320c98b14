"""``python -m smtpd_sim``: the smtpd-sim command."""

from smtpd_sim.cli import main

main()
