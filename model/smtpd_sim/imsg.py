"""The imsg: one message on a socketpair, and the IMSG_* names of each era.

Roles speak one vocabulary of *kinds* (the 6.8 names without ``IMSG_`` where a 6.8 name
exists, else the era's own name); each era's ``Vocabulary`` maps a kind to the real
``IMSG_*`` name that era's ``smtpd.h`` declares, so traces and hop tables carry the
names the real daemon would log. Sources: ``enum imsg_type`` in ``smtpd/smtpd.h`` at
opensmtpd-5.4.2 (IMSG_VERSION 9), opensmtpd-5.7.3 (IMSG_VERSION 14) and
``usr.sbin/smtpd/smtpd.h`` at 6.8.0p2 (IMSG_VERSION 16); renames in era-pony.md §3.6.
"""

from __future__ import annotations

from typing import Any

# imsg.h: struct imsg_hdr is 16 bytes (type, len, flags, peerid, pid); `len=` in traces
# is the payload only (era-pony.md §6.2).
IMSG_HEADER_SIZE = 16

# One row per kind: (kind, 5.4.2 name, 5.7.3 name, 6.8 name); None = not in that era.
_TABLE: tuple[tuple[str, str | None, str | None, str | None], ...] = (
    # configuration (parent -> children at start, era-5.4.2-mfa.md §1.3, era-pony.md §1.1)
    ("CONF_START", "IMSG_CONF_START", "IMSG_CONF_START", "IMSG_CONF_START"),
    ("CONF_END", "IMSG_CONF_END", "IMSG_CONF_END", "IMSG_CONF_END"),
    # statistics (to control)
    ("STAT_INCREMENT", "IMSG_STAT_INCREMENT", "IMSG_STAT_INCREMENT", "IMSG_STAT_INCREMENT"),
    ("STAT_DECREMENT", "IMSG_STAT_DECREMENT", "IMSG_STAT_DECREMENT", "IMSG_STAT_DECREMENT"),
    ("STAT_SET", "IMSG_STAT_SET", "IMSG_STAT_SET", "IMSG_STAT_SET"),
    # resolver: 5.x plain PTR; 6.8 resolver.c proxy (FCrDNS at connect)
    ("SMTP_DNS_PTR", "IMSG_DNS_PTR", "IMSG_SMTP_DNS_PTR", None),
    ("MTA_DNS_PTR", "IMSG_DNS_PTR", "IMSG_MTA_DNS_PTR", None),
    ("GETNAMEINFO", None, None, "IMSG_GETNAMEINFO"),
    ("GETADDRINFO", None, None, "IMSG_GETADDRINFO"),
    ("GETADDRINFO_END", None, None, "IMSG_GETADDRINFO_END"),
    # the MFA protocol (5.4.2 only)
    ("MFA_REQ_CONNECT", "IMSG_MFA_REQ_CONNECT", None, None),
    ("MFA_REQ_HELO", "IMSG_MFA_REQ_HELO", None, None),
    ("MFA_REQ_MAIL", "IMSG_MFA_REQ_MAIL", None, None),
    ("MFA_REQ_RCPT", "IMSG_MFA_REQ_RCPT", None, None),
    ("MFA_REQ_DATA", "IMSG_MFA_REQ_DATA", None, None),
    ("MFA_REQ_EOM", "IMSG_MFA_REQ_EOM", None, None),
    ("MFA_EVENT_RSET", "IMSG_MFA_EVENT_RSET", None, None),
    ("MFA_EVENT_COMMIT", "IMSG_MFA_EVENT_COMMIT", None, None),
    ("MFA_EVENT_ROLLBACK", "IMSG_MFA_EVENT_ROLLBACK", None, None),
    ("MFA_EVENT_DISCONNECT", "IMSG_MFA_EVENT_DISCONNECT", None, None),
    ("MFA_SMTP_RESPONSE", "IMSG_MFA_SMTP_RESPONSE", None, None),
    # SMTP transaction (smtp <-> queue / lka)
    ("SMTP_MESSAGE_CREATE", "IMSG_QUEUE_CREATE_MESSAGE", "IMSG_SMTP_MESSAGE_CREATE", "IMSG_SMTP_MESSAGE_CREATE"),
    ("SMTP_EXPAND_RCPT", "IMSG_LKA_EXPAND_RCPT", "IMSG_SMTP_EXPAND_RCPT", "IMSG_SMTP_EXPAND_RCPT"),
    ("LKA_OPEN_FORWARD", "IMSG_PARENT_FORWARD_OPEN", "IMSG_LKA_OPEN_FORWARD", "IMSG_LKA_OPEN_FORWARD"),
    ("LKA_ENVELOPE_SUBMIT", "IMSG_QUEUE_SUBMIT_ENVELOPE", "IMSG_LKA_ENVELOPE_SUBMIT", "IMSG_LKA_ENVELOPE_SUBMIT"),
    ("LKA_ENVELOPE_COMMIT", "IMSG_QUEUE_COMMIT_ENVELOPES", "IMSG_LKA_ENVELOPE_COMMIT", "IMSG_LKA_ENVELOPE_COMMIT"),
    ("QUEUE_ENVELOPE_SUBMIT", "IMSG_QUEUE_SUBMIT_ENVELOPE", "IMSG_QUEUE_ENVELOPE_SUBMIT", "IMSG_QUEUE_ENVELOPE_SUBMIT"),
    ("QUEUE_ENVELOPE_COMMIT", "IMSG_QUEUE_COMMIT_ENVELOPES", "IMSG_QUEUE_ENVELOPE_COMMIT", "IMSG_QUEUE_ENVELOPE_COMMIT"),
    ("SMTP_MESSAGE_OPEN", "IMSG_QUEUE_MESSAGE_FILE", "IMSG_SMTP_MESSAGE_OPEN", "IMSG_SMTP_MESSAGE_OPEN"),
    ("SMTP_MESSAGE_COMMIT", "IMSG_QUEUE_COMMIT_MESSAGE", "IMSG_SMTP_MESSAGE_COMMIT", "IMSG_SMTP_MESSAGE_COMMIT"),
    ("SMTP_MESSAGE_ROLLBACK", "IMSG_QUEUE_REMOVE_MESSAGE", "IMSG_SMTP_MESSAGE_ROLLBACK", "IMSG_SMTP_MESSAGE_ROLLBACK"),
    ("QUEUE_MESSAGE_COMMIT", "IMSG_QUEUE_COMMIT_MESSAGE", "IMSG_QUEUE_MESSAGE_COMMIT", "IMSG_QUEUE_MESSAGE_COMMIT"),
    ("QUEUE_MESSAGE_ROLLBACK", "IMSG_QUEUE_REMOVE_MESSAGE", "IMSG_QUEUE_MESSAGE_ROLLBACK", "IMSG_QUEUE_MESSAGE_ROLLBACK"),
    ("QUEUE_SMTP_SESSION", "IMSG_SMTP_ENQUEUE_FD", "IMSG_QUEUE_SMTP_SESSION", "IMSG_QUEUE_SMTP_SESSION"),
    # scheduler <-> queue
    ("SCHED_ENVELOPE_DELIVER", "IMSG_MDA_DELIVER", "IMSG_SCHED_ENVELOPE_DELIVER", "IMSG_SCHED_ENVELOPE_DELIVER"),
    ("SCHED_ENVELOPE_TRANSFER", "IMSG_MTA_TRANSFER", "IMSG_SCHED_ENVELOPE_TRANSFER", "IMSG_SCHED_ENVELOPE_TRANSFER"),
    ("SCHED_ENVELOPE_INJECT", "IMSG_BOUNCE_INJECT", "IMSG_SCHED_ENVELOPE_INJECT", "IMSG_SCHED_ENVELOPE_INJECT"),
    ("SCHED_ENVELOPE_EXPIRE", "IMSG_QUEUE_EXPIRE", "IMSG_SCHED_ENVELOPE_EXPIRE", "IMSG_SCHED_ENVELOPE_EXPIRE"),
    ("SCHED_ENVELOPE_REMOVE", "IMSG_QUEUE_REMOVE", "IMSG_SCHED_ENVELOPE_REMOVE", "IMSG_SCHED_ENVELOPE_REMOVE"),
    ("SCHED_ENVELOPE_BOUNCE", "IMSG_QUEUE_BOUNCE", "IMSG_SCHED_ENVELOPE_BOUNCE", "IMSG_SCHED_ENVELOPE_BOUNCE"),
    ("QUEUE_ENVELOPE_ACK", None, "IMSG_QUEUE_ENVELOPE_ACK", "IMSG_QUEUE_ENVELOPE_ACK"),
    ("QUEUE_ENVELOPE_REMOVE", "IMSG_QUEUE_REMOVE", "IMSG_QUEUE_ENVELOPE_REMOVE", "IMSG_QUEUE_ENVELOPE_REMOVE"),
    ("QUEUE_ENVELOPE_SCHEDULE", "IMSG_MTA_SCHEDULE", "IMSG_QUEUE_ENVELOPE_SCHEDULE", "IMSG_QUEUE_ENVELOPE_SCHEDULE"),
    ("QUEUE_HOLDQ_HOLD", "IMSG_DELIVERY_HOLD", "IMSG_QUEUE_HOLDQ_HOLD", "IMSG_QUEUE_HOLDQ_HOLD"),
    ("QUEUE_HOLDQ_RELEASE", "IMSG_DELIVERY_RELEASE", "IMSG_QUEUE_HOLDQ_RELEASE", "IMSG_QUEUE_HOLDQ_RELEASE"),
    ("QUEUE_DELIVERY_OK", "IMSG_DELIVERY_OK", "IMSG_QUEUE_DELIVERY_OK", "IMSG_QUEUE_DELIVERY_OK"),
    ("QUEUE_DELIVERY_TEMPFAIL", "IMSG_DELIVERY_TEMPFAIL", "IMSG_QUEUE_DELIVERY_TEMPFAIL", "IMSG_QUEUE_DELIVERY_TEMPFAIL"),
    ("QUEUE_DELIVERY_PERMFAIL", "IMSG_DELIVERY_PERMFAIL", "IMSG_QUEUE_DELIVERY_PERMFAIL", "IMSG_QUEUE_DELIVERY_PERMFAIL"),
    ("QUEUE_DELIVERY_LOOP", "IMSG_DELIVERY_LOOP", "IMSG_QUEUE_DELIVERY_LOOP", "IMSG_QUEUE_DELIVERY_LOOP"),
    # local delivery (queue/lka/parent <-> mda)
    ("QUEUE_DELIVER", "IMSG_MDA_DELIVER", "IMSG_QUEUE_DELIVER", "IMSG_QUEUE_DELIVER"),
    ("MDA_LOOKUP_USERINFO", "IMSG_LKA_USERINFO", "IMSG_MDA_LOOKUP_USERINFO", "IMSG_MDA_LOOKUP_USERINFO"),
    ("MDA_OPEN_MESSAGE", "IMSG_QUEUE_MESSAGE_FD", "IMSG_MDA_OPEN_MESSAGE", "IMSG_MDA_OPEN_MESSAGE"),
    ("MDA_FORK", "IMSG_PARENT_FORK_MDA", "IMSG_MDA_FORK", "IMSG_MDA_FORK"),
    ("MDA_KILL", "IMSG_PARENT_KILL_MDA", "IMSG_MDA_KILL", "IMSG_MDA_KILL"),
    ("MDA_DONE", "IMSG_MDA_DONE", "IMSG_MDA_DONE", "IMSG_MDA_DONE"),
    ("MDA_DELIVERY_OK", "IMSG_DELIVERY_OK", "IMSG_MDA_DELIVERY_OK", "IMSG_MDA_DELIVERY_OK"),
    ("MDA_DELIVERY_TEMPFAIL", "IMSG_DELIVERY_TEMPFAIL", "IMSG_MDA_DELIVERY_TEMPFAIL", "IMSG_MDA_DELIVERY_TEMPFAIL"),
    ("MDA_DELIVERY_PERMFAIL", "IMSG_DELIVERY_PERMFAIL", "IMSG_MDA_DELIVERY_PERMFAIL", "IMSG_MDA_DELIVERY_PERMFAIL"),
    ("MDA_DELIVERY_LOOP", "IMSG_DELIVERY_LOOP", "IMSG_MDA_DELIVERY_LOOP", "IMSG_MDA_DELIVERY_LOOP"),
    ("MDA_DELIVERY_HOLD", "IMSG_DELIVERY_HOLD", "IMSG_MDA_DELIVERY_HOLD", "IMSG_MDA_DELIVERY_HOLD"),
    ("MDA_HOLDQ_RELEASE", "IMSG_DELIVERY_RELEASE", "IMSG_MDA_HOLDQ_RELEASE", "IMSG_MDA_HOLDQ_RELEASE"),
    # relay (queue/lka <-> mta)
    ("QUEUE_TRANSFER", "IMSG_MTA_TRANSFER", "IMSG_QUEUE_TRANSFER", "IMSG_QUEUE_TRANSFER"),
    ("MTA_LOOKUP_SMARTHOST", None, None, "IMSG_MTA_LOOKUP_SMARTHOST"),
    ("MTA_DNS_MX", "IMSG_DNS_MX", "IMSG_MTA_DNS_MX", "IMSG_MTA_DNS_MX"),
    ("MTA_DNS_HOST", "IMSG_DNS_HOST", "IMSG_MTA_DNS_HOST", "IMSG_MTA_DNS_HOST"),
    ("MTA_DNS_HOST_END", "IMSG_DNS_HOST_END", "IMSG_MTA_DNS_HOST_END", "IMSG_MTA_DNS_HOST_END"),
    ("MTA_OPEN_MESSAGE", "IMSG_QUEUE_MESSAGE_FD", "IMSG_MTA_OPEN_MESSAGE", "IMSG_MTA_OPEN_MESSAGE"),
    ("MTA_DELIVERY_OK", "IMSG_DELIVERY_OK", "IMSG_MTA_DELIVERY_OK", "IMSG_MTA_DELIVERY_OK"),
    ("MTA_DELIVERY_TEMPFAIL", "IMSG_DELIVERY_TEMPFAIL", "IMSG_MTA_DELIVERY_TEMPFAIL", "IMSG_MTA_DELIVERY_TEMPFAIL"),
    ("MTA_DELIVERY_PERMFAIL", "IMSG_DELIVERY_PERMFAIL", "IMSG_MTA_DELIVERY_PERMFAIL", "IMSG_MTA_DELIVERY_PERMFAIL"),
    ("MTA_DELIVERY_LOOP", "IMSG_DELIVERY_LOOP", "IMSG_MTA_DELIVERY_LOOP", "IMSG_MTA_DELIVERY_LOOP"),
    ("MTA_DELIVERY_HOLD", "IMSG_DELIVERY_HOLD", "IMSG_MTA_DELIVERY_HOLD", "IMSG_MTA_DELIVERY_HOLD"),
    ("MTA_HOLDQ_RELEASE", "IMSG_DELIVERY_RELEASE", "IMSG_MTA_HOLDQ_RELEASE", "IMSG_MTA_HOLDQ_RELEASE"),
    ("MTA_SCHEDULE", "IMSG_MTA_SCHEDULE", "IMSG_MTA_SCHEDULE", "IMSG_MTA_SCHEDULE"),
    # TLS: certificate lookup and the privsep key engine (klondike)
    ("SMTP_TLS_INIT", "IMSG_LKA_SSL_INIT", "IMSG_SMTP_TLS_INIT", None),
    ("MTA_TLS_INIT", "IMSG_LKA_SSL_INIT", "IMSG_MTA_TLS_INIT", None),
    ("SMTP_TLS_VERIFY", "IMSG_LKA_SSL_VERIFY", "IMSG_SMTP_TLS_VERIFY", None),
    ("MTA_TLS_VERIFY_CERT", "IMSG_LKA_SSL_VERIFY_CERT", "IMSG_MTA_TLS_VERIFY_CERT", None),
    ("MTA_TLS_VERIFY_CHAIN", "IMSG_LKA_SSL_VERIFY_CHAIN", "IMSG_MTA_TLS_VERIFY_CHAIN", None),
    ("MTA_TLS_VERIFY", "IMSG_LKA_SSL_VERIFY", "IMSG_MTA_TLS_VERIFY", None),
    ("CERT_INIT", None, None, "IMSG_CERT_INIT"),
    ("CERT_CERTIFICATE", None, None, "IMSG_CERT_CERTIFICATE"),
    ("CERT_VERIFY", None, None, "IMSG_CERT_VERIFY"),
    ("CA_PRIVENC", None, "IMSG_CA_PRIVENC", None),
    ("CA_PRIVDEC", None, "IMSG_CA_PRIVDEC", None),
    ("CA_RSA_PRIVENC", None, None, "IMSG_CA_RSA_PRIVENC"),
    ("CA_RSA_PRIVDEC", None, None, "IMSG_CA_RSA_PRIVDEC"),
    ("CA_ECDSA_SIGN", None, None, "IMSG_CA_ECDSA_SIGN"),
    # 6.8 filters (lka_filter.c / report_smtp.c)
    ("FILTER_SMTP_BEGIN", None, None, "IMSG_FILTER_SMTP_BEGIN"),
    ("FILTER_SMTP_END", None, None, "IMSG_FILTER_SMTP_END"),
    ("FILTER_SMTP_PROTOCOL", None, None, "IMSG_FILTER_SMTP_PROTOCOL"),
    ("FILTER_SMTP_DATA_BEGIN", None, None, "IMSG_FILTER_SMTP_DATA_BEGIN"),
    ("FILTER_SMTP_DATA_END", None, None, "IMSG_FILTER_SMTP_DATA_END"),
    ("LKA_PROCESSOR_FORK", None, None, "IMSG_LKA_PROCESSOR_FORK"),
    ("LKA_PROCESSOR_ERRFD", None, None, "IMSG_LKA_PROCESSOR_ERRFD"),
    ("REPORT_SMTP_LINK_CONNECT", None, None, "IMSG_REPORT_SMTP_LINK_CONNECT"),
    ("REPORT_SMTP_LINK_DISCONNECT", None, None, "IMSG_REPORT_SMTP_LINK_DISCONNECT"),
    ("REPORT_SMTP_LINK_GREETING", None, None, "IMSG_REPORT_SMTP_LINK_GREETING"),
    ("REPORT_SMTP_LINK_IDENTIFY", None, None, "IMSG_REPORT_SMTP_LINK_IDENTIFY"),
    ("REPORT_SMTP_LINK_TLS", None, None, "IMSG_REPORT_SMTP_LINK_TLS"),
    ("REPORT_SMTP_TX_RESET", None, None, "IMSG_REPORT_SMTP_TX_RESET"),
    ("REPORT_SMTP_TX_BEGIN", None, None, "IMSG_REPORT_SMTP_TX_BEGIN"),
    ("REPORT_SMTP_TX_MAIL", None, None, "IMSG_REPORT_SMTP_TX_MAIL"),
    ("REPORT_SMTP_TX_RCPT", None, None, "IMSG_REPORT_SMTP_TX_RCPT"),
    ("REPORT_SMTP_TX_ENVELOPE", None, None, "IMSG_REPORT_SMTP_TX_ENVELOPE"),
    ("REPORT_SMTP_TX_DATA", None, None, "IMSG_REPORT_SMTP_TX_DATA"),
    ("REPORT_SMTP_TX_COMMIT", None, None, "IMSG_REPORT_SMTP_TX_COMMIT"),
    ("REPORT_SMTP_TX_ROLLBACK", None, None, "IMSG_REPORT_SMTP_TX_ROLLBACK"),
    ("REPORT_SMTP_PROTOCOL_CLIENT", None, None, "IMSG_REPORT_SMTP_PROTOCOL_CLIENT"),
    ("REPORT_SMTP_PROTOCOL_SERVER", None, None, "IMSG_REPORT_SMTP_PROTOCOL_SERVER"),
    ("REPORT_SMTP_FILTER_RESPONSE", None, None, "IMSG_REPORT_SMTP_FILTER_RESPONSE"),
    # control
    ("CTL_OK", "IMSG_CTL_OK", "IMSG_CTL_OK", "IMSG_CTL_OK"),
    ("CTL_FAIL", "IMSG_CTL_FAIL", "IMSG_CTL_FAIL", "IMSG_CTL_FAIL"),
    ("CTL_SCHEDULE", "IMSG_CTL_SCHEDULE", "IMSG_CTL_SCHEDULE", "IMSG_CTL_SCHEDULE"),
    ("CTL_REMOVE", "IMSG_CTL_REMOVE", "IMSG_CTL_REMOVE", "IMSG_CTL_REMOVE"),
)

