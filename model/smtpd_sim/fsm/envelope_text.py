"""Size of an envelope as serialized by ``envelope.c:envelope_dump_buffer()`` (imsg payload)."""

from __future__ import annotations

from typing import Any

# The 6.8 text format with empty optional fields is ~230 bytes plus the addresses:
# real-traces local-1rcpt: LKA_ENVELOPE_SUBMIT len=299 for sender@local.test ->
# alice@local.test (rcpt and dest), i.e. 299 - 9 (reqid + framing) - 3*16 = 242.
_FIXED = 242


def envelope_len(evp: dict[str, Any]) -> int:
    """Bytes of the serialized envelope (without the imsg's own id fields)."""
    return _FIXED + len(evp.get("sender", "")) + len(evp.get("rcpt", "")) + len(evp.get("dest", evp.get("rcpt", "")))
