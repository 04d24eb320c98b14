"""Mail addresses and host names as the SMTP session checks them: ``to.c``, ``util.c`` and
the resolver's ``res_hnok()`` — pure functions, no state.

* ``to.c:text_to_mailaddr()`` splits ``user@domain`` (:func:`text_to_mailaddr`);
* ``util.c:valid_localpart()`` / ``valid_domainpart()`` (:func:`valid_localpart`,
  :func:`valid_domainpart`): the domain check differs per release — 5.4.2 its own label
  check, 5.7.3 OpenBSD's ``res_hnok()``, 6.8.0p2 (Debian) glibc's ``res_hnok()`` over
  ``ns_name_pton()``; address literals ``[addr]`` / ``[IPv6:addr]`` go to ``inet_pton()``;
* and the two other ``util.c`` text checks the session calls: ``base64_decode()`` (AUTH,
  ISC ``b64_pton()``, :func:`b64_pton`) and ``valid_smtp_response()`` (a filter's reply,
  :func:`valid_smtp_response`).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from functools import lru_cache

__all__ = [
    "ASCII_UPPER", "C_SPACE", "LINE_MAX", "SMTPD_MAXLOCALPARTSIZE", "SMTPD_MAXDOMAINPARTSIZE",
    "text_to_mailaddr", "valid_localpart", "valid_domainpart", "b64_pton", "valid_smtp_response",
]

LINE_MAX = 2048  # <limits.h> LINE_MAX (to.c text_to_mailaddr() buffer; 6.8 s->cmd, 5.7.3 iobuf); smtpd-defines.h SMTPD_MAXLINESIZE (5.4.2)
SMTPD_MAXLOCALPARTSIZE = 255 + 1  # smtpd-defines.h
SMTPD_MAXDOMAINPARTSIZE = 255 + 1  # smtpd-defines.h
NS_MAXCDNAME = 255  # <arpa/nameser.h>: the wire name buffer of ns_name_pton()

ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")  # strcasecmp() in the C locale
C_SPACE = " \t\n\v\f\r"  # isspace() in the C locale

_LOCALPART_RE = re.compile(r"[A-Za-z0-9!#$%&'*/?^`{|}~+=_-]+(?:\.[A-Za-z0-9!#$%&'*/?^`{|}~+=_-]+)*\Z")
_DOMAIN542_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                           r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\Z")
_PRINTABLE_RE = re.compile(r"[!-~]*\Z")
_HNLABEL_RE = re.compile(rb"[0-9A-Za-z_-]*\Z")


# ================================================================================================
# to.c
# ================================================================================================

def text_to_mailaddr(email: str) -> tuple[str, str] | None:
    """``to.c:text_to_mailaddr()``: split at the last ``@``; None when a part overflows."""
    if len(email) >= LINE_MAX:
        return None
    at = email.rfind("@")
    if at < 0:
        user, domain = email, ""
    else:
        user, domain = email[:at], email[at + 1:]
    if len(user) >= SMTPD_MAXLOCALPARTSIZE or len(domain) >= SMTPD_MAXDOMAINPARTSIZE:
        return None
    return user, domain


# ================================================================================================
# util.c: valid_localpart(), valid_domainpart()
# ================================================================================================

def valid_localpart(s: str) -> bool:
    """``util.c:valid_localpart()``: dot-separated atoms of alnum and MAILADDR_ALLOWED."""
    return _LOCALPART_RE.match(s) is not None


def _inet_pton_ok(s: str) -> bool:
    """``inet_pton(AF_INET6)`` then ``inet_pton(AF_INET)`` succeeds (the literal's address)."""
    for family in (socket.AF_INET6, socket.AF_INET):
        try:
            socket.inet_pton(family, s)
            return True
        except (OSError, ValueError, UnicodeError):
            pass
    return False


def _valid_literal(s: str) -> bool:
    """``util.c:valid_domainpart()``: the ``[addr]`` / ``[IPv6:addr]`` branch."""
    p = s[6:] if s[:6].translate(ASCII_UPPER) == "[IPV6:" else s[1:]
    if len(p) >= SMTPD_MAXDOMAINPARTSIZE:
        return False
    c = p.find("]")
    if c < 0 or c != len(p) - 1:
        return False
    return _inet_pton_ok(p[:c])


def _ns_name_pton_labels(src: str) -> list[bytes] | None:
    """glibc ``resolv/ns_name.c:ns_name_pton()`` into a 255-byte buffer: the labels, or
    None on error (label > 63, empty label, name > 255 wire bytes, bad escape)."""
    eom = NS_MAXCDNAME
    labels: list[bytes] = []
    label = bytearray()
    labelpos, bp = 0, 1
    i, n, escaped = 0, len(src), False
    while i < n:
        c = ord(src[i])
        i += 1
        if escaped:
            if 48 <= c <= 57:
                d1 = src[i] if i < n else ""
                d2 = src[i + 1] if i + 1 < n else ""
                if not d1 or d1 not in "0123456789" or not d2 or d2 not in "0123456789":
                    return None
                v = (c - 48) * 100 + (ord(d1) - 48) * 10 + (ord(d2) - 48)
                i += 2
                if v > 255:
                    return None
                c = v
            escaped = False
        elif c == 0x5C:  # '\\'
            escaped = True
            continue
        elif c == 0x2E:  # '.'
            ln = len(label)
            if ln & 0xC0 or labelpos >= eom:
                return None
            labels.append(bytes(label))
            if i == n:  # fully qualified
                if ln != 0:
                    if bp >= eom:
                        return None
                    bp += 1
                return None if bp > 255 else labels
            if ln == 0 or src[i] == ".":
                return None
            labelpos, bp = bp, bp + 1
            label = bytearray()
            continue
        if bp >= eom:
            return None
        label.append(c & 0xFF)
        bp += 1
    ln = len(label)
    if ln & 0xC0 or labelpos >= eom:
        return None
    labels.append(bytes(label))
    if ln != 0:
        if bp >= eom:
            return None
        bp += 1
    return None if bp > 255 else labels


def _res_hnok_glibc(dn: str) -> bool:
    """glibc ``resolv/res-name-checking.c:res_hnok()`` (what 6.8.0p2 on Debian links):
    printable ASCII, a valid wire name, labels of ``[0-9A-Za-z_-]``, no leading ``-``."""
    if _PRINTABLE_RE.match(dn) is None:
        return False
    labels = _ns_name_pton_labels(dn)
    if labels is None:
        return False
    if labels and labels[0][:1] == b"-":
        return False
    return all(_HNLABEL_RE.match(lb) is not None for lb in labels)


def _res_hnok_openbsd(dn: str) -> bool:
    """OpenBSD ``res_hnok()`` (openbsd-compat/res_hnok.c; 5.7.3 is OpenBSD-native)."""
    def border(c: str) -> bool:
        """``borderchar()``: isalnum() in the C locale (a label's first and last character)."""
        return c.isascii() and c.isalnum()

    pch, n = ".", len(dn)
    for i, ch in enumerate(dn):
        nch = dn[i + 1] if i + 1 < n else ""
        if ch == ".":
            pass
        elif pch == ".":
            if not border(ch):
                return False
        elif nch == "." or nch == "":
            if not border(ch):
                return False
        elif not (border(ch) or ch in "-_"):
            return False
        pch = ch
    return True


def _hostname_542(s: str) -> bool:
    """5.4.2 ``util.c:valid_domainpart()``: its own check, dot-separated labels of
    alnum and inner ``-``."""
    return _DOMAIN542_RE.match(s) is not None


def _hostname_68(s: str) -> bool:
    """6.8 ``util.c:valid_domainpart()``: length < 256, no trailing dot, then glibc
    ``res_hnok()``."""
    if not s or len(s) >= SMTPD_MAXDOMAINPARTSIZE or s[-1] == ".":
        return False
    return _res_hnok_glibc(s)


# the non-literal branch of util.c:valid_domainpart(), per release
_HOSTNAME_CHECKS: dict[str, Callable[[str], bool]] = {
    "5.4.2": _hostname_542,
    "5.7.3": _res_hnok_openbsd,
    "6.8": _hostname_68,
}


@lru_cache(maxsize=4096)
def valid_domainpart(s: str, variant: str = "6.8") -> bool:
    """``util.c:valid_domainpart()`` of the release: address literals, else 5.4.2 its own
    label check, 5.7.3 OpenBSD ``res_hnok()``, 6.8 (and any other name) length < 256, no
    trailing dot and glibc ``res_hnok()``."""
    if s[:1] == "[":
        return _valid_literal(s)
    return _HOSTNAME_CHECKS.get(variant, _hostname_68)(s)


# ================================================================================================
# util.c: base64_decode(), valid_smtp_response()
# ================================================================================================

_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def b64_pton(src: str, targsize: int) -> bytes | None:
    """ISC ``b64_pton()`` (openbsd-compat/base64.c, as ``util.c:base64_decode()`` calls
    it): whitespace skipped anywhere, strict padding, None on a bad character, a partial
    quantum or more than ``targsize`` bytes."""
    target = bytearray(targsize + 1)
    tarindex = state = 0
    i, n = 0, len(src)
    ch = ""
    while i < n:
        ch = src[i]
        i += 1
        if ch in C_SPACE:
            continue
        if ch == "=":
            break
        v = _B64.get(ch)
        if v is None:
            return None
        if tarindex >= targsize:
            return None
        if state == 0:
            target[tarindex] = (v << 2) & 0xFF
            state = 1
            continue
        if state == 3:
            target[tarindex] |= v
            tarindex += 1
            state = 0
            continue
        if state == 1:
            target[tarindex] |= v >> 4
            nb = ((v & 0x0F) << 4) & 0xFF
        else:
            target[tarindex] |= v >> 2
            nb = ((v & 0x03) << 6) & 0xFF
        if tarindex + 1 < targsize:
            target[tarindex + 1] = nb
        elif nb:
            return None
        tarindex += 1
        state += 1
    else:
        ch = ""
    if ch == "=":
        if state < 2:
            return None
        if state == 2:
            while i < n and src[i] in C_SPACE:
                i += 1
            if i >= n or src[i] != "=":
                return None
            i += 1
        while i < n:
            if src[i] not in C_SPACE:
                return None
            i += 1
        if tarindex < targsize and target[tarindex] != 0:
            return None
    elif state != 0:
        return None
    return bytes(target[:tarindex])


def valid_smtp_response(s: str) -> bool:
    """``util.c:valid_smtp_response()`` (and one line only)."""
    return (len(s) >= 5 and "2" <= s[0] <= "5" and s[1].isdigit() and s[2].isdigit()
            and s[1].isascii() and s[2].isascii() and s[3] == " " and "\n" not in s
            and "\r" not in s)
