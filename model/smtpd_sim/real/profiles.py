"""Which real smtpd the harness runs: its binaries, its smtpd.conf syntax, its spool, what
its trace looks like when it is ready, and how its trace lines are read.

Why: the harness drives Debian's OpenSMTPD 6.8.0p2
(:data:`smtpd_sim.real.daemon.DEBIAN_68`, the default) and,
for the MFA era, an OpenSMTPD 5.4.2p1 built from source outside this repository and
installed under a private prefix (:func:`source_build_542`). Both run the same scenarios
on loopback; only what this module holds differs. This module runs daemons, it does not
build one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smtpd_sim.real.commands import RealDaemonError, run

# The same policy in 5.4 syntax (smtpd/parse.y of opensmtpd-5.4.2p1: `pki NAME certificate|
# key|dhparams`, `accept ... deliver to maildir`, `accept ... relay via URL`). "smtp://" is
# plain SMTP in 5.4.2 (to.c:text_to_relayhost(): flags 0, no STARTTLS attempt), "smtp+tls://"
# F_TLS_OPTIONAL; 5.4 has no `ca` directive, so the TLS sinks' chains are not verified
# against the harness's CA (mta_session.c checks against the compiled-in CA file). The
# dhparams line: 5.4.2's built-in 1024-bit DH group (ssl.c:get_dh1024()) is refused by
# OpenSSL 3 ("dh key too small"), so the STARTTLS listener is given a 2048-bit group.
SMTPD_CONF_542 = """\
# smtpd.conf for the real-daemon check (OpenSMTPD 5.4.2p1 built from source), 5.4 syntax
# All traffic is loopback-only; the relay targets are the harness's sinks on 127.0.0.1
# (and port 25 for the MX of {mx_domain} that the namespace's DNS server names).

pki {pki} certificate "certs/cert.pem"
pki {pki} key "certs/key.pem"
pki {pki} dhparams "certs/dh.pem"

listen on 127.0.0.1 port {smtp_port} hostname {pki}
listen on 127.0.0.1 port {tls_port} hostname {pki} tls pki {pki}

accept from any for domain "local.test" deliver to maildir
accept from any for domain "relay.test" relay via "smtp://127.0.0.1:{sink_port}"
accept from any for domain "dsn.test" relay via "smtp://127.0.0.1:{dsn_port}"
accept from any for domain "{mx_domain}" relay
accept from any for domain "tls1.test" relay via "smtp+tls://{tls1_host}:{tls1_port}"
accept from any for domain "tls2.test" relay via "smtp+tls://{tls2_host}:{tls2_port}"
"""


def conf_542() -> str:
    """:data:`SMTPD_CONF_542` with the harness's ports and pki name (smtpd_sim.real.daemon)."""
    from smtpd_sim.real import daemon  # daemon imports this module: resolved at call time

    return SMTPD_CONF_542.format(
        pki=daemon.PKI_NAME, smtp_port=daemon.SMTP_PORT, tls_port=daemon.TLS_PORT, sink_port=daemon.SINK_PORT,
        dsn_port=daemon.SINKS["dsn"][0], mx_domain=daemon.MX_DOMAIN,
        tls1_host=daemon.TLS_SINK_HOSTS["tls1"], tls1_port=daemon.SINKS["tls1"][0],
        tls2_host=daemon.TLS_SINK_HOSTS["tls2"], tls2_port=daemon.SINKS["tls2"][0])


def _conf_end(*procs: str) -> tuple[str, ...]:
    return tuple(f"imsg: {p} <- parent: IMSG_CONF_END" for p in procs)


