"""Enhanced status codes (``esc.c``, ``smtpd-api.h`` enum enhanced_status_code): the
``X.Y.Z`` text and the description bounces print. Pure.

The description table is 5.7.3's ``esc.c`` (6.8's is the same), entries in its order; its
last entry pairs ``ESC_MESSAGE_TOO_BIG_FOR_SYSTEM`` (34) with "Message integrity failure"
(a slip in the C): the lookup takes the first match, so 34 reads "Message too big for
system" and 77 is not found ("Other/Undefined").
"""

from __future__ import annotations

_TABLE: tuple[tuple[int, str], ...] = (
    (0, "Other/Undefined"),
    (10, "Other/Undefined address status"),
    (11, "Bad destination mailbox address"),
    (12, "Bad destination system address"),
    (13, "Bad destination mailbox address syntax"),
    (14, "Destination mailbox address ambiguous"),
    (15, "Destination address valid"),
    (16, "Destination mailbox has moved, No forwarding address"),
    (17, "Bad sender's mailbox address syntax"),
    (18, "Bad sender's system address syntax"),
    (20, "Other/Undefined mailbox status"),
    (21, "Mailbox disabled, not accepting messages"),
    (22, "Mailbox full"),
    (23, "Message length exceeds administrative limit"),
    (24, "Mailing list expansion problem"),
    (30, "Other/Undefined mail system status"),
    (31, "Mail system full"),
    (32, "System not accepting network messages"),
    (33, "System not capable of selected features"),
    (34, "Message too big for system"),
    (35, "System incorrectly configured"),
    (40, "Other/Undefined network or routing status"),
    (41, "No answer from host"),
    (42, "Bad connection"),
    (43, "Directory server failure"),
    (44, "Unable to route"),
    (45, "Mail system congestion"),
    (46, "Routing loop detected"),
    (47, "Delivery time expired"),
    (50, "Invalid Recipient"),
    (51, "Invalid command"),
    (52, "Syntax error"),
    (53, "Too many recipients"),
    (54, "Invalid command arguments"),
    (55, "Wrong protocol version"),
    (60, "Other/Undefined media error"),
    (61, "Media not supported"),
    (62, "Conversion required and prohibited"),
    (63, "Conversion required but not supported"),
    (64, "Conversion with loss performed"),
    (65, "Conversion failed"),
    (70, "Other/Undefined security status"),
    (71, "Delivery not authorized, message refused"),
    (72, "Mailing list expansion prohibited"),
    (73, "Security conversion required but not possible"),
    (74, "Security features not supported"),
    (75, "Cryptographic failure"),
    (76, "Cryptographic algorithm not supported"),
    (34, "Message integrity failure"),  # sic: ESC_MESSAGE_TOO_BIG_FOR_SYSTEM, never reached
)


def esc_code(esc_class: int, code: int) -> str:
    """``esc.c:esc_code()``: ``"%d.%d.%d"`` of the class and the code's two digits."""
    return f"{esc_class}.{code // 10}.{code % 10}"


def esc_description(code: int) -> str:
    """``esc.c:esc_description()``: the first entry with that code, else "Other/Undefined"."""
    for c, text in _TABLE:
        if c == code:
            return text
    return "Other/Undefined"
