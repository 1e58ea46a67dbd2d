"""Presentation replay bookkeeping for the gateway (DESIGN §7 "Presentations").

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
"""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from kiosk.config import Config
from kiosk.errors import StoreError

TABLE = "presentation_sessions"


class SessionTable:
    """presentation_hash → owner entry_hash. `SqliteSessions` and `PostgresSessions` implement it."""

    def owner(self, presentation_hash: bytes) -> bytes | None:
        """The entry hash that first used this presentation, or None."""
        raise NotImplementedError

    def claim(self, presentation_hash: bytes, entry_hash: bytes) -> bytes:
        """Make `entry_hash` the owner unless there is one; return the owner either way."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class SqliteSessions(SessionTable):
    """The table inside the log's SQLite file (its own connection; WAL allows both)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(f"""CREATE TABLE IF NOT EXISTS {TABLE} (
                presentation_hash BLOB PRIMARY KEY, entry_hash BLOB NOT NULL,
                claimed_at INTEGER NOT NULL) WITHOUT ROWID""")
        except sqlite3.Error as e:
            raise StoreError(f"{self.path.name}: cannot open the session table ({e})") from None

    def owner(self, presentation_hash: bytes) -> bytes | None:
        with self._lock:
            try:
                row = self._db.execute(f"SELECT entry_hash FROM {TABLE} WHERE presentation_hash = ?",
                                       (presentation_hash,)).fetchone()
            except sqlite3.Error as e:
                raise StoreError(f"session table: {e}") from None
        return None if row is None else bytes(row[0])

    def claim(self, presentation_hash: bytes, entry_hash: bytes) -> bytes:
        with self._lock:
            try:
                self._db.execute(f"INSERT OR IGNORE INTO {TABLE} VALUES (?, ?, ?)",
                                 (presentation_hash, entry_hash, int(time.time())))
                row = self._db.execute(f"SELECT entry_hash FROM {TABLE} WHERE presentation_hash = ?",
                                       (presentation_hash,)).fetchone()
            except sqlite3.Error as e:
                raise StoreError(f"session table: {e}") from None
        return bytes(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresSessions(SessionTable):
    """The table inside the log's PostgreSQL schema (created if missing)."""

    def __init__(self, dsn: str, schema: str) -> None:
        import psycopg
        from psycopg import sql

        self._psycopg = psycopg
        self._lock = threading.Lock()
        self._table = sql.Identifier(schema, TABLE)
        try:
            self._db = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
            with self._db.transaction():
                self._db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (schema,))
                self._db.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
                self._db.execute(sql.SQL("""CREATE TABLE IF NOT EXISTS {} (
                    presentation_hash BYTEA PRIMARY KEY, entry_hash BYTEA NOT NULL,
                    claimed_at BIGINT NOT NULL)""").format(self._table))
        except psycopg.Error as e:
            raise StoreError(f"session table: cannot open PostgreSQL ({type(e).__name__})") from None

    def _one(self, query, args: tuple) -> tuple | None:
        with self._lock:
            try:
                return self._db.execute(query.format(t=self._table), args).fetchone()
            except self._psycopg.Error as e:
                raise StoreError(f"session table: {type(e).__name__}") from None

    def owner(self, presentation_hash: bytes) -> bytes | None:
        from psycopg import sql

        row = self._one(sql.SQL("SELECT entry_hash FROM {t} WHERE presentation_hash = %s"),
                        (presentation_hash,))
        return None if row is None else bytes(row[0])

    def claim(self, presentation_hash: bytes, entry_hash: bytes) -> bytes:
        from psycopg import sql

        # one statement: insert if absent, and read the owner whether or not we inserted
        row = self._one(sql.SQL(
            "WITH ins AS (INSERT INTO {t} VALUES (%s, %s, %s) ON CONFLICT (presentation_hash) "
            "DO NOTHING RETURNING entry_hash) "
            "SELECT entry_hash FROM ins UNION ALL "
            "SELECT entry_hash FROM {t} WHERE presentation_hash = %s LIMIT 1"),
            (presentation_hash, entry_hash, int(time.time()), presentation_hash))
        if row is None:  # the conflicting row's transaction was not visible yet: read again
            row = self._one(sql.SQL("SELECT entry_hash FROM {t} WHERE presentation_hash = %s"),
                            (presentation_hash,))
        if row is None:
            raise StoreError("session table: a claimed presentation has no owner")
        return bytes(row[0])

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except self._psycopg.Error:
                pass


def open_sessions(cfg: Config) -> SessionTable:
    """The session table next to the log the configuration names."""
    gw = cfg.gateway
    if gw.store == "postgres":
        return PostgresSessions(gw.postgres_dsn, gw.postgres_schema)
    return SqliteSessions(cfg.state_path(gw.sqlite_path))