VOCABULARIES = ("5.4.2", "5.7.3", "6.8")
STAT_KINDS = frozenset({"STAT_INCREMENT", "STAT_DECREMENT", "STAT_SET"})
KINDS = frozenset(row[0] for row in _TABLE)


class Vocabulary:
    """Maps a kind to the ``IMSG_*`` name of one era; unknown kinds are a model error."""

    __slots__ = ("version", "names")

    def __init__(self, version: str) -> None:
        if version not in VOCABULARIES:
            raise ValueError(f"unknown imsg vocabulary {version!r} (expected one of {VOCABULARIES})")
        col = VOCABULARIES.index(version) + 1
        self.version = version
        self.names: dict[str, str] = {}
        for row in _TABLE:
            name = row[col]
            if name is not None:
                self.names[row[0]] = name
        from smtpd_sim.spec.plugins import plugin_imsgs  # imsgs of roles other packages add

        for kind, name in plugin_imsgs().items():
            self.names.setdefault(kind, name)

    def name(self, kind: str) -> str:
        try:
            return self.names[kind]
        except KeyError:
            raise KeyError(f"imsg kind {kind} does not exist in OpenSMTPD {self.version}") from None

    def __contains__(self, kind: str) -> bool:
        return kind in self.names


# Payload sizes (bytes after the 16-byte header) for fixed-size imsgs, as logged by the
# real 6.8.0p2 daemon (`len=` in real-traces/csv/*.imsg.csv). Variable ones (envelopes,
# strings) are computed by the sender. Older eras are assumed to use the same sizes.
PAYLOAD_LEN: dict[str, int] = {
    "CONF_START": 0, "CONF_END": 0,
    "GETNAMEINFO": 28, "GETADDRINFO": 28, "GETADDRINFO_END": 8,
    "SMTP_DNS_PTR": 28, "MTA_DNS_PTR": 28,
    "SMTP_MESSAGE_CREATE": 8, "SMTP_MESSAGE_OPEN": 12, "SMTP_MESSAGE_COMMIT": 12,
    "SMTP_MESSAGE_ROLLBACK": 4, "QUEUE_MESSAGE_COMMIT": 4, "QUEUE_MESSAGE_ROLLBACK": 4,
    "LKA_OPEN_FORWARD": 4376,  # struct forward_req
    "LKA_ENVELOPE_COMMIT": 8, "QUEUE_ENVELOPE_COMMIT": 12,
    "SCHED_ENVELOPE_DELIVER": 8, "SCHED_ENVELOPE_TRANSFER": 8, "SCHED_ENVELOPE_INJECT": 8,
    "SCHED_ENVELOPE_EXPIRE": 8, "SCHED_ENVELOPE_REMOVE": 8, "QUEUE_ENVELOPE_ACK": 8,
    "QUEUE_DELIVERY_OK": 8, "QUEUE_DELIVERY_PERMFAIL": 8, "QUEUE_DELIVERY_LOOP": 8,
    "MDA_LOOKUP_USERINFO": 26, "MDA_OPEN_MESSAGE": 12, "MDA_FORK": 9240,  # struct deliver
    "MDA_DONE": 29, "MDA_DELIVERY_OK": 8, "MDA_DELIVERY_TEMPFAIL": 45,
    "MTA_LOOKUP_SMARTHOST": 22, "MTA_DNS_MX": 22, "MTA_DNS_HOST": 47, "MTA_DNS_HOST_END": 12,
    "MTA_OPEN_MESSAGE": 12, "MTA_DELIVERY_OK": 12, "MTA_DELIVERY_TEMPFAIL": 46,
    "MTA_DELIVERY_PERMFAIL": 42, "QUEUE_SMTP_SESSION": 0,
    "CERT_INIT": 19,
    "MFA_REQ_CONNECT": 280, "MFA_REQ_HELO": 264, "MFA_REQ_MAIL": 520, "MFA_REQ_RCPT": 520,
    "MFA_REQ_DATA": 8, "MFA_REQ_EOM": 12, "MFA_SMTP_RESPONSE": 16,
    "MFA_EVENT_RSET": 8, "MFA_EVENT_COMMIT": 8, "MFA_EVENT_ROLLBACK": 8, "MFA_EVENT_DISCONNECT": 8,
}
# 6.8 reply sizes where they differ from the request (real-traces csv)
REPLY_LEN: dict[str, int] = {
    "GETNAMEINFO": 26, "GETADDRINFO": 41, "SMTP_MESSAGE_CREATE": 16, "SMTP_MESSAGE_OPEN": 12,
    "MDA_LOOKUP_USERINFO": 4380, "MDA_OPEN_MESSAGE": 8, "MDA_FORK": 8,
    "MTA_LOOKUP_SMARTHOST": 41, "MTA_OPEN_MESSAGE": 8, "CERT_INIT": 1151,
    "MTA_DNS_HOST": 47, "SMTP_DNS_PTR": 26, "MTA_DNS_PTR": 26,
}
# stat_backend.c: struct stat_value + the key string and its NUL (6.8: 34 + len(key)).
STAT_FIXED_LEN = 34

class Imsg:
    """One imsg in flight: kind, real name, endpoints, payload, size, fd flag, causality."""

    __slots__ = (
        "kind", "name", "src", "dst", "src_role", "dst_role", "payload", "length", "fd",
        "stat", "id", "cause", "t_sent",
    )
    # ``id`` is given by the sending process from its simulation's counter, so ids (and
    # everything derived from them) are identical for two runs with the same seed.

    def __init__(
        self,
        kind: str,
        name: str,
        src: Any,
        dst: Any,
        src_role: str,
        dst_role: str,
        payload: Any,
        length: int,
        fd: bool,
        stat: bool,
        ident: int,
        cause: int,
        t_sent: float,
    ) -> None:
        self.kind = kind
        self.name = name
        self.src = src
        self.dst = dst
        self.src_role = src_role
        self.dst_role = dst_role
        self.payload = payload
        self.length = length
        self.fd = fd
        self.stat = stat
        self.id = ident
        self.cause = cause
        self.t_sent = t_sent

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<Imsg {self.src.name}->{self.dst.name} {self.name} len={self.length}>"
