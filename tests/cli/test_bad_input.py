"""Bad input, all of it (issue 18, point 5): every command and every scenario section, fed
wrong types, out-of-range, infinite or huge numbers, unknown keys and names, missing,
binary, empty or deeply nested files. Each case is one line on stderr naming the option,
the file or the key, exit status 2, no traceback; nothing runs a simulation (the errors
come from validation, before any run starts), so the table stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smtpd_sim.cli import app

runner = CliRunner()

BASE = 'era = "pony-6.8"\n'


def scen(top: str = "", workload: str = "duration_s = 1\n", arrival: str = "", mix: str = "",
         remote: str = "", tail: str = "") -> str:
    """A scenario file: top-level keys, an inline workload and its tables, then ``tail``."""
    text = BASE + top + "[workload]\n" + workload
    if arrival:
        text += "[workload.arrival]\n" + arrival
    if mix:
        text += "[workload.mix]\n" + mix
    if remote:
        text += "[workload.remote]\n" + remote
    return text + tail


def fault(body: str) -> str:
    return scen(tail="[[fault]]\n" + body)


TOPOLOGY = (Path(__file__).parents[2] / "scenarios" / "topologies" / "pony.toml").read_text()
SITE = (Path(__file__).parents[2] / "scenarios" / "sites" / "common-case.toml").read_text()
CALIBRATION = 'name = "cal"\n'
DEEP = "a = " + "[" * 5000 + "]" * 5000 + "\n"
SHALLOW_DEEP = BASE + "bogus = " + "[" * 400 + "]" * 400 + "\n"  # parses; an unknown key

# (id, command line ({d}: the case's directory), files to write there, fragment of the message)
CASES: list[tuple[str, list[str], dict[str, str | bytes | None], str]] = [
    # --- the cases issue 18 found escaping as a traceback or a hang
    ("crash-unknown-process", ["run", "{d}/s.toml"],
     {"s.toml": 'era = "pony"\n[workload]\nduration_s = 1\n[[fault]]\nkind = "crash"\nprocess = "mfa"\n'},
     "fault[0].process: no child process 'mfa'"),
    ("non-utf8", ["run", "{d}/s.toml"], {"s.toml": b'name = "\xff\xfe"\n'}, "not a UTF-8 text file"),
    ("nested-5000", ["run", "{d}/s.toml"], {"s.toml": DEEP}, "nested too deeply"),
    ("serve-port-99999", ["serve", "--port", "99999"], {}, "--port"),
    ("serve-port-negative", ["serve", "--port", "-5"], {}, "--port"),
    ("rate-inf", ["run", "{d}/s.toml"], {"s.toml": scen(arrival="rate_per_s = inf\n")}, "rate_per_s"),
    ("rate-1e12", ["run", "{d}/s.toml"], {"s.toml": scen(arrival="rate_per_s = 1e12\n")}, "rate_per_s"),
    ("duration-1e12", ["run", "{d}/s.toml"], {"s.toml": scen(workload="duration_s = 1e12\n")}, "duration_s"),
    ("empty-scenario", ["run", "{d}/s.toml"], {"s.toml": ""}, "empty scenario file"),
    # --- files
    ("comments-only", ["run", "{d}/s.toml"], {"s.toml": "# nothing\n\n"}, "empty scenario file"),
    ("missing-file", ["run", "{d}/nope.toml"], {}, "no such scenario file"),
    ("unknown-scenario", ["run", "nosuchscenario"], {}, "unknown scenario"),
    ("directory", ["run", "{d}"], {}, "is a directory"),
    ("device", ["run", "/dev/null"], {}, "not a regular file"),
    ("empty-name", ["run", ""], {}, "not a scenario name"),
    ("binary-png", ["run", "{d}/s.toml"], {"s.toml": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"}, "not a UTF-8"),
    ("nul-bytes", ["run", "{d}/s.toml"], {"s.toml": "era = \x00\n"}, "not valid TOML"),
    ("toml-syntax", ["run", "{d}/s.toml"], {"s.toml": "era = \n"}, "not valid TOML"),
    ("bad-list-syntax", ["run", "{d}/s.toml"], {"s.toml": BASE + "fault = [1, 2\n"}, "not valid TOML"),
    ("duplicate-key", ["run", "{d}/s.toml"], {"s.toml": BASE + BASE}, "not valid TOML"),
    ("nested-400-unknown", ["run", "{d}/s.toml"], {"s.toml": SHALLOW_DEEP}, "bogus: unknown key"),
    # --- scenario top-level keys
    ("unknown-key-near", ["run", "{d}/s.toml"], {"s.toml": scen(top="drain_seconds = 5\n")},
     "did you mean drain_s"),
    ("unknown-key-far", ["run", "{d}/s.toml"], {"s.toml": scen(top="zzz = 5\n")}, "zzz: unknown key"),
    ("seed-string", ["run", "{d}/s.toml"], {"s.toml": scen(top='seed = "one"\n')}, "seed"),
    ("seed-negative", ["run", "{d}/s.toml"], {"s.toml": scen(top="seed = -1\n")}, "seed"),
    ("seed-float", ["run", "{d}/s.toml"], {"s.toml": scen(top="seed = 1.5\n")}, "seed"),
    ("drain-negative", ["run", "{d}/s.toml"], {"s.toml": scen(top="drain_s = -1\n")}, "drain_s"),
    ("drain-nan", ["run", "{d}/s.toml"], {"s.toml": scen(top="drain_s = nan\n")}, "drain_s"),
    ("drain-huge", ["run", "{d}/s.toml"], {"s.toml": scen(top="drain_s = 1e12\n")}, "drain_s"),
    ("sample-zero", ["run", "{d}/s.toml"], {"s.toml": scen(top="sample_s = 0\n")}, "sample_s"),
    ("sample-tiny", ["run", "{d}/s.toml"], {"s.toml": scen(top="sample_s = 1e-9\n")}, "sample_s"),
    ("cores-zero", ["run", "{d}/s.toml"], {"s.toml": scen(top="cores = 0\n")}, "cores"),
    ("cores-huge", ["run", "{d}/s.toml"], {"s.toml": scen(top="cores = 100000\n")}, "cores"),
    ("cores-string", ["run", "{d}/s.toml"], {"s.toml": scen(top='cores = "two"\n')}, "cores"),
    ("era-unknown", ["run", "{d}/s.toml"], {"s.toml": 'era = "qmail"\n'}, "unknown era"),
    ("era-number", ["run", "{d}/s.toml"], {"s.toml": "era = 5\n"}, "era"),
    ("era-missing-file", ["run", "{d}/s.toml"], {"s.toml": 'era = "nope.toml"\n'}, "no such topology file"),
    ("site-unknown", ["run", "{d}/s.toml"], {"s.toml": scen(top='site = "mars"\n')}, "unknown site"),
    ("calibration-unknown", ["run", "{d}/s.toml"], {"s.toml": scen(top='calibration = "nope"\n')},
     "unknown calibration"),
    ("workload-unknown", ["run", "{d}/s.toml"], {"s.toml": BASE + 'workload = "nope"\n'}, "unknown workload"),
    ("workload-directory", ["run", "{d}/s.toml"], {"s.toml": BASE + 'workload = "/"\n'}, "is a directory"),
    ("workload-number", ["run", "{d}/s.toml"], {"s.toml": BASE + "workload = 5\n"},
     "workload: expected a string (a name or a .toml file) or a table (got 5)"),
    ("tables-entry-not-a-table", ["run", "{d}/s.toml"], {"s.toml": scen(tail="[tables]\naliases = 5\n")},
     "tables.aliases: expected a table (got 5)"),
    ("date-for-a-number", ["run", "{d}/s.toml"], {"s.toml": scen(workload="duration_s = 1979-05-27\n")},
     "workload.duration_s"),
    ("name-path", ["run", "{d}/s.toml"], {"s.toml": scen(top='name = "../../etc"\n')}, "name"),
    ("name-empty", ["run", "{d}/s.toml"], {"s.toml": scen(top='name = ""\n')}, "name"),
    # --- [workload], [workload.arrival], [workload.mix], [workload.remote]
    ("workload-unknown-key", ["run", "{d}/s.toml"], {"s.toml": scen(workload="duraton_s = 1\n")},
     "did you mean duration_s"),
    ("duration-zero", ["run", "{d}/s.toml"], {"s.toml": scen(workload="duration_s = 0\n")}, "duration_s"),
    ("sessions-negative", ["run", "{d}/s.toml"], {"s.toml": scen(workload="duration_s = 1\nsessions = -1\n")},
     "sessions"),
    ("sessions-huge", ["run", "{d}/s.toml"],
     {"s.toml": scen(workload="duration_s = 1\nsessions = 1000000000000\n")}, "sessions"),
    ("offered-too-much", ["run", "{d}/s.toml"],
     {"s.toml": scen(workload="duration_s = 1000000\n", arrival="rate_per_s = 10000\n")}, "recipients offered"),
    ("client-cpu-negative", ["run", "{d}/s.toml"],
     {"s.toml": scen(workload="duration_s = 1\nclient_cpu_s = -1\n")}, "client_cpu_s"),
    ("arrival-process", ["run", "{d}/s.toml"], {"s.toml": scen(arrival='process = "burst"\n')}, "process"),
    ("rate-zero", ["run", "{d}/s.toml"], {"s.toml": scen(arrival="rate_per_s = 0\n")}, "rate_per_s"),
    ("rate-negative", ["run", "{d}/s.toml"], {"s.toml": scen(arrival="rate_per_s = -5\n")}, "rate_per_s"),
    ("rate-nan", ["run", "{d}/s.toml"], {"s.toml": scen(arrival="rate_per_s = nan\n")}, "rate_per_s"),
    ("rate-string", ["run", "{d}/s.toml"], {"s.toml": scen(arrival='rate_per_s = "fast"\n')}, "rate_per_s"),
    ("concurrency-zero", ["run", "{d}/s.toml"], {"s.toml": scen(arrival='process = "closed"\nconcurrency = 0\n')},
     "concurrency"),
    ("concurrency-huge", ["run", "{d}/s.toml"],
     {"s.toml": scen(arrival='process = "closed"\nconcurrency = 1000000000\n')}, "concurrency"),
    ("closed-loop-no-latency", ["run", "{d}/s.toml"],
     {"s.toml": scen(top='calibration = "{d}/c.toml"\n', arrival='process = "closed"\n'),
      "c.toml": 'name = "zero"\n[world]\nnet_latency_s = 0\n'}, "world.net_latency_s >= 1e-09"),
    ("max-open-negative", ["run", "{d}/s.toml"], {"s.toml": scen(arrival="max_open = -1\n")}, "max_open"),
    ("replay-no-csv", ["run", "{d}/s.toml"], {"s.toml": scen(arrival='process = "replay"\n')}, "arrival.csv"),
    ("replay-missing-csv", ["run", "{d}/s.toml"],
     {"s.toml": scen(arrival='process = "replay"\ncsv = "/nonexistent/arrivals.csv"\n')}, "arrival.csv"),
    ("replay-no-time-column", ["run", "{d}/s.toml"],
     {"s.toml": scen(arrival='process = "replay"\ncsv = "{d}/a.csv"\n'), "a.csv": "when\n1\n"}, "time"),
    ("replay-bad-time", ["run", "{d}/s.toml"],
     {"s.toml": scen(arrival='process = "replay"\ncsv = "{d}/a.csv"\n'), "a.csv": "time\n1\nsoon\n"}, "line 3"),
    ("mix-messages-zero", ["run", "{d}/s.toml"], {"s.toml": scen(mix="messages = 0\n")}, "mix.messages"),
    ("mix-messages-huge", ["run", "{d}/s.toml"], {"s.toml": scen(mix="messages = 5000\n")}, "mix.messages"),
    ("mix-recipients-zero", ["run", "{d}/s.toml"], {"s.toml": scen(mix="recipients = 0\n")}, "recipients"),
    ("mix-share-above-1", ["run", "{d}/s.toml"], {"s.toml": scen(mix="local_share = 1.5\n")}, "local_share"),
    ("mix-tls-share-negative", ["run", "{d}/s.toml"], {"s.toml": scen(mix="tls_share = -0.1\n")}, "tls_share"),
    ("mix-size-negative", ["run", "{d}/s.toml"], {"s.toml": scen(mix="size_bytes = -1\n")}, "size_bytes"),
    ("mix-size-huge", ["run", "{d}/s.toml"], {"s.toml": scen(mix="size_bytes = 1099511627776\n")}, "size_bytes"),
    ("mix-distribution", ["run", "{d}/s.toml"], {"s.toml": scen(mix='size_distribution = "normal"\n')},
     "size_distribution"),
    ("mix-users-not-list", ["run", "{d}/s.toml"], {"s.toml": scen(mix='local_users = "alice"\n')}, "local_users"),
    ("mix-users-empty", ["run", "{d}/s.toml"], {"s.toml": scen(mix="local_users = []\n")}, "local_users: empty"),
    ("mix-pick", ["run", "{d}/s.toml"], {"s.toml": scen(mix='pick = "first"\n')}, "pick"),
    ("mix-unknown-key", ["run", "{d}/s.toml"], {"s.toml": scen(mix="recipient = 2\n")}, "did you mean recipients"),
    ("remote-cert-chain-zero", ["run", "{d}/s.toml"], {"s.toml": scen(remote="cert_chain = 0\n")}, "cert_chain"),
    ("remote-starttls-string", ["run", "{d}/s.toml"], {"s.toml": scen(remote='starttls = "maybe"\n')}, "starttls"),
    # --- [[fault]] schedules
    ("fault-kind", ["run", "{d}/s.toml"], {"s.toml": fault('kind = "meteor"\n')}, "kind"),
    ("fault-no-kind", ["run", "{d}/s.toml"], {"s.toml": fault("start_s = 5\n")}, "kind: missing key"),
    ("fault-start-negative", ["run", "{d}/s.toml"], {"s.toml": fault('kind = "mx_down"\nstart_s = -1\n')},
     "fault[0].start_s"),
    ("fault-start-huge", ["run", "{d}/s.toml"], {"s.toml": fault('kind = "mx_down"\nstart_s = 1e12\n')},
     "start_s"),
    ("fault-duration-zero", ["run", "{d}/s.toml"], {"s.toml": fault('kind = "mx_down"\nduration_s = 0\n')},
     "duration_s"),
    ("fault-duration-nan", ["run", "{d}/s.toml"], {"s.toml": fault('kind = "mx_down"\nduration_s = nan\n')},
     "duration_s"),
    ("fault-rate-above-1", ["run", "{d}/s.toml"], {"s.toml": fault('kind = "mx_reply"\nrate = 2\n')}, "rate"),
    ("fault-code-2xx", ["run", "{d}/s.toml"], {"s.toml": fault('kind = "mx_reply"\ncode = 250\n')}, "code"),
    ("fault-phase", ["run", "{d}/s.toml"], {"s.toml": fault('kind = "mx_reply"\nphase = "helo"\n')}, "phase"),
    ("fault-delay-inf", ["run", "{d}/s.toml"], {"s.toml": fault('kind = "mx_slow"\ndelay_s = inf\n')}, "delay_s"),
    ("fault-crash-no-process", ["run", "{d}/s.toml"], {"s.toml": fault('kind = "crash"\n')}, "needs `process`"),
    ("fault-crash-parent", ["run", "{d}/s.toml"], {"s.toml": fault('kind = "crash"\nprocess = "parent"\n')},
     "parent"),
    ("fault-agent-unknown-user", ["run", "{d}/s.toml"],
     {"s.toml": fault('kind = "agent_tempfail"\nuser = "mallory"\n')}, "fault[0].user"),
    ("fault-not-table", ["run", "{d}/s.toml"], {"s.toml": scen(top='fault = "mx_down"\n')}, "fault"),
    ("fault-unknown-key", ["run", "{d}/s.toml"], {"s.toml": fault('kind = "mx_down"\nstrat_s = 1\n')},
     "did you mean start_s"),
    # --- [tables.<name>]
    ("table-unknown", ["run", "{d}/s.toml"], {"s.toml": scen(tail='[tables.virtuals]\nbackend = "static"\n')},
     "unknown table"),
    ("table-backend", ["run", "{d}/s.toml"], {"s.toml": scen(tail='[tables.aliases]\nbackend = "oracle"\n')},
     "oracle"),
    ("table-lookup-negative", ["run", "{d}/s.toml"], {"s.toml": scen(tail="[tables.aliases]\nlookup_s = -1\n")},
     "lookup_s"),
    ("table-concurrency-zero", ["run", "{d}/s.toml"],
     {"s.toml": scen(tail="[tables.aliases]\nconcurrency = 0\n")}, "concurrency"),
    ("table-ldap-needs-lookup", ["run", "{d}/s.toml"], {"s.toml": scen(tail='[tables.aliases]\nbackend = "ldap"\n')},
     "lookup_s"),
    # --- run's options
    ("run-stream-trace", ["run", "{d}/s.toml", "--stream", "--trace"], {"s.toml": scen()}, "--stream"),
    ("run-seed-negative", ["run", "{d}/s.toml", "--seed", "-1"], {"s.toml": scen()}, "--seed"),
    ("run-seed-string", ["run", "{d}/s.toml", "--seed", "abc"], {"s.toml": scen()}, "--seed"),
    ("run-seed-2-64", ["run", "{d}/s.toml", "--seed", str(2**64)], {"s.toml": scen()}, "--seed"),
    ("run-no-argument", ["run"], {}, "Missing argument"),
    ("run-unknown-option", ["run", "x", "--bogus"], {}, "--bogus"),
    # --- compare and the documents it names
    ("compare-era", ["compare", "--eras", "qmail"], {}, "unknown era"),
    ("compare-eras-empty", ["compare", "--eras", ","], {}, "--eras"),
    ("compare-eras-twice", ["compare", "--eras", "pony,pony"], {}, "given twice"),
    ("compare-seed", ["compare", "--seed", "-3"], {}, "--seed"),
    ("compare-workload-inf", ["compare", "--workload", "{d}/w.toml"],
     {"w.toml": "duration_s = 1\n[arrival]\nrate_per_s = inf\n"}, "arrival.rate_per_s"),
    ("compare-workload-empty", ["compare", "--workload", "{d}/w.toml"], {"w.toml": ""}, "empty workload file"),
    ("compare-calibration-unknown", ["compare", "--calibration", "nope"], {}, "unknown calibration"),
    ("calibration-cores", ["compare", "--calibration", "{d}/c.toml"], {"c.toml": CALIBRATION + "cores = 0\n"},
     "cores"),
    ("calibration-role-cost", ["compare", "--calibration", "{d}/c.toml"],
     {"c.toml": CALIBRATION + "[roles.smtp]\ndefault_s = -1\n"}, "roles.smtp.default_s"),
    ("calibration-handler-inf", ["compare", "--calibration", "{d}/c.toml"],
     {"c.toml": CALIBRATION + "[roles.smtp.handler]\nX = inf\n"}, "roles.smtp.handler.X"),
    ("calibration-world-huge", ["compare", "--calibration", "{d}/c.toml"],
     {"c.toml": CALIBRATION + "[world]\nnet_latency_s = 1e9\n"}, "world.net_latency_s"),
    ("calibration-unknown-role", ["compare", "--calibration", "{d}/c.toml"],
     {"c.toml": CALIBRATION + "[roles.smpt]\ndefault_s = 1e-5\n"}, "unknown role 'smpt' (did you mean smtp?)"),
    ("calibration-no-name", ["compare", "--calibration", "{d}/c.toml"], {"c.toml": "cores = 2\n"},
     "name: missing key"),
    ("compare-site-unknown", ["compare", "--site", "mars"], {}, "unknown site"),
    ("site-user-name", ["compare", "--site", "{d}/s.toml"], {"s.toml": SITE + '[[user]]\nname = "Bad Name"\n'},
     "user[3].name"),
    ("site-domain-action", ["compare", "--site", "{d}/s.toml"],
     {"s.toml": SITE + '[[domain]]\nname = "x.test"\naction = "bounce"\n'}, "action"),
    ("site-uid-negative", ["compare", "--site", "{d}/s.toml"], {"s.toml": SITE.replace("uid = 1001", "uid = -1")},
     "uid"),
    ("site-smarthost-missing", ["compare", "--site", "{d}/s.toml"],
     {"s.toml": SITE.replace('via = "mx"', 'via = "smarthost"')}, "needs smarthost"),
    ("site-smarthost-port", ["compare", "--site", "{d}/s.toml"],
     {"s.toml": SITE.replace('via = "mx"', 'via = "smarthost"\nsmarthost = "relay:99999"')}, "smarthost"),
    ("site-hostname-empty", ["compare", "--site", "{d}/s.toml"],
     {"s.toml": SITE.replace('hostname = "mx.local.test"', 'hostname = ""')}, "hostname"),
    ("site-delimiter-empty", ["compare", "--site", "{d}/s.toml"],
     {"s.toml": 'subaddress_delimiter = ""\n' + SITE}, "subaddress_delimiter"),
    ("site-delimiter-at", ["compare", "--site", "{d}/s.toml"],
     {"s.toml": 'subaddress_delimiter = "@"\n' + SITE}, "subaddress_delimiter"),
    # --- topology files
    ("topology-unknown", ["topology", "qmail"], {}, "unknown era"),
    ("topology-empty", ["topology", "{d}/t.toml"], {"t.toml": ""}, "empty topology file"),
    ("topology-directory", ["topology", "{d}"], {}, "is a directory"),
    ("topology-rss-zero", ["topology", "{d}/t.toml"], {"t.toml": TOPOLOGY.replace("[[process]]", "[[process]]\nrss_bytes = 0", 1)},
     "rss_bytes"),
    ("topology-process-name", ["topology", "{d}/t.toml"], {"t.toml": TOPOLOGY.replace('name = "parent"', 'name = "Parent!"', 1)},
     "process[0].name"),
    ("topology-unknown-role", ["topology", "{d}/t.toml"], {"t.toml": TOPOLOGY.replace('roles = ["ca"]', 'roles = ["ponies"]')},
     "unknown role"),
    # --- output paths, checked before anything runs (a run's results are not lost at the end)
    ("run-out-is-a-file", ["run", "{d}/s.toml", "--out", "{d}/s.toml"], {"s.toml": scen()}, "--out"),
    ("sweep-out-is-a-file", ["sweep", "{d}/s.toml", "--vary", "cores=2", "--out", "{d}/s.toml"], {"s.toml": scen()},
     "--out"),
    ("trace-imsg-directory", ["trace", "--imsg", "{d}"], {}, "--imsg"),
    ("trace-chrome-under-a-file", ["trace", "--chrome", "{d}/f/x.json"], {"f": "a file"}, "--chrome"),
    ("topology-dot-directory", ["topology", "pony", "--dot", "{d}"], {}, "--dot"),
    ("compare-plot-directory", ["compare", "--eras", "pony", "--plot", "{d}"], {}, "--plot"),
    ("calibrate-out-is-a-file", ["calibrate", "--out", "{d}/f"], {"f": "a file"}, "--out"),
    # --- more sweep designs
    ("sweep-vary-no-values", ["sweep", "default", "--vary", "cores=,"], {}, "no values"),
    ("sweep-vary-repeated", ["sweep", "default", "--vary", "cores=2,2"], {}, "repeated"),
    ("sweep-vary-seed", ["sweep", "default", "--vary", "seed=1,2"], {}, "seed"),
    ("sweep-faults-refused", ["sweep", "{d}/s.toml", "--vary", "cores=2"],
     {"s.toml": fault('kind = "mx_down"\nduration_s = 5\n')}, "fault"),
    # --- odd names
    ("name-too-long", ["run", "x" * 5000], {}, "not a scenario file"),
    ("fifo", ["run", "{d}/fifo.toml"], {"fifo.toml": None}, "not a regular file"),
    # --- sweep (the design is validated before anything runs)
    ("sweep-nothing", ["sweep", "default"], {}, "nothing to sweep"),
    ("sweep-vary-syntax", ["sweep", "default", "--vary", "cores"], {}, "expected key=v1,v2"),
    ("sweep-vary-rate-huge", ["sweep", "default", "--vary", "workload.arrival.rate_per_s=1e12"], {}, "rate_per_s"),
    ("sweep-vary-typo", ["sweep", "default", "--vary", "workload.arival.rate_per_s=1"], {}, "did you mean"),
    ("sweep-vary-era", ["sweep", "default", "--vary", "era=qmail"], {}, "unknown era"),
    ("sweep-replications-zero", ["sweep", "default", "--vary", "cores=2", "--replications", "0"], {},
     "--replications"),
    ("sweep-replications-huge", ["sweep", "default", "--vary", "cores=2", "--replications", "1000000"], {},
     "--replications"),
    ("sweep-workers-negative", ["sweep", "default", "--vary", "cores=2", "--workers", "-1"], {}, "--workers"),
    ("sweep-seed-negative", ["sweep", "default", "--vary", "cores=2", "--seed", "-1"], {}, "--seed"),
    ("sweep-missing-scenario", ["sweep", "{d}/nope.toml", "--vary", "cores=2"], {}, "no such scenario file"),
    # --- trace
    ("explore-era", ["explore", "--eras", "qmail"], {}, "unknown era"),
    ("explore-era-twice", ["explore", "--eras", "pony,pony"], {}, "given twice"),
    ("explore-out-directory", ["explore", "--out", "{d}"], {}, "--out"),
    ("explore-out-under-a-file", ["explore", "--out", "{d}/f/x.html"], {"f": "a file"}, "--out"),
    ("explore-scenario", ["explore", "--scenario", "{d}/nosuch.toml"], {}, "nosuch.toml"),
    ("explore-seed", ["explore", "--seed", "-1"], {}, "--seed"),
    ("trace-kind", ["trace", "--kind", "both"], {}, "--kind"),
    ("trace-era", ["trace", "qmail"], {}, "unknown era"),
    ("trace-recipients-zero", ["trace", "--recipients", "0"], {}, "--recipients"),
    ("trace-recipients-huge", ["trace", "--recipients", "5000"], {}, "--recipients"),
    ("trace-messages-zero", ["trace", "--messages", "0"], {}, "--messages"),
    ("trace-seed", ["trace", "--seed", "-1"], {}, "--seed"),
    # --- privsep
    ("privsep-era", ["privsep", "qmail"], {}, "unknown era"),
    ("privsep-scenario", ["privsep", "pony", "--scenario", "nope"], {}, "unknown scenario 'nope'"),
    ("privsep-merge-empty", ["privsep", "pony", "--merge", ","], {}, "--merge"),
    ("privsep-compromise", ["privsep", "pony", "--compromise", "nosuch"], {}, "nosuch"),
    ("privsep-merge-and-compromise", ["privsep", "pony", "--merge", "smtp,mta", "--compromise", "pony"], {},
     "--merge"),
    ("privsep-seed", ["privsep", "pony", "--seed", "-1"], {}, "--seed"),
    # --- calibrate (argument validation: nothing measured)
    ("calibrate-duration-zero", ["calibrate", "--duration", "0"], {}, "--duration"),
    ("calibrate-duration-inf", ["calibrate", "--duration", "inf"], {}, "--duration"),
    ("calibrate-duration-nan", ["calibrate", "--duration", "nan"], {}, "--duration"),
    ("calibrate-sim-seconds", ["calibrate", "--sim-seconds", "-1"], {}, "--sim-seconds"),
    ("calibrate-repeats", ["calibrate", "--repeats", "0"], {}, "--repeats"),
    ("calibrate-measure-alone", ["calibrate", "--measure"], {}, "--measure"),
    ("calibrate-other-load-nan", ["calibrate", "--max-other-load", "nan"], {}, "--max-other-load"),
    ("calibrate-check-unknown", ["calibrate", "--check", "--calibration", "nope"], {}, "unknown calibration"),
    ("calibrate-from-missing", ["calibrate", "--from", "{d}/nope.json"], {}, "nope.json"),
    ("calibrate-from-not-json", ["calibrate", "--from", "{d}/r.json"], {"r.json": "not json\n"}, "not JSON lines"),
    ("calibrate-seed", ["calibrate", "--seed", "-1"], {}, "--seed"),
    # --- bench
    ("bench-sizes-text", ["bench", "--sizes", "abc"], {}, "--sizes"),
    ("bench-sizes-zero", ["bench", "--sizes", "0"], {}, "--sizes"),
    ("bench-sizes-negative", ["bench", "--sizes", "1000,-5"], {}, "--sizes"),
    ("bench-sizes-empty", ["bench", "--sizes", ","], {}, "--sizes"),
    ("bench-sizes-huge", ["bench", "--sizes", "1000000000000"], {}, "--sizes"),
    # --- serve (argument validation only: no server starts)
    ("serve-tls-port", ["serve", "--tls-port", "70000"], {}, "--tls-port"),
    ("serve-same-ports", ["serve", "--port", "2600", "--tls-port", "2600"], {}, "--tls-port"),
    ("serve-port-text", ["serve", "--port", "smtp"], {}, "--port"),
    ("serve-seed", ["serve", "--seed", "-1"], {}, "--seed"),
    ("serve-era", ["serve", "--era", "qmail", "--port", "0", "--tls-port", "0"], {}, "unknown era"),
    # --- plugins, native, the top level
    ("plugins-option", ["plugins", "--bogus"], {}, "--bogus"),
    ("native-command", ["native", "nosuch"], {}, "nosuch"),
    ("native-build-option", ["native", "build", "--bogus"], {}, "--bogus"),
    ("top-command", ["nosuch"], {}, "nosuch"),
    ("top-option", ["--bogus"], {}, "--bogus"),
    # --- real (argument validation only: the real daemon never starts)
    ("real-command", ["real", "nosuch"], {}, "nosuch"),
    ("real-load-duration", ["real", "load", "--duration", "0"], {}, "--duration"),
    ("real-load-duration-inf", ["real", "load", "--duration", "inf"], {}, "--duration"),
    ("real-load-modes", ["real", "load", "--modes", "bogus"], {}, "--modes"),
    ("real-load-concurrency", ["real", "load", "--concurrency", "0"], {}, "--concurrency"),
    ("real-load-concurrency-text", ["real", "load", "--concurrency", "a,b"], {}, "--concurrency"),
    ("real-load-repeats", ["real", "load", "--repeats", "0"], {}, "--repeats"),
    ("real-validate-unknown", ["real", "validate", "nosuch"], {}, "nosuch"),
    ("real-traces-unknown", ["real", "traces", "nosuch"], {}, "nosuch"),
    ("real-dialog-unknown", ["real", "dialog", "nosuch"], {}, "nosuch"),
    ("real-dialog-port", ["real", "dialog", "local-1rcpt", "127.0.0.1", "99999"], {}, "port"),
    ("real-tables-bench-lookups", ["real", "tables-bench", "--lookups", "0"], {}, "--lookups"),
    ("real-load-worker-pid", ["real", "load-worker", "--pid", "0", "--mode", "local", "--concurrency", "1",
                              "--duration", "1"], {}, "--pid"),
]


def _write(d: Path, files: dict[str, str | bytes | None]) -> None:
    for name, content in files.items():
        if content is None:  # a named pipe: reading it would block
            os.mkfifo(d / name)
        elif isinstance(content, bytes):
            (d / name).write_bytes(content)
        else:
            (d / name).write_text(content.replace("{d}", str(d)))


@pytest.mark.parametrize(("args", "files", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], files: dict[str, str | bytes | None],
                                      fragment: str) -> None:
    _write(tmp_path, files)
    r = runner.invoke(app, [a.replace("{d}", str(tmp_path)) for a in args])
    out = r.output + (r.stderr if r.stderr_bytes is not None else "")
    assert r.exit_code == 2, (r.exit_code, out, r.exception)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in out
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smtpd-sim: error: "), r.stderr
    assert fragment in lines[0], lines[0]
    assert r.stdout == ""


def test_the_table_covers_every_command() -> None:
    """At least the 81 cases issue 18 tried, and every command of the CLI among them."""
    assert len(CASES) >= 81
    assert len({c[0] for c in CASES}) == len(CASES)
    commands = {c[1][0] for c in CASES if c[1]}
    assert commands >= {"compare", "run", "sweep", "trace", "topology", "privsep", "calibrate", "bench",
                        "serve", "plugins", "native", "real", "explore"}


@pytest.mark.parametrize("args", [
    ["topology", "pony", "--json"],
    ["privsep", "pony", "--json"],
    ["plugins", "--json"],
    ["trace", "pony-6.8", "--recipients", "1", "--seed", str(2**63 - 1)],
], ids=["topology", "privsep", "plugins", "trace-largest-seed"])
def test_valid_input_at_the_boundaries_exits_0(args: list[str]) -> None:
    r = runner.invoke(app, args)
    assert r.exit_code == 0, (r.output, r.exception)
    assert "Traceback" not in r.output and r.stderr == ""


def test_the_installed_command_prints_the_same_one_line(tmp_path: Path) -> None:
    """Through ``python -m smtpd_sim`` (the console script's main), not only the test runner."""
    import subprocess
    import sys

    bad = tmp_path / "s.toml"
    bad.write_bytes(b'name = "\xff"\n')
    for args, fragment in ((["run", str(bad)], "not a UTF-8 text file"),
                           (["serve", "--port", "99999"], "allowed: 0 <= x <= 65535")):
        r = subprocess.run([sys.executable, "-m", "smtpd_sim", *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and fragment in r.stderr, r.stderr
