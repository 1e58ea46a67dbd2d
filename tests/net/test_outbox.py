"""Outbox: atomic sessions, receipts, parking, trust state, crash safety, full disk."""
from __future__ import annotations

import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from kiosk.errors import FormatError, StoreError
from kiosk.net.outbox import Outbox, ReceiptSummary, TrustedCheckpoint
from kiosk.protocol.entry import entry_hash

from .helpers import make_session

KEY = SigningKey.generate()


def test_session_is_atomic_and_ordered(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite3")
    recs = make_session(KEY)
    hashes = ob.add_session(recs)
    assert hashes == [entry_hash(r[0]) for r in recs]
    pend = ob.pending(10)
    assert [p.entry_hash for p in pend] == hashes
    assert pend[0].session == pend[1].session
    assert pend[0].presentation == recs[0][2] and pend[1].body == recs[1][1]
    assert ob.depth() == 2 and ob.oldest_age_s() is not None
    # a bad record in the middle of a session stores nothing of it
    with pytest.raises(FormatError):
        ob.add_session([make_session(KEY)[0], ("not bytes", b"", None)])  # type: ignore[list-item]
    assert ob.depth() == 2
    # the same leaf added twice is kept once
    ob.add_session(recs[:1])
    assert ob.depth() == 2


def test_file_mode_is_0600(tmp_path: Path) -> None:
    p = tmp_path / "o.sqlite3"
    Outbox(p).add_session(make_session(KEY))
    for f in (p, Path(str(p) + "-wal")):
        if f.exists():
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_complete_keeps_only_a_receipt_line(tmp_path: Path) -> None:
    p = tmp_path / "o.sqlite3"
    ob = Outbox(p)
    h1, h2 = ob.add_session(make_session(KEY))
    assert ob.mark_sent(h1, 0) == 0
    assert ob.mark_sent(h1, 7) == 7  # each send names the head as it is then
    assert ob.get(h1).base_size == 7
    assert ob.pending(10)[0].attempts == 2
    cp = TrustedCheckpoint(5, b"r" * 32, b"note")
    assert ob.complete(h1, ReceiptSummary(4, 5), cp)
    assert not ob.complete(h1, ReceiptSummary(4, 5))
    assert ob.get(h1) is None and ob.receipt(h1) == (4, 5)
    assert ob.depth() == 1 and ob.last_checkpoint() == cp
    assert ob.checkpoint_root(5) == b"r" * 32
    ob.close()
    # nothing of the body is left in the file's live tables
    db = sqlite3.connect(p)
    assert db.execute("SELECT COUNT(*) FROM entries WHERE entry_hash = ?", (h1,)).fetchone()[0] == 0


def test_park_keeps_the_entry_for_staff(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite3")
    h1, h2 = ob.add_session(make_session(KEY))
    ob.park(h1, "unknown-kiosk")
    assert [p.entry_hash for p in ob.parked()] == [h1]
    assert ob.parked()[0].reason == "unknown-kiosk"
    assert [p.entry_hash for p in ob.pending(10)] == [h2]
    assert ob.depth() == 1 and ob.get(h1) is not None and ob.get(h1).parked


def test_trust_moves_only_forward_and_alarms(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite3")
    assert ob.last_checkpoint() is None
    assert ob.set_last_checkpoint(10, b"a" * 32, b"n10")
    assert not ob.set_last_checkpoint(8, b"b" * 32, b"n8")
    assert ob.last_checkpoint().size == 10
    assert ob.checkpoint_root(8) == b"b" * 32  # kept in the history all the same
    first = ob.raise_alarm("log-inconsistent", "entry abcd: test", [b"n10", b"other n10"])
    assert ob.raise_alarm("log-inconsistent", "entry abce: again") == first  # one fork, one alarm
    ob.raise_alarm("other-kind", "entry ef01: test")
    assert [a.kind for a in ob.alarms()] == ["log-inconsistent", "other-kind"]
    assert ob.alarms(since_id=first)[0].kind == "other-kind"
    cleared = ob.clear_alarm(first, "reviewed: gateway restored from backup")
    assert cleared.cleared_reason.startswith("reviewed") and cleared.repeats == 1
    assert cleared.evidence == (b"n10", b"other n10")  # the evidence stays
    assert [a.kind for a in ob.alarms()] == ["other-kind"]
    assert len(ob.alarms(include_cleared=True)) == 2


def test_state_survives_reopen(tmp_path: Path) -> None:
    p = tmp_path / "o.sqlite3"
    ob = Outbox(p)
    hashes = ob.add_session(make_session(KEY))
    ob.set_last_checkpoint(3, b"c" * 32, b"n")
    ob.close()
    ob2 = Outbox(p)
    assert [e.entry_hash for e in ob2.pending(10)] == hashes
    assert ob2.last_checkpoint().size == 3


def test_full_disk_fails_cleanly_and_loses_nothing(tmp_path: Path) -> None:
    ob = Outbox(tmp_path / "o.sqlite3")
    stored: list[bytes] = []
    stored += ob.add_session(make_session(KEY))
    pages = ob._db.execute("PRAGMA page_count").fetchone()[0]
    ob._db.execute(f"PRAGMA max_page_count = {pages + 3}")
    big = os.urandom(6000)  # a body spanning pages fills the cap quickly
    with pytest.raises(StoreError):
        for _ in range(100):
            sess = [(leaf, big, pres) for leaf, _, pres in make_session(KEY)]
            stored += ob.add_session(sess)
    assert sorted(e.entry_hash for e in ob.pending(1000)) == sorted(stored)
    assert len(stored) % 2 == 0  # no half session
    ob.close()
    ob2 = Outbox(tmp_path / "o.sqlite3")
    assert ob2._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert ob2.depth() == len(stored)


WRITER = textwrap.dedent("""
    import sys
    from nacl.signing import SigningKey
    from kiosk.net.outbox import Outbox
    from tests.net.helpers import make_session
    key = SigningKey.generate()
    ob = Outbox(sys.argv[1])
    print("ready", flush=True)
    while True:
        ob.add_session(make_session(key))
""")


def test_killed_writer_leaves_a_consistent_outbox(tmp_path: Path) -> None:
    p = tmp_path / "o.sqlite3"
    repo = Path(__file__).resolve().parents[2]
    rng = random.Random(7)
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(p)], cwd=repo,
                                stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        ob = Outbox(p)
        assert ob._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        sessions = ob._db.execute("SELECT session, COUNT(*) FROM entries GROUP BY session").fetchall()
        assert sessions and all(n == 2 for _, n in sessions)
        ob.close()


FAST_WRITER = textwrap.dedent("""
    import sys
    from nacl.signing import SigningKey
    from kiosk.net.outbox import Outbox, ReceiptSummary, TrustedCheckpoint
    from tests.net.helpers import make_session
    ob = Outbox(sys.argv[1])
    hashes = ob.add_session(make_session(SigningKey.generate()))
    ob.mark_sent_many(hashes, 0)
    ob.complete_many([(hashes[0], ReceiptSummary(0, 1), TrustedCheckpoint(1, b"r" * 32, b"n"))])
    print("done", flush=True)
    sys.stdin.read()  # killed here, no clean close
""")


def test_unsynced_commits_survive_a_killed_process(tmp_path: Path) -> None:
    """Send counts and completions skip the fsync (a power cut may undo them, a crash not)."""
    p = tmp_path / "o.sqlite3"
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", FAST_WRITER, str(p)], cwd=repo,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"done"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    assert proc.stdin is not None
    proc.stdin.close()
    ob = Outbox(p)
    (left,) = ob.pending(10)
    assert left.attempts == 1 and ob.depth() == 1
    assert ob.last_checkpoint() == TrustedCheckpoint(1, b"r" * 32, b"n")
    # every other write is synced: the connection is back at FULL after a fast commit
    assert ob._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    ob.mark_sent_many([left.entry_hash], 1)
    assert ob._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    ob.sync()
    assert ob._db.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_on_committed_sees_the_session_readable_before_it_is_synced(tmp_path: Path) -> None:
    """The publisher is woken between the commit and its fsync, and can read the records."""
    p = tmp_path / "o.sqlite3"
    ob = Outbox(p)
    recs = make_session(KEY)
    seen: list[list[bytes]] = []
    fsyncs: list[int] = []

    def other_connection_reads() -> None:
        other = Outbox(p)  # what a second process (or the publisher's thread) sees
        try:
            seen.append([e.entry_hash for e in other.pending(10)])
        finally:
            other.close()
        assert not fsyncs  # woken before the sync

    import kiosk.net.outbox as outbox_module

    real_sync = outbox_module._datasync
    outbox_module._datasync = lambda fd: (fsyncs.append(fd), real_sync(fd))[1]  # type: ignore[assignment]
    try:
        hashes = ob.add_session(recs, on_committed=other_connection_reads)
    finally:
        outbox_module._datasync = real_sync  # type: ignore[assignment]
    assert seen == [hashes] and len(fsyncs) == 1  # one fsync, of the WAL, after the wake-up
    # a hook that fails still leaves the session stored and synced
    with pytest.raises(RuntimeError):
        ob.add_session(make_session(KEY), on_committed=lambda: (_ for _ in ()).throw(RuntimeError()))
    assert ob.depth() == 4
    assert ob._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # back at FULL


KILLED_WHILE_SYNCING = textwrap.dedent("""
    import os, signal, sys
    from nacl.signing import SigningKey
    from kiosk.net.outbox import Outbox
    from tests.net.helpers import make_session
    ob = Outbox(sys.argv[1])
    ob.add_session(make_session(SigningKey.generate()),
                   on_committed=lambda: os.kill(os.getpid(), signal.SIGKILL))
    print("not reached", flush=True)
""")


def test_a_session_committed_before_its_fsync_survives_a_kill(tmp_path: Path) -> None:
    p = tmp_path / "o.sqlite3"
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", KILLED_WHILE_SYNCING, str(p)], cwd=repo,
                          capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL and b"not reached" not in proc.stdout
    ob = Outbox(p)
    assert ob.depth() == 2  # both records of the session, to be sent (again)
    assert ob._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
