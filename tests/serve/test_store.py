"""The live server's files (``smtpd_sim.serve.store``): the queue_fs.c layout, the commit
and its fsyncs, envelope update and delete, the walk at start-up, maildir delivery."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

import pytest

from smtpd_sim.fsm.envelope import D_MDA, Envelope
from smtpd_sim.serve import store as store_mod
from smtpd_sim.serve.store import Maildirs, QueueStore, write_file

MSGID = 0xA1B2C3D4


def _evp(low: int, rcpt: str = "alice@local.test", creation: float = 5.0, msgid: int = MSGID) -> Envelope:
    e = Envelope(id=(msgid << 32) | low, type=D_MDA, sender="s@local.test", rcpt=rcpt, dest=rcpt,
                 creation=creation, mda_user=rcpt.partition("@")[0])
    return e


def test_commit_writes_the_queue_fs_layout(tmp_path: Path) -> None:
    q = QueueStore(tmp_path)
    q.commit(MSGID, [_evp(1), _evp(2, "bob@local.test")], b"Subject: x\n\nbody\n")
    d = tmp_path / "queue" / "a1" / "a1b2c3d4"  # fsqueue_message_path(): %02x of msgid >> 24, %08x
    assert sorted(p.name for p in d.iterdir()) == ["a1b2c3d400000001", "a1b2c3d400000002", "message"]
    assert (d / "message").read_bytes() == b"Subject: x\n\nbody\n"
    assert list((tmp_path / "incoming").iterdir()) == []  # renamed away, nothing left behind
    doc = json.loads((d / "a1b2c3d400000002").read_text())
    assert doc["envelope"]["rcpt"] == "bob@local.test" and doc["envelope"]["id"] == (MSGID << 32) | 2
    assert {k: sorted(v) for k, v in q.queued().items()} == {MSGID: [(MSGID << 32) | 1, (MSGID << 32) | 2]}


def test_commit_fsyncs_every_file_and_directory_before_the_rename(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    q = QueueStore(tmp_path)
    events: list[str] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        events.append("fsync " + os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 2)[-1])
        real_fsync(fd)

    def rename(a: object, b: object) -> None:
        events.append("rename")
        real_rename(a, b)  # type: ignore[arg-type]

    monkeypatch.setattr(store_mod.os, "fsync", fsync)
    monkeypatch.setattr(store_mod.os, "rename", rename)
    q.commit(MSGID, [_evp(1), _evp(2)], b"body\n")
    # the message file, the envelope files, /incoming/<msgid>, /queue (a new bucket was made
    # in it), then the rename, then the bucket (so the rename itself is durable)
    assert events == ["fsync message", "fsync a1b2c3d400000001", "fsync a1b2c3d400000002",
                      "fsync a1b2c3d4", "fsync queue", "rename", "fsync a1"]
    events.clear()
    q.commit(MSGID + 1, [_evp(3, msgid=MSGID + 1)], b"body\n")  # same bucket: no new directory
    assert events == ["fsync message", "fsync a1b2c3d500000003", "fsync a1b2c3d5", "rename", "fsync a1"]


def test_a_failed_write_leaves_nothing_and_raises(tmp_path: Path) -> None:
    calls = []

    def enospc_on_envelopes(path: Path, data: bytes) -> None:
        calls.append(path.name)
        if path.name != "message":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        write_file(path, data)

    q = QueueStore(tmp_path, write=enospc_on_envelopes)
    with pytest.raises(OSError) as e:
        q.commit(MSGID, [_evp(1)], b"body\n")
    assert e.value.errno == errno.ENOSPC
    assert calls == ["message", "a1b2c3d400000001"]
    assert q.queued() == {}
    assert list((tmp_path / "incoming").iterdir()) == []


def test_update_and_delete_as_queue_fs_does(tmp_path: Path) -> None:
    q = QueueStore(tmp_path)
    a, b = _evp(1), _evp(2)
    q.commit(MSGID, [a, b], b"body\n")
    a.retry, a.errorline = 1, "exited abnormally"
    q.envelope_update(a)
    doc = json.loads(q.envelope_path(a.id).read_text())
    assert doc["envelope"]["retry"] == 1 and doc["envelope"]["errorline"] == "exited abnormally"
    assert not (tmp_path / "incoming" / "envelope.tmp").exists()
    q.envelope_delete(a.id)
    assert sorted(q.queued()[MSGID]) == [b.id]
    q.envelope_delete(b.id)  # the last envelope takes the message directory with it
    assert not q.message_path(MSGID).exists()
    q.envelope_delete(b.id)  # ENOENT is not an error (queue_fs_envelope_delete())
    q.envelope_update(b)  # nor is an update of an envelope whose message is gone
    assert q.queued() == {}


def test_start_up_purges_incoming_and_reloads_the_queue_on_a_new_clock(tmp_path: Path) -> None:
    q = QueueStore(tmp_path)
    q.clock_offset = 1000.0  # simulation second 5 is wall-clock second 1005
    e = _evp(1, creation=5.0)
    e.retry = 2
    q.commit(MSGID, [e], b"body\n")
    name = q.delivery_name(e.id)
    assert name is not None and f"{e.id:016x}" in name
    assert json.loads(q.envelope_path(e.id).read_text())["envelope"]["creation"] == 1005.0
    # debris a crash leaves: a half-made incoming message, bogus names, an empty message dir
    (tmp_path / "incoming" / "0badf00d").mkdir()
    (tmp_path / "incoming" / "0badf00d" / "message").write_bytes(b"half")
    (tmp_path / "queue" / "zz").mkdir()
    (q.message_path(MSGID) / "not-an-envelope").write_text("x")
    empty = q.message_path(0xA1000001)
    empty.mkdir(parents=True)
    (empty / "message").write_bytes(b"orphan")

    with pytest.raises(OSError) as busy:
        QueueStore(tmp_path)  # a second server on the same queue
    assert busy.value.errno == errno.EBUSY and "in use" in str(busy.value)
    q.close()
    q2 = QueueStore(tmp_path)  # a restart
    q2.clock_offset = 1003.0  # its simulation clock started 3 s later
    assert list((tmp_path / "incoming").iterdir()) == []
    got = q2.load()
    assert list(got.envelopes) == [MSGID] and got.count == 1 and got.skipped == []
    r = got.envelopes[MSGID][0]
    assert (r.id, r.rcpt, r.retry, r.creation) == (e.id, e.rcpt, 2, 2.0)
    assert got.bodies[MSGID] == b"body\n"
    assert q2.delivery_name(e.id) == name  # the same maildir name: a redelivery is recognised
    assert not empty.exists()


def test_an_unreadable_envelope_is_skipped_with_one_line(tmp_path: Path) -> None:
    q = QueueStore(tmp_path)
    q.commit(MSGID, [_evp(1), _evp(2)], b"body\n")
    q.envelope_path((MSGID << 32) | 2).write_text('{"format": "smtpd-sim-envelope/1", "env')
    q.close()
    got = QueueStore(tmp_path).load()
    assert [e.id & 0xFFFFFFFF for e in got.envelopes[MSGID]] == [1]
    assert len(got.skipped) == 1 and "a1b2c3d400000002" in got.skipped[0]


def test_maildir_delivery_is_tmp_fsync_rename_and_idempotent(tmp_path: Path) -> None:
    m = Maildirs(tmp_path)
    assert m.deliver("alice", "1.M1.00000001.host", b"hello\n")
    assert (tmp_path / "alice" / "new" / "1.M1.00000001.host").read_bytes() == b"hello\n"
    assert list((tmp_path / "alice" / "tmp").iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "alice").iterdir()) == ["cur", "new", "tmp"]
    # a redelivery after a crash (the envelope survived the rename): not written twice,
    # also once a mail reader has moved it to cur/
    assert not m.deliver("alice", "1.M1.00000001.host", b"hello\n")
    os.rename(tmp_path / "alice" / "new" / "1.M1.00000001.host", tmp_path / "alice" / "cur" / "1.M1.00000001.host:2,S")
    assert not m.deliver("alice", "1.M1.00000001.host", b"hello\n")
    assert m.names("alice") == ["1.M1.00000001.host:2,S"]
    name = m.fresh_name()
    assert name.split(".")[0].isdigit() and int(name.split(".")[0]) <= int(time.time())


def test_maildir_errors_are_oserrors_and_leave_no_tmp_file(tmp_path: Path) -> None:
    (tmp_path / "bob").write_text("a file where the maildir should be")  # root cannot write through it
    with pytest.raises(OSError) as e:
        Maildirs(tmp_path).deliver("bob", "n1", b"x")
    assert e.value.errno == errno.ENOTDIR

    full = True

    def writer(path: Path, data: bytes) -> None:
        if full:
            path.write_bytes(data[:1])  # a short write, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        write_file(path, data)

    m = Maildirs(tmp_path, write=writer)
    with pytest.raises(OSError) as e:
        m.deliver("carol", "n2", b"xyz")
    assert e.value.errno == errno.ENOSPC
    assert list((tmp_path / "carol" / "tmp").iterdir()) == [] and m.names("carol") == []
    full = False
    assert m.deliver("carol", "n2", b"xyz")
    assert m.names("carol") == ["n2"]
    with pytest.raises(OSError):
        m.deliver("../etc", "n3", b"x")


def test_message_ids_count_what_is_delivered_and_what_is_queued(tmp_path: Path) -> None:
    """The durability checks count by Message-ID: twice in the maildirs is a duplicate; a header
    without one, or a Message-ID line in the body, does not count."""
    from smtpd_sim.serve.store import delivered_ids, queued_ids

    new = tmp_path / "m" / "alice" / "new"
    new.mkdir(parents=True)
    (new / "1").write_bytes(b"Subject: x\nMessage-ID: <a@t>\n\nbody\n")
    (new / "2").write_bytes(b"Message-Id: <a@t>\n\n")
    (new / "3").write_bytes(b"Subject: none\n\nMessage-ID: <in-body@t>\n")
    (tmp_path / "m" / "alice" / "tmp").mkdir()
    (tmp_path / "m" / "alice" / "tmp" / "4").write_bytes(b"Message-ID: <unfinished@t>\n\n")
    msg = tmp_path / "q" / "queue" / "01" / "0000002a"
    msg.mkdir(parents=True)
    (msg / "message").write_bytes(b"Message-ID: <b@t>\n\n")
    assert delivered_ids(tmp_path / "m") == {"<a@t>": 2}
    assert queued_ids(tmp_path / "q") == {"<b@t>"}
