"""Cells for notebooks/privsep.ipynb, section "Platform, fd passing and the imsg trust model"
(issue 23): a list of (kind, source) the lead splices in after the existing sections. Every
answer is computed by smtpd_sim.studies.privsep_platform from scenarios/platform/*.toml."""

CELLS: list[tuple[str, str]] = [
    ("markdown", """## Platform, fd passing and the imsg trust model

### Pledge: the same compromise on OpenBSD and on Linux

From 6.8 every long-lived process calls `pledge(2)` once it is set up: the parent keeps
`proc exec id` (it forks the delivery agents), lka keeps `proc exec` only until
`IMSG_CONF_END` (it forks the table processes first), pony gets `stdio inet unix recvfd sendfd`,
the scheduler and klondike (ca) plain `stdio`. Every call sits inside `#if HAVE_PLEDGE`, which
`configure.ac` sets only where libc has `pledge()`: **on OpenBSD**. The Debian package the
project checks against is the portable build on Linux, where those blocks are compiled out and
only the chroot and the uid bound a compromised process. 5.4.2 and 5.7.3 predate pledge
(OpenBSD 5.9). Below: each 6.8 process's promises, and what pledge removes from the blast
radius of code execution in it (items possible on Linux and not on OpenBSD)."""),
    ("code", """from smtpd_sim.studies import privsep_platform as pp

six = load_topology("pony-6.8")
rows = []
for p in six.spec.process:
    bsd = pp.platform_blast(six, p.name, "openbsd")
    rows.append({"process": p.name, "user": p.user, "chroot": p.chroot or "-",
                 "promises (serving)": " ".join(bsd["promises"] or ["none"]),
                 "exec escapes pledge": bsd["exec_escape"],
                 "own actions pledge removes": ", ".join(bsd["actions_removed"]) or "-",
                 "reach pledge removes": "; ".join(bsd["removed_by_pledge"]) or "-"})
display(pd.DataFrame(rows).set_index("process"))
five = load_topology("with-mfa")
same = all(pp.platform_blast(five, p.name, "openbsd")["removed_by_pledge"] == [] for p in five.spec.process)
print("5.4.2: the platform changes nothing (no pledge in the tree):", same)"""),
    ("markdown", """Pledge narrows what a process does **with its own system calls** (open files, exec,
connect); it does not narrow what its **peers do on request**: an imsg needs only `stdio` on a
socket the process already holds. So pony under OpenBSD still asks the parent to fork an agent
as any user; the parent does it. What pledge does stop is a compromised klondike sending the
private key it holds off the host (no `inet`), and a `stdio`-only process taking the message
fds queue hands out (no `recvfd`: the kernel kills it on receipt).

**Exercise 1.** Which 6.8 processes, compromised on OpenBSD, can no longer send a secret they
hold off the host directly? Which process keeps every action despite its pledge, and why?"""),
    ("code", """# answer to exercise 1
cannot_exfiltrate = sorted(p.name for p in six.spec.process
                           if any(x.startswith("send ") for x in pp.platform_blast(six, p.name, "openbsd")["removed_by_pledge"]))
escapes = [p.name for p in six.spec.process if pp.own_actions(six, p.name, "openbsd")["exec_escape"]]
print("cannot send a held secret off the host on OpenBSD:", cannot_exfiltrate)
print("keeps every action (exec is allowed, and an exec'd image has no promises):", escapes)
lka_setup = pp.own_actions(six, "lka", "openbsd", "setup")["exec_escape"]
print("lka could exec before IMSG_CONF_END:", lka_setup)"""),
    ("markdown", """### File descriptors are capabilities

An fd passed over an imsg channel (`SCM_RIGHTS`) is a capability: the receiver can use the
file or socket without any path, uid or chroot check of its own. queue hands smtp a writable
fd on the new message and mta/mda a read-only fd on a queued one; the parent hands lka the
`~/.forward` it opened as root, and mda the write end of the pipe into a delivery agent running
as the recipient. In 6.8 the parent also passes every child-to-child channel
(`IMSG_SETUP_PEER`), since children are re-exec'd and inherit nothing; in 5.x the socketpairs
were inherited across `fork()`. Each row below names the `m_create(..., fd)` it was read from."""),
    ("code", """fd_rows = []
for era in ERAS + ("pony-6.8-filters",):
    topo = load_topology(era)
    for r in pp.fd_passing(topo):
        if r["imsg"] == "IMSG_SETUP_PEER":
            continue
        fd_rows.append({"era": era, "from": r["from"], "to": r["to"], "imsg": r["imsg"],
                        "mode": r["mode"], "capability": r["capability"], "if": r["condition"] or ""})
display(pd.DataFrame(fd_rows))
peers = {era: sum(r["imsg"] == "IMSG_SETUP_PEER" for r in pp.fd_passing(load_topology(era))) for era in ERAS}
print("channel sockets passed as fds (IMSG_SETUP_PEER):", peers)"""),
    ("markdown", """**Exercise 2.** In 6.8, list the fds a compromised pony is handed while it serves mail
(not at setup), and say which one lets it write into a user's mailbox. Does pony's pledge let it
accept them on OpenBSD?"""),
    ("code", """# answer to exercise 2
mine = [r for r in pp.fd_passing(six) if r["to"] == "pony" and not r["at_setup"]]
for r in mine:
    print(f"{r['imsg']:26} from {r['from']:7} {r['capability']}")
print("writes into a mailbox:", [r["imsg"] for r in mine if r["capability"] == "write-user-mailbox"])
print("pony holds recvfd on OpenBSD:", "recvfd" in pp.promises_at(six, "pony"))
print("pledged fd receivers lacking recvfd:", pp.fd_receivers_lacking_recvfd(six))"""),
    ("markdown", """### The imsg trust model

Three questions per receiving process. **Does it check the sender?** 5.x handlers test
`p->proc == PROC_X` before acting on a type (the scheduler excepted); 6.8 dispatches on the
type alone, so any peer with a channel may send any type. **What does a malformed payload do?**
`m_get_*()`/`m_end()` bounds-check every field and `fatalx()` on a mismatch: the process dies,
and with it the daemon (5.x fields also carry a type byte, 6.8 only lengths). **Which answers does
it act on as sent?** mda takes lka's user lookup as the uid the parent will `setresuid()` the
agent to; queue stores lka's envelopes as sent. Outside the daemon, the control socket is mode
0666: any local user connects, `getpeereid()` names them, and all but one command need euid 0.
With 6.8 filters, each filter processor is one more process: forked before the parent's
pledge, never pledged, talking to lka, whose `fatalx()` on a malformed line lets it stop the
daemon."""),
    ("code", """trust_rows = []
for era in ERAS + ("pony-6.8-filters",):
    tm = pp.trust_model(load_topology(era))
    trust_rows.append({"era": era, "payload": tm["payload"]["encoding"],
                       "processes dispatching on type alone": ", ".join(tm["any_sender_processes"]),
                       "control: any local user may send": ", ".join(tm["control"]["any_local_user"]),
                       "root-only commands": len(tm["control"]["root_only"]),
                       "filter processors (user)": ", ".join(f"{f['name']} ({f['user']})" for f in tm["filter_processors"]) or "-"})
display(pd.DataFrame(trust_rows).set_index("era"))"""),
    ("markdown", """**Exercise 3.** The parent forks a delivery agent as the user an `MDA_FORK` request
names. In 5.4.2 and in 6.8, which processes can send the parent that request? Which 6.8
filter-processor user is shared with the process holding the TLS private key?"""),
    ("code", """# answer to exercise 3
def fork_senders(era):
    tm = pp.trust_model(load_topology(era))
    parent = next(r for r in tm["processes"] if r["process"] == "parent")
    a = next(a for a in parent["trusted_answers"] if a["kind"] == "MDA_FORK")
    return [a["from"]] + a["also_from"]

print("5.4.2 MDA_FORK senders:", fork_senders("with-mfa"))
print("6.8   MDA_FORK senders:", fork_senders("pony-6.8"))
tmf = pp.trust_model(load_topology("pony-6.8-filters"))
print("filter processors sharing the key holder's user:",
      [(f["name"], f["user"]) for f in tmf["filter_processors"] if "ca" in f["same_user_as"]])"""),
]