@dataclass(frozen=True)
class DaemonProfile:
    """One real smtpd: where it is, how it is configured, how its trace reads.

    ``ready_lines``: trace lines that say every child has its configuration (the parent
    sends IMSG_CONF_START/END to these); ``processes``: how many processes (parent
    included) a running daemon has; ``parent_traced``: the parent logs the imsgs it
    receives (5.4.2 ``imsg_dispatch()`` calls ``log_imsg()`` in every process, 6.8's
    ``parent_imsg()`` does not); ``profile_ms``: ``profile-imsg`` prints milliseconds
    (5.4.2 ``imsg_dispatch()``: ``"%lld.%06ld"`` of ms and the ns within the ms) instead of
    seconds and ns (6.8).
    """

    name: str
    version: str
    smtpd: Callable[[], str | None]
    smtpctl: Callable[[], str | None]
    conf: str
    spool: Path
    ready_lines: tuple[str, ...]
    processes: int
    parent_traced: bool = False
    profile_ms: bool = False
    mailname: Path | None = None  # written with PKI_NAME before a start (5.4.2: getmailname())
    dhparams: bool = False  # certs/dh.pem needed by the conf
    installer: Callable[[bool], str] | None = None  # install=True -> version; None: must exist
    meta: dict[str, Any] = field(default_factory=dict)

    def prepare(self, certs: Path) -> None:
        """What the configuration needs besides the certificate: the DH group file and the
        mail name, when this daemon needs them (called with the work dir's ``certs/``)."""
        if self.dhparams and not (certs / "dh.pem").exists():
            run(["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "dh_param:ffdhe2048",
                 "-out", str(certs / "dh.pem")], timeout=60, what="writing the DH parameters")
        if self.mailname is not None:
            from smtpd_sim.real.daemon import PKI_NAME  # the listeners' hostname

            self.mailname.write_text(PKI_NAME + "\n")

    def parse_options(self) -> dict[str, bool]:
        """Keyword arguments of :func:`smtpd_sim.observe.traces.parse_log` for this daemon's trace."""
        return {"parent_traced": self.parent_traced, "profile_ms": self.profile_ms}

    def installed_version(self) -> str | None:
        """Version reported by ``smtpd -h``, None when the binary is absent."""
        exe = self.smtpd()
        if exe is None:
            return None
        cp = run([exe, "-h"], timeout=10, what="smtpd -h", check=False)
        m = re.search(r"version: OpenSMTPD (\S+)", cp.stdout + cp.stderr)
        return m.group(1) if m else None

    def ensure(self, *, install: bool = True) -> str:
        """Make sure this daemon is there (installing it when the profile can); its version."""
        if self.installer is not None:
            return self.installer(install)
        version = self.installed_version()
        if version is None:
            raise RealDaemonError(f"{self.name}: no smtpd binary that reports a version")
        if version != self.version:
            raise RealDaemonError(f"{self.name}: smtpd reports {version}, expected {self.version}")
        if self.smtpctl() is None:
            raise RealDaemonError(f"{self.name}: smtpctl not found")
        return version


def _file_or_none(path: Path) -> Callable[[], str | None]:
    def get() -> str | None:
        return str(path) if path.is_file() else None
    return get


def source_build_542(prefix: str | Path, spool: str | Path) -> DaemonProfile:
    """OpenSMTPD 5.4.2p1 installed under ``prefix`` (``sbin/smtpd``, ``sbin/smtpctl``,
    ``etc/mailname``), its spool compiled in as ``spool`` (``--with-spooldir``)."""
    pre, sp = Path(prefix).resolve(), Path(spool).resolve()
    if not (pre / "sbin" / "smtpd").is_file():
        raise RealDaemonError(f"{pre / 'sbin' / 'smtpd'}: no smtpd there (a 5.4.2p1 install prefix is expected)")
    return DaemonProfile(
        name="source-5.4.2p1",
        version="5.4.2p1",
        smtpd=_file_or_none(pre / "sbin" / "smtpd"),
        smtpctl=_file_or_none(pre / "sbin" / "smtpctl"),
        conf=conf_542(),
        spool=sp,
        # smtpd.c:parent_send_config(): ruleset to lka, mfa config to mfa, listeners to smtp
        ready_lines=_conf_end("lka", "mfa", "smtp"),
        processes=9,  # smtpd.c:fork_peers(): parent + control, lka, mda, mfa, mta, queue, scheduler, smtp
        parent_traced=True,
        profile_ms=True,
        mailname=pre / "etc" / "mailname",
        dhparams=True,
    )
