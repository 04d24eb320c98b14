"""Facts the privsep reach analysis reads from the C (issue 23), each with its file and function.

Four kinds, none of them an answer: imsgs the C daemon accepts but the model's roles do not
implement (AUTH, relay credentials, smtpctl shutdown/pause), with their ``IMSG_*`` name per
era; what the root parent's delivery backends do with a fork request per era (may the agent
run as root, what runs); and the guard on the sender address at the network edge and the
envelope fields that carry it to the delivery command; and whom the root parent takes a
fork request from (its sender test). smtpd_sim.studies.privsep and
smtpd_sim.studies.privsep_reach compute the answers from them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Unmodelled:
    """An imsg the C accepts that no model role implements: who sends it, who receives it,
    its ``IMSG_*`` name per vocabulary (absent = not in that era) and the C source."""

    sender: str  # role
    receiver: str  # role
    kind: str
    names: tuple[tuple[str, str], ...]  # (vocabulary, IMSG name)
    source: str

    def name_in(self, vocabulary: str) -> str | None:
        return dict(self.names).get(vocabulary)


UNMODELLED: tuple[Unmodelled, ...] = (
    Unmodelled("smtp", "lka", "SMTP_AUTHENTICATE",
               (("5.4.2", "IMSG_LKA_AUTHENTICATE"), ("5.7.3", "IMSG_SMTP_AUTHENTICATE"),
                ("6.8", "IMSG_SMTP_AUTHENTICATE")),
               "smtp_session.c:smtp_rfc4954_auth_plain()/smtp_rfc4954_auth_login() send the decoded "
               "username and password; lka.c:lka_imsg() (PROC_SMTP / PROC_PONY block in 5.x) -> "
               "lka_authenticate(), or with no table forwards IMSG_LKA_AUTHENTICATE to the parent"),
    Unmodelled("lka", "parent", "LKA_AUTHENTICATE",
               (("5.4.2", "IMSG_LKA_AUTHENTICATE"), ("5.7.3", "IMSG_LKA_AUTHENTICATE"),
                ("6.8", "IMSG_LKA_AUTHENTICATE")),
               "smtpd.c:parent_imsg() IMSG_LKA_AUTHENTICATE (PROC_LKA block in 5.x) -> "
               "parent_auth_user() as root"),
    Unmodelled("mta", "lka", "MTA_LOOKUP_CREDENTIALS",
               (("5.4.2", "IMSG_LKA_SECRET"), ("5.7.3", "IMSG_MTA_LOOKUP_CREDENTIALS"),
                ("6.8", "IMSG_MTA_LOOKUP_CREDENTIALS")),
               "mta.c:mta_query_secret() names a table and a label; lka.c:lka_imsg() (PROC_MTA / "
               "PROC_PONY block in 5.x) -> lka_credentials() answers base64(user, password)"),
    Unmodelled("control", "parent", "CTL_SHUTDOWN",
               (("5.4.2", "IMSG_CTL_SHUTDOWN"), ("5.7.3", "IMSG_CTL_SHUTDOWN")),
               "control.c:control_dispatch_ext() IMSG_CTL_SHUTDOWN -> smtpd.c:parent_imsg() "
               "(PROC_CONTROL block) -> parent_shutdown() (smtpctl stop; no such imsg in 6.8)"),
    Unmodelled("control", "smtp", "CTL_SMTP_SESSION",
               (("5.4.2", "IMSG_SMTP_ENQUEUE_FD"), ("5.7.3", "IMSG_CTL_SMTP_SESSION"),
                ("6.8", "IMSG_CTL_SMTP_SESSION")),
               "control.c:control_dispatch_ext() (smtpctl / sendmail enqueue) -> smtp.c:smtp_imsg() "
               "PROC_CONTROL block -> smtp_enqueue(); the model's enqueue sessions do not run"),
    Unmodelled("control", "queue", "CTL_PAUSE_MDA",
               (("5.4.2", "IMSG_CTL_PAUSE_MDA"), ("5.7.3", "IMSG_CTL_PAUSE_MDA"),
                ("6.8", "IMSG_CTL_PAUSE_MDA")),
               "control.c:control_dispatch_ext() IMSG_CTL_PAUSE_MDA -> queue.c:queue_imsg() "
               "(smtpctl pause mda; the queue stops handing envelopes to mda)"),
)


@dataclass(frozen=True)
class Backend:
    """What the root parent does for a fork request naming one delivery method, in one era."""

    method: str  # site.Domain.method: maildir, mbox, mda, lmtp
    allow_root: bool  # a request with uid 0 is served
    as_root: str  # what then runs as root ("" when refused)
    source: str


@dataclass(frozen=True)
class DeliveryFacts:
    """One era's forkmda(): where the method comes from, and each backend."""

    method_from_request: bool  # True: the request names the backend (5.x deliver->mode)
    selector: str
    backends: tuple[Backend, ...]
    sender_guard: str  # what smtp checks on MAIL FROM before the address enters an envelope
    sender_guard_source: str


