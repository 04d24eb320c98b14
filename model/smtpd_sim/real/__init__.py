"""The real OpenSMTPD 6.8.0p2 as ground truth, run on loopback inside a network namespace.

Why: the simulator is checked against the real daemon on every CI run
(``make validate-real``, i.e. ``smtpd-sim real validate``). One module per concern:

* :mod:`~smtpd_sim.real.commands`: system commands with timeouts, the one error type;
* :mod:`~smtpd_sim.real.install`: prerequisites, the Debian package, test users, maildirs;
* :mod:`~smtpd_sim.real.netns`: the loopback-only network namespace;
* :mod:`~smtpd_sim.real.profiles`: which smtpd runs (Debian's 6.8.0p2, or a 5.4.2p1
  built from source under a prefix): binaries, configuration syntax, spool, trace dialect;
* :mod:`~smtpd_sim.real.daemon`: the daemon's life cycle and ``-T imsg`` trace capture;
* :mod:`~smtpd_sim.real.runs`: scenario runs recorded (trace, dialog, CPU), compared with
  the reference traces;
* :mod:`~smtpd_sim.real.scenarios`: the scripted SMTP dialogs (any server);
* :mod:`~smtpd_sim.real.sink`: the loopback remote MXs (optionally DSN, STARTTLS);
* :mod:`~smtpd_sim.real.dns`: dnsmasq in the namespace, the MX and A records of mx.test;
* :mod:`~smtpd_sim.real.testpki`: the STARTTLS sinks' throwaway certificate chains;
* :mod:`~smtpd_sim.real.procstat`: per-process CPU from ``/proc``;
* :mod:`~smtpd_sim.real.load`: closed-loop load for ``smtpd-sim calibrate``;
* :mod:`~smtpd_sim.real.tables_bench`: alias lookups through OpenSMTPD-extras tables.

Import from the modules; this package imports nothing, so the load worker and
``smtpd-sim calibrate --check`` load only what they use.
"""
