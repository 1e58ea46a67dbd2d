"""The kiosk's durable outbox: SQLite in WAL mode, synchronous=FULL (docs/design-notes.md).

A record (leaf, body, presentation) enters in one transaction with the rest of its session
(a check-in and its consent are two leaves written together) and leaves only when a verified
receipt arrives. Then the row is deleted — body and presentation gone — and a PHI-free
receipt line stays (entry hash, leaf index, checkpoint size). A rejected record is *parked*
with the gateway's reason for staff, never silently dropped.

The outbox also holds the kiosk's trust state as a witness of the log: the last accepted
checkpoint (size, root, signed note) and the checkpoints accepted before it (root and note),
so a receipt is checked against the chain. Alarms (the log contradicting itself, with both
signed checkpoints as evidence) are kept until IT clears them with a reason; refused receipts
(forged, malformed) are counted beside them, not raised as alarms.

One connection per Outbox object, guarded by a lock, so the publisher thread and the engine
can share it; several processes may open the same file (WAL + busy timeout). Every sqlite
error, a full disk included, becomes StoreError.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from kiosk.errors import FormatError, StoreError
from kiosk.protocol import cbor
from kiosk.protocol.entry import entry_hash as hash_leaf

SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    entry_hash   BLOB NOT NULL UNIQUE,
    session      INTEGER NOT NULL,
    leaf         BLOB NOT NULL,
    body         BLOB NOT NULL,
    presentation BLOB,               -- deterministic CBOR of the presentation map, or NULL
    created      REAL NOT NULL,      -- wall-clock seconds, for "oldest entry age"
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_sent    REAL,
    base_size    INTEGER,            -- last_size the record carries, fixed at its first send
    parked       INTEGER NOT NULL DEFAULT 0,
    reason       TEXT,
    parked_at    REAL
);
CREATE INDEX IF NOT EXISTS entries_pending ON entries(parked, seq);
CREATE TABLE IF NOT EXISTS receipts (
    entry_hash      BLOB PRIMARY KEY,
    leaf_index      INTEGER NOT NULL,
    checkpoint_size INTEGER NOT NULL,
    completed_at    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trust (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    size      INTEGER NOT NULL,
    root_hash BLOB NOT NULL,
    note      BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    size      INTEGER PRIMARY KEY,
    root_hash BLOB NOT NULL,
    note      BLOB                -- the signed note: evidence if the log ever contradicts it
);
CREATE TABLE IF NOT EXISTS alarms (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       REAL NOT NULL,
    kind     TEXT NOT NULL,
    detail   TEXT NOT NULL,
    evidence BLOB,               -- CBOR list of the signed notes that cannot both be true
    repeats  INTEGER NOT NULL DEFAULT 0,
    cleared_at REAL,
    cleared_reason TEXT
);
CREATE TABLE IF NOT EXISTS refused (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     REAL NOT NULL,
    kind   TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (id INTEGER PRIMARY KEY AUTOINCREMENT);
"""
MAX_ALARMS = 1000
MAX_REFUSED = 1000         # a flood of forged receipts must not fill the disk
# columns added since the first release: (table, column, declaration) for older outboxes
_ADDED_COLUMNS = [("checkpoints", "note", "BLOB"), ("alarms", "evidence", "BLOB"),
                  ("alarms", "repeats", "INTEGER NOT NULL DEFAULT 0"),
                  ("alarms", "cleared_at", "REAL"), ("alarms", "cleared_reason", "TEXT")]
MAX_RECEIPT_LINES = 100_000
MAX_CHECKPOINT_HISTORY = 10_000

SessionRecord = tuple[bytes, bytes, "dict | None"]


class TrustedCheckpoint(NamedTuple):
    """The last checkpoint this kiosk accepted: tree size, root hash and the signed note."""

    size: int
    root_hash: bytes
    note: bytes


class ReceiptSummary(NamedTuple):
    """What stays of a record once its receipt verified: no body, no presentation."""

    leaf_index: int
    checkpoint_size: int


@dataclass(frozen=True)
class OutboxEntry:
    """A record waiting for its receipt."""

    entry_hash: bytes
    leaf: bytes
    body: bytes
    presentation: dict | None
    created: float
    attempts: int
    base_size: int | None
    session: int
    parked: bool = False


@dataclass(frozen=True)
class ParkedEntry:
    """A record the gateway rejected, kept for staff with the gateway's reason."""

    entry_hash: bytes
    reason: str
    created: float
    parked_at: float
    attempts: int