_5X_BACKENDS = (
    Backend("maildir", True, "the agent mkdirs and writes a maildir (cur/, new/, tmp/ and the "
            "message) as root under the path the request names (deliver->to)",
            "delivery_maildir.c: delivery_backend_maildir = { 1, ... } (allow_root); "
            "delivery_maildir_open()"),
    Backend("mbox", True, "mail.local runs as root with the sender and recipient the request names",
            "delivery_mbox.c: delivery_backend_mbox = { 1, ... } (allow_root); delivery_mbox_open() "
            "execle(PATH_MAILLOCAL, \"-f\", deliver->from, deliver->to)"),
    Backend("mda", False, "", "delivery_mda.c: delivery_backend_mda = { 0, ... }"),
    Backend("lmtp", False, "", "delivery_lmtp.c: delivery_backend_lmtp = { 0, ... }"),
)

DELIVERY: dict[str, DeliveryFacts] = {
    "5.4.2": DeliveryFacts(
        True, "smtpd.c:forkmda(): db = delivery_backend_lookup(deliver->mode); uid 0 refused "
        "only if ! db->allow_root", _5X_BACKENDS,
        "valid_localpart() and valid_domainpart() or the empty sender (postmaster without a domain "
        "in RCPT TO)", "smtp_session.c:smtp_mailaddr() (5.4.2)"),
    "5.7.3": DeliveryFacts(
        True, "smtpd.c:forkmda(): db = delivery_backend_lookup(deliver->mode); uid 0 refused "
        "only if ! db->allow_root", _5X_BACKENDS,
        "valid_localpart() and valid_domainpart(), or the empty sender",
        "smtp_session.c:smtp_mailaddr() (5.7.3)"),
    "6.8": DeliveryFacts(
        False, "smtpd.c:forkmda(): dsp = dict_xget(env->sc_dispatchers, deliver->dispatcher): the "
        "request names a configured action; uid 0 refused unless dsp->u.local.is_mbox",
        (Backend("mbox", True, "with deliver->mda_exec set (the request's), forkmda() keeps the "
                 "request's uid 0 and mda_unpriv() runs /bin/sh -c mda_exec as root; without it "
                 "mda_mbox() runs mail.local -f <sender> as root",
                 "smtpd.c:forkmda() `if (pw_uid == 0 && !dsp->u.local.is_mbox)` refuses all but "
                 "mbox; mda_unpriv.c:mda_unpriv() execle(\"/bin/sh\", \"-c\", mda_command); "
                 "mda_mbox.c:mda_mbox()"),
         Backend("maildir", False, "", "smtpd.c:forkmda(): uid 0 and !is_mbox -> \"not allowed to "
                 "deliver to\""),
         Backend("mda", False, "", "smtpd.c:forkmda(): uid 0 and !is_mbox -> refused; as any other "
                 "user mda_unpriv() runs /bin/sh -c with the request's mda_exec"),
         Backend("lmtp", False, "", "smtpd.c:forkmda(): uid 0 and !is_mbox -> refused")),
        "valid_localpart() always, then valid_domainpart() (an empty domain becomes the local one); "
        "6.6.1p1 skipped valid_localpart() when the domain was empty (CVE-2020-7247)",
        "smtp_session.c:smtp_mailaddr() (6.8.0p2; 6.6.1p1 for the pre-fix code)"),
}

