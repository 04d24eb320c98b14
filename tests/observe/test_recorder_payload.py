"""observe.recorder.payload_summary: one short line per imsg payload, ids in hex."""

from __future__ import annotations

from smtpd_sim.observe.recorder import PAYLOAD_SUMMARY_CHARS, Recorder, payload_summary


class _Evp:
    rcpt = "bob@local.test"


def test_ids_in_hex_quantities_in_decimal_text_cut_objects_by_their_address() -> None:
    s = payload_summary({"session": 0xABCDEF0123456789, "msgid": 0x2A, "uid": 1001,
                         "line": "x" * 100, "envelope": _Evp(), "addrs": [1, 2]})
    assert s.startswith("session=abcdef0123456789, msgid=0000002a, uid=1001, line='xxx")
    assert "...'" in s and "envelope=_Evp(rcpt='bob@local.test')" in s and s.endswith("addrs=[2]")


def test_a_long_payload_is_cut_to_one_line() -> None:
    s = payload_summary({f"k{i}": "v" * 30 for i in range(20)})
    assert len(s) == PAYLOAD_SUMMARY_CHARS and s.endswith("…")


def test_the_recorder_keeps_payloads_only_when_asked() -> None:
    rec = Recorder(rows=True)
    assert rec.payloads is None
    rec.payload(1, {"evpid": 1})
    assert rec.payloads is None
    rec.payloads = {}
    rec.payload(1, {"evpid": 0x1122334455667788})
    assert rec.payloads == {1: "evpid=1122334455667788"}
