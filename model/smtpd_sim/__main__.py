"""``python -m smtpd_sim``: the smtpd-sim command (the same entry point as the script)."""

from smtpd_sim.cli import main

if __name__ == "__main__":
    main()