# What the root parent runs with the sender address, per era and method (the sink of the
# network-to-delivery data flow). (vocabulary, method) -> (user it runs as, shell?, source)
SENDER_SINKS: dict[tuple[str, str], tuple[str, bool, str]] = {
    ("5.4.2", "mbox"): ("root", False, "delivery_mbox.c:delivery_mbox_open(): execle(mail.local, "
                        "\"-f\", deliver->from, ...) in the child forkmda() forked as root"),
    ("5.4.2", "mda"): ("recipient", True, "delivery_mda.c:delivery_mda_open(): execle(\"/bin/sh\", "
                       "\"-c\", deliver->to) after forkmda() dropped to the recipient"),
    ("5.4.2", "maildir"): ("recipient", False, "delivery_maildir.c: writes the message, runs nothing"),
    ("5.7.3", "mbox"): ("root", False, "delivery_mbox.c:delivery_mbox_open(): execle(mail.local, "
                        "\"-f\", deliver->from, ...)"),
    ("5.7.3", "mda"): ("recipient", True, "delivery_mda.c:delivery_mda_open(): /bin/sh -c as the "
                       "recipient"),
    ("5.7.3", "maildir"): ("recipient", False, "delivery_maildir.c: writes the message, runs nothing"),
    ("6.8", "mbox"): ("root", False, "mda_mbox.c:mda_mbox(): execle(PATH_MAILLOCAL, \"-f\", "
                      "sender, username) as root, no shell (6.6.1p1: /bin/sh -c \"mail.local -f "
                      "%{mbox.from} %{user.username}\" as root, parse.y)"),
    ("6.8", "mda"): ("recipient", True, "mda_unpriv.c:mda_unpriv(): /bin/sh -c with the command "
                     "expanded by mda_variables.c:mda_expand_format(), which escapes MAILADDR_ESCAPE "
                     "characters, after forkmda() dropped to the recipient"),
    ("6.8", "maildir"): ("recipient", True, "mda_unpriv.c:mda_unpriv(): /bin/sh -c mail.maildir "
                         "as the recipient"),
}

# The imsg the sender address leaves the SMTP session in (RCPT TO: the session's envelope, with
# the MAIL FROM smtp_mailaddr() accepted, goes to lka for expansion).
SENDER_ENTRY = "SMTP_EXPAND_RCPT"

# imsg kinds whose payload carries the envelope (and so the MAIL FROM address) from one process
# to the next, with the C function that copies it.
SENDER_CARRIERS: dict[str, str] = {
    "SMTP_EXPAND_RCPT": "smtp_session.c:smtp_command() RCPT: the session's envelope "
                        "(evp.sender from smtp_mailaddr()) -> lka.c:lka_imsg()",
    "LKA_ENVELOPE_SUBMIT": "lka_session.c:lka_submit() -> queue.c:queue_imsg() "
                           "queue_envelope_create()",
    "QUEUE_DELIVER": "queue.c:queue_imsg() loads the envelope and sends it -> mda.c:mda_imsg()",
    "MDA_FORK": "mda.c:mda_imsg() builds struct deliver (sender copied from the envelope) -> "
                "smtpd.c:parent_imsg() forkmda()",
}

# A process whose peer sends it an imsg it does not accept ends (the last line of every
# *_imsg() handler), and the parent stops the daemon when a child process ends.
UNEXPECTED_IMSG = "errx(1, \"<proc>_imsg: unexpected %s imsg\") at the end of every *_imsg() (all eras)"
CHILD_DEATH: dict[str, str] = {
    "5.4.2": "smtpd.c:parent_sig_handler(): a CHILD_DAEMON that exits sets die = 1 -> "
             "parent_shutdown()",
    "5.7.3": "smtpd.c:parent_sig_handler(): a CHILD_DAEMON that exits sets die = 1 -> "
             "parent_shutdown()",
    "6.8": "smtpd.c:parent_imsg(): imsg == NULL -> fatalx(\"process %s socket closed\")",
}

# Who the root parent takes a fork request from, per era (its sender test in parent_imsg()).
FORK_SENDER_TEST: dict[str, str] = {
    "5.4.2": "smtpd.c:parent_imsg(): IMSG_PARENT_FORK_MDA only inside `if (p->proc == PROC_MDA)`",
    "5.7.3": "smtpd.c:parent_imsg(): IMSG_MDA_FORK only inside `if (p->proc == PROC_PONY)`",
    "6.8": "smtpd.c:parent_imsg(): switch (imsg->hdr.type) with no p->proc test; IMSG_MDA_FORK "
           "from any peer",
}
