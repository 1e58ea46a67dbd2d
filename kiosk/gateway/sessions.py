"""Presentation replay bookkeeping for the gateway (docs/design-notes.md).

A session is a check-in entry (or another session-starting entry) and the entries whose
`refs` name it; all of them carry the same presentation. The gateway remembers, for each
presentation it has seen, the entry hash of the entry that first used it (its *owner*). A
presentation whose owner is neither the entry itself nor named in the entry's `refs` is a
replay.

The table lives next to the log — in the same SQLite file, or in the same PostgreSQL schema
— so several gateways on one log share it. A claim is made *before* the entry is appended:
if the append then fails, the claim stays, the kiosk's resend of the same leaf finds itself
as the owner, and nobody else can use the presentation meanwhile. Claims are atomic
(INSERT … ON CONFLICT DO NOTHING, then read the owner), so two gateways racing with the same
presentation in two sessions get one owner between them.

Beside it, `checkpoint_times` keeps when this log signed (or first published) each
checkpoint note: an NFC nonce commits to a checkpoint, and the gateway judges that
presentation no earlier than the time kept here (docs/design-notes.md, "Time").
"""
from __future__ import annotations

import time
from pathlib import Path

from kiosk.config import Config
from kiosk.errors import StoreError
from kiosk.ledger.sql_tables import PostgresTables, SqliteTables, SqlTables

TABLE = "presentation_sessions"
_DDL_SQLITE = ["""CREATE TABLE IF NOT EXISTS {presentation_sessions} (presentation_hash BLOB PRIMARY KEY,
                  entry_hash BLOB NOT NULL, claimed_at INTEGER NOT NULL) WITHOUT ROWID""",
               """CREATE TABLE IF NOT EXISTS {checkpoint_times} (note_hash BLOB PRIMARY KEY,
                  size INTEGER NOT NULL, signed_at INTEGER NOT NULL) WITHOUT ROWID"""]
_DDL_POSTGRES = ["""CREATE TABLE IF NOT EXISTS {presentation_sessions} (presentation_hash BYTEA PRIMARY KEY,
                    entry_hash BYTEA NOT NULL, claimed_at BIGINT NOT NULL)""",
                 """CREATE TABLE IF NOT EXISTS {checkpoint_times} (note_hash BYTEA PRIMARY KEY,
                    size BIGINT NOT NULL, signed_at BIGINT NOT NULL)"""]


class SessionTable:
    """presentation_hash → owner entry_hash, over SQLite or PostgreSQL."""

    def __init__(self, tables: SqlTables) -> None:
        self._t = tables

    def owner(self, presentation_hash: bytes) -> bytes | None:
        """The entry hash that first used this presentation, or None."""
        rows = self._t.q("SELECT entry_hash FROM {presentation_sessions} WHERE presentation_hash = %s",
                         (presentation_hash,))
        return bytes(rows[0][0]) if rows else None

    def claim(self, presentation_hash: bytes, entry_hash: bytes) -> bytes:
        """Make `entry_hash` the owner unless there is one; return the owner either way.

        INSERT … ON CONFLICT DO NOTHING waits for a racing insert to commit, so the read that
        follows sees the one owner both racers agree on.
        """
        # No fsync of its own: the claim is made for an entry about to be appended, and the
        # append's durable commit to the same file syncs the WAL with the claim in it. A power
        # cut before that loses both: the entry was never logged, its resend claims again.
        self._t.q("INSERT INTO {presentation_sessions} VALUES (%s, %s, %s) "
                  "ON CONFLICT (presentation_hash) DO NOTHING",
                  (presentation_hash, entry_hash, int(time.time())), durable=False)
        owner = self.owner(presentation_hash)
        if owner is None:
            raise StoreError("session table: a claimed presentation has no owner")
        return owner

    def note_checkpoint(self, note_hash: bytes, size: int, at: int, *, durable: bool = True) -> None:
        """Remember when a checkpoint note was signed; the first time kept is the one that stays
        (a note seen again later, or published by another gateway, keeps its earlier time).

        `durable=False`: no fsync of its own (SQLite); the next durable commit to the file
        (the next batch's append, or `sync`) makes it durable. See docs/design-notes.md,
        "Durability"."""
        self._t.q("INSERT INTO {checkpoint_times} VALUES (%s, %s, %s) ON CONFLICT (note_hash) DO NOTHING",
                  (note_hash, size, at), durable=durable)

    def sync(self, note_hash: bytes) -> None:
        """Make every commit to the table's file so far durable (one fsync of the WAL).

        It rewrites the row of `note_hash` as it is: a commit that writes nothing would sync
        nothing."""
        self._t.q("UPDATE {checkpoint_times} SET signed_at = signed_at WHERE note_hash = %s",
                  (note_hash,))

    def checkpoint_time(self, note_hash: bytes) -> int | None:
        """When this log signed the checkpoint note `note_hash` (Unix seconds), or None."""
        rows = self._t.q("SELECT signed_at FROM {checkpoint_times} WHERE note_hash = %s", (note_hash,))
        return int(rows[0][0]) if rows else None

    def close(self) -> None:
        self._t.close()


class SqliteSessions(SessionTable):
    """The table inside the log's SQLite file (its own connection; WAL allows both)."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(SqliteTables(path, _DDL_SQLITE, "session table"))


class PostgresSessions(SessionTable):
    """The table inside the log's PostgreSQL schema (created if missing)."""

    def __init__(self, dsn: str, schema: str) -> None:
        super().__init__(PostgresTables(dsn, schema, _DDL_POSTGRES, "session table"))


def open_sessions(cfg: Config) -> SessionTable:
    """The session table next to the log the configuration names."""
    gw = cfg.gateway
    if gw.store == "postgres":
        return PostgresSessions(gw.postgres_dsn, gw.postgres_schema)
    return SqliteSessions(cfg.state_path(gw.sqlite_path))