@dataclass(frozen=True)
class Alarm:
    """Something staff and IT must look at: the log signed two checkpoints that cannot both
    be true. `evidence` holds both signed notes; `repeats` counts later sightings."""

    id: int
    at: float
    kind: str
    detail: str
    evidence: tuple[bytes, ...] = ()
    repeats: int = 0
    cleared_at: float | None = None
    cleared_reason: str | None = None


@dataclass(frozen=True)
class Refusal:
    """A receipt the kiosk refused (forged, malformed, failing proof): counted, not an alarm."""

    id: int
    at: float
    kind: str
    detail: str


class Outbox:
    """The durable outbox at `path` (created 0600 if absent)."""

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Create the file 0600 ourselves: sqlite would use the umask, and the WAL and
            # SHM files inherit the main file's mode.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            os.chmod(self.path, 0o600)
            self._db = sqlite3.connect(str(self.path), timeout=busy_timeout_s,
                                       isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            with self._tx():
                for stmt in SCHEMA.split(";"):
                    if stmt.strip():
                        self._db.execute(stmt)
                for table, col, decl in _ADDED_COLUMNS:
                    have = {r[1] for r in self._db.execute(f"PRAGMA table_info({table})")}
                    if col not in have:
                        self._db.execute(f"ALTER TABLE {table} ADD COLUMN {col} {decl}")
        except sqlite3.Error as e:
            raise StoreError(f"outbox {self.path.name}: cannot open ({_what(e)})") from None
        except OSError as e:
            raise StoreError(f"outbox {self.path.name}: cannot create ({e.strerror})") from None

    # ------------------------------------------------------------------ plumbing

    @contextmanager
    def _tx(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction; any sqlite error rolls back and becomes StoreError.

        `durable=False` commits without an fsync (synchronous=NORMAL for this transaction):
        it survives a killed process, and a power cut only until the next durable commit,
        which syncs the WAL with everything before it. Only for writes whose loss costs a
        resend: send counts, completions (see `complete_many` and `sync`).
        """
        with self._lock:
            try:
                if not durable:
                    self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise StoreError(f"outbox: cannot begin a transaction ({_what(e)})") from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as e:
                with contextlib.suppress(sqlite3.Error):  # sqlite may have rolled back (SQLITE_FULL)
                    self._db.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise StoreError(f"outbox: write failed ({_what(e)})") from None
                raise
            finally:
                if not durable:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("PRAGMA synchronous=FULL")

    def sync(self) -> None:
        """Make every commit so far durable against a power cut (one fsync of the WAL).

        Before the kiosk cosigns its head as a witness: a witness keeps what it signed.
        """
        with self._tx() as db:
            # a write, so the commit has a frame to sync (an empty transaction syncs nothing)
            db.execute("UPDATE trust SET size = size WHERE id = 1")

    def _query(self, sql: str, args: Sequence[object] = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as e:
                raise StoreError(f"outbox: read failed ({_what(e)})") from None

    def close(self) -> None:
        """Close the connection (the file stays)."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ records

    def add_session(self, records: Sequence[SessionRecord], *,
                    on_committed: Callable[[], object] | None = None) -> list[bytes]:
        """Store the records of one session in one transaction; return their entry hashes.

        Either every record is durable when this returns, or none is (StoreError). A leaf
        already in the outbox is not stored twice.

        `on_committed` (the publisher's `wake`) is called once the transaction is committed
        and readable, before its fsync: the records go out while the disk syncs them, instead
        of after. That is safe because nothing is *confirmed* before both ends hold a record:
        this call returns (the engine says "checked in") only after the fsync, and the kiosk
        forgets a record only on a receipt, which the gateway sends after its own synced
        commit. A process killed in between keeps the commit (the WAL is in the page cache)
        and sends the record again: the gateway answers the duplicate with the entry it has.
        A power cut in between may undo the commit of a record the gateway already logged;
        it is in the log once, and this call never returned for it.
        """
        if not records:
            return []
        rows = []
        for leaf, body, presentation in records:
            if not isinstance(leaf, bytes) or not isinstance(body, bytes):
                raise FormatError("outbox: leaf and body must be bytes")
            pres = cbor.dumps(presentation) if presentation is not None else None
            rows.append((hash_leaf(leaf), leaf, body, pres))
        if on_committed is None:
            with self._tx() as db:
                self._insert_rows(db, rows)
            return [r[0] for r in rows]
        with self._tx(durable=False) as db:
            self._insert_rows(db, rows)
        try:
            on_committed()
        finally:
            self._sync_wal()
        return [r[0] for r in rows]

    def _sync_wal(self) -> None:
        """Sync the WAL file: what a synchronous=FULL commit does after writing its frames
        (fdatasync, as SQLite uses on Linux: the data and the size needed to read it back).

        Outside the lock, so the publisher reads the outbox meanwhile. A WAL that is gone was
        checkpointed into the database file (synced) as its last connection closed."""
        try:
            fd = os.open(f"{self.path}-wal", os.O_RDONLY)
        except FileNotFoundError:
            return
        except OSError as e:
            raise StoreError(f"outbox {self.path.name}: cannot open its WAL ({e.strerror})") from None
        try:
            _datasync(fd)
        except OSError as e:
            raise StoreError(f"outbox {self.path.name}: fsync failed ({e.strerror})") from None
        finally:
            os.close(fd)

    def _insert_session(self, db: sqlite3.Connection, records: Sequence[SessionRecord]) -> None:
        self._insert_rows(db, [(hash_leaf(leaf), leaf, body,
                                cbor.dumps(p) if p is not None else None)
                               for leaf, body, p in records])

    @staticmethod
    def _insert_rows(db: sqlite3.Connection, rows: list[tuple]) -> None:
        now = time.time()
        session = db.execute("INSERT INTO sessions DEFAULT VALUES").lastrowid
        db.execute("DELETE FROM sessions WHERE id < ?", (session,))  # only the counter matters
        for h, leaf, body, pres in rows:
            db.execute("INSERT OR IGNORE INTO entries (entry_hash, session, leaf, body, "
                       "presentation, created) VALUES (?, ?, ?, ?, ?, ?)",
                       (h, session, leaf, body, pres, now))

    def _entry(self, row: tuple) -> OutboxEntry:
        h, leaf, body, pres, created, attempts, base, session, parked = row
        return OutboxEntry(h, leaf, body, cbor.loads(pres, "presentation") if pres else None,
                           created, attempts, base, session, bool(parked))

    _COLS = "entry_hash, leaf, body, presentation, created, attempts, base_size, session, parked"

    def pending(self, limit: int = 100, exclude: frozenset[bytes] | set[bytes] = frozenset()
                ) -> list[OutboxEntry]:
        """Up to `limit` records waiting for a receipt, oldest first, skipping `exclude`."""
        out: list[OutboxEntry] = []
        with self._lock:
            try:
                cur = self._db.execute(f"SELECT {self._COLS} FROM entries WHERE parked = 0 "
                                       "ORDER BY seq")
                for row in cur:
                    if row[0] in exclude:
                        continue
                    out.append(self._entry(row))
                    if len(out) >= limit:
                        break
                cur.close()
            except sqlite3.Error as e:
                raise StoreError(f"outbox: read failed ({_what(e)})") from None
        return out

    def get(self, entry_hash: bytes) -> OutboxEntry | None:
        """The waiting or parked record named `entry_hash`, or None."""
        rows = self._query(f"SELECT {self._COLS} FROM entries WHERE entry_hash = ?", (entry_hash,))
        return self._entry(rows[0]) if rows else None

    def mark_sent(self, entry_hash: bytes, base_size: int) -> int:
        """Count a send that carries `last_size` = `base_size` (the kiosk's head now)."""
        return self.mark_sent_many([entry_hash], base_size)[entry_hash]

    def mark_sent_many(self, entry_hashes: Sequence[bytes], base_size: int) -> dict[bytes, int]:
        """Count sends of several records in one transaction (one fsync for a whole window).

        Each send names the head as it is at that send: a receipt names the size its proof
        starts from, so a receipt for an older copy is read against its own base, not the
        record's latest (see net.receipt)."""
        now = time.time()
        with self._tx(durable=False) as db:  # lost at a power cut: everything is sent again anyway
            db.executemany("UPDATE entries SET attempts = attempts + 1, last_sent = ?, "
                           "base_size = ? WHERE entry_hash = ?",
                           [(now, base_size, h) for h in entry_hashes])
        return {h: base_size for h in entry_hashes}

    def complete(self, entry_hash: bytes, summary: ReceiptSummary,
                 checkpoint: TrustedCheckpoint | None = None) -> bool:
        """A verified receipt: delete the record, keep its receipt line, maybe advance trust.

        Returns False if the record was no longer there (a second receipt for it).
        """
        with self._tx() as db:
            gone = db.execute("DELETE FROM entries WHERE entry_hash = ?", (entry_hash,)).rowcount
            if gone:
                db.execute("INSERT OR REPLACE INTO receipts VALUES (?, ?, ?, ?)",
                           (entry_hash, summary.leaf_index, summary.checkpoint_size, time.time()))
                db.execute("DELETE FROM receipts WHERE rowid <= (SELECT MAX(rowid) FROM receipts)"
                           " - ?", (MAX_RECEIPT_LINES,))
            if checkpoint is not None:
                self._advance(db, checkpoint)
        return bool(gone)

    def complete_many(self, items: Sequence[tuple[bytes, ReceiptSummary, TrustedCheckpoint]]
                      ) -> int:
        """`complete` for several verified receipts in one transaction; return how many
        records were still there.

        Not synced to disk (`_tx(durable=False)`): after a power cut a completion may be
        undone, the record goes out again and the gateway answers it as a duplicate; the
        head may step back to a checkpoint the chain held before (it is one of its links).
        The publisher calls `sync` before it cosigns a head.
        """
        if not items:
            return 0
        now, gone = time.time(), 0
        with self._tx(durable=False) as db:
            for h, summary, _cp in items:
                if db.execute("DELETE FROM entries WHERE entry_hash = ?", (h,)).rowcount:
                    gone += 1
                    db.execute("INSERT OR REPLACE INTO receipts VALUES (?, ?, ?, ?)",
                               (h, summary.leaf_index, summary.checkpoint_size, now))
            for cp in sorted({c for _, _, c in items}, key=lambda c: c.size):
                self._advance(db, cp)
            db.execute("DELETE FROM receipts WHERE rowid <= (SELECT MAX(rowid) FROM receipts)"
                       " - ?", (MAX_RECEIPT_LINES,))
        return gone

    def park(self, entry_hash: bytes, reason: str) -> None:
        """A rejection: keep the record for staff with the gateway's reason."""
        with self._tx() as db:
            db.execute("UPDATE entries SET parked = 1, reason = ?, parked_at = ? "
                       "WHERE entry_hash = ?", (reason[:200], time.time(), entry_hash))

    def unpark(self) -> int:
        """Put every parked record back in the queue (after IT fixed the cause, e.g. the
        kiosk was registered). Returns how many."""
        with self._tx() as db:
            return db.execute("UPDATE entries SET parked = 0, reason = NULL, parked_at = NULL "
                              "WHERE parked = 1").rowcount

    def parked(self) -> list[ParkedEntry]:
        """The rejected records, oldest first."""
        return [ParkedEntry(*r) for r in self._query(
            "SELECT entry_hash, reason, created, parked_at, attempts FROM entries "
            "WHERE parked = 1 ORDER BY seq")]

    def receipt(self, entry_hash: bytes) -> ReceiptSummary | None:
        """The receipt line of a completed record, or None."""
        rows = self._query("SELECT leaf_index, checkpoint_size FROM receipts WHERE entry_hash = ?",
                           (entry_hash,))
        return ReceiptSummary(*rows[0]) if rows else None

    def depth(self) -> int:
        """How many records wait for a receipt (parked ones not counted)."""
        return self._query("SELECT COUNT(*) FROM entries WHERE parked = 0")[0][0]

    def oldest_age_s(self, now: float | None = None) -> float | None:
        """Age in seconds of the oldest waiting record, or None when the outbox is empty."""
        oldest = self._query("SELECT MIN(created) FROM entries WHERE parked = 0")[0][0]
        return None if oldest is None else max(0.0, (now or time.time()) - oldest)

    # ------------------------------------------------------------------ trust state

    def last_checkpoint(self) -> TrustedCheckpoint | None:
        """The largest checkpoint this kiosk accepted, or None before the first receipt."""
        rows = self._query("SELECT size, root_hash, note FROM trust WHERE id = 1")
        return TrustedCheckpoint(*rows[0]) if rows else None

    def set_last_checkpoint(self, size: int, root_hash: bytes, note: bytes) -> bool:
        """Record an accepted checkpoint; trust only moves forward. True if it moved."""
        with self._tx() as db:
            return self._advance(db, TrustedCheckpoint(size, root_hash, note))

    def _advance(self, db: sqlite3.Connection, cp: TrustedCheckpoint) -> bool:
        db.execute("INSERT OR IGNORE INTO checkpoints (size, root_hash, note) VALUES (?, ?, ?)",
                   (cp.size, cp.root_hash, cp.note))
        row = db.execute("SELECT size FROM trust WHERE id = 1").fetchone()
        if row is not None and row[0] >= cp.size:
            return False
        db.execute("INSERT OR REPLACE INTO trust VALUES (1, ?, ?, ?)",
                   (cp.size, cp.root_hash, cp.note))
        db.execute("DELETE FROM checkpoints WHERE size < (SELECT size FROM checkpoints "
                   "ORDER BY size DESC LIMIT 1 OFFSET ?)", (MAX_CHECKPOINT_HISTORY,))
        return True

    def checkpoint_root(self, size: int) -> bytes | None:
        """The root of an accepted checkpoint of `size`, if the history still holds it."""
        rows = self._query("SELECT root_hash FROM checkpoints WHERE size = ?", (size,))
        return rows[0][0] if rows else None

    def checkpoint_link(self, size: int) -> TrustedCheckpoint | None:
        """The accepted checkpoint of `size` with its note (b"" if kept by an older version)."""
        rows = self._query("SELECT size, root_hash, note FROM checkpoints WHERE size = ?", (size,))
        return TrustedCheckpoint(rows[0][0], rows[0][1], rows[0][2] or b"") if rows else None

    # ------------------------------------------------------------------ alarms

    def raise_alarm(self, kind: str, detail: str, evidence: Sequence[bytes] = ()) -> int:
        """Keep an alarm for staff (`detail` holds no personal data); return its id.

        While an alarm of the same kind waits to be cleared, a new one only counts as a repeat
        of it: one fork is one alarm, however many receipts show it.
        """
        with self._tx() as db:
            row = db.execute("SELECT id FROM alarms WHERE kind = ? AND cleared_at IS NULL "
                             "ORDER BY id LIMIT 1", (kind,)).fetchone()
            if row is not None:
                db.execute("UPDATE alarms SET repeats = repeats + 1 WHERE id = ?", (row[0],))
                return int(row[0])
            cur = db.execute("INSERT INTO alarms (at, kind, detail, evidence) VALUES (?, ?, ?, ?)",
                             (time.time(), kind, detail[:500],
                              cbor.dumps(list(evidence)) if evidence else None))
            db.execute("DELETE FROM alarms WHERE id <= (SELECT MAX(id) FROM alarms) - ?",
                       (MAX_ALARMS,))
            return int(cur.lastrowid or 0)

    def _alarm(self, r: tuple) -> Alarm:
        ev = tuple(cbor.loads(r[4], "alarm evidence")) if r[4] else ()
        return Alarm(r[0], r[1], r[2], r[3], ev, r[5], r[6], r[7])

    _ALARM_COLS = "id, at, kind, detail, evidence, repeats, cleared_at, cleared_reason"

    def alarms(self, since_id: int = 0, *, include_cleared: bool = False) -> list[Alarm]:
        """Alarms with an id above `since_id`, oldest first; cleared ones only if asked."""
        where = "" if include_cleared else " AND cleared_at IS NULL"
        return [self._alarm(r) for r in self._query(
            f"SELECT {self._ALARM_COLS} FROM alarms WHERE id > ?{where} ORDER BY id",
            (since_id,))]

    def alarm(self, alarm_id: int) -> Alarm | None:
        """One alarm, cleared or not."""
        rows = self._query(f"SELECT {self._ALARM_COLS} FROM alarms WHERE id = ?", (alarm_id,))
        return self._alarm(rows[0]) if rows else None

    def clear_alarm(self, alarm_id: int, reason: str,
                    record: SessionRecord | None = None) -> Alarm:
        """IT reviewed an alarm: mark it cleared with `reason`, and in the same transaction
        queue `record` (the kiosk-event entry that logs the clearing). StoreError if there is
        no such uncleared alarm; the evidence is kept."""
        with self._tx() as db:
            n = db.execute("UPDATE alarms SET cleared_at = ?, cleared_reason = ? "
                           "WHERE id = ? AND cleared_at IS NULL",
                           (time.time(), reason[:500], alarm_id)).rowcount
            if not n:
                raise StoreError(f"outbox: no alarm {alarm_id} waiting to be cleared")
            if record is not None:
                self._insert_session(db, [record])
        got = self.alarm(alarm_id)
        assert got is not None
        return got

    def refuse(self, kind: str, detail: str) -> None:
        """Count a refused receipt (forged, malformed, failing its proof) for IT to see."""
        with self._tx() as db:
            db.execute("INSERT INTO refused (at, kind, detail) VALUES (?, ?, ?)",
                       (time.time(), kind, detail[:300]))
            db.execute("DELETE FROM refused WHERE id <= (SELECT MAX(id) FROM refused) - ?",
                       (MAX_REFUSED,))

    def refusals(self) -> list[Refusal]:
        """The refused receipts kept (the newest MAX_REFUSED), oldest first."""
        return [Refusal(*r) for r in self._query(
            "SELECT id, at, kind, detail FROM refused ORDER BY id")]


def _datasync(fd: int) -> None:
    getattr(os, "fdatasync", os.fsync)(fd)  # macOS has no fdatasync


def _what(e: sqlite3.Error) -> str:
    """A short, data-free description of a sqlite error (its message names no values)."""
    return str(e).split("\n")[0][:120] or type(e).__name__
