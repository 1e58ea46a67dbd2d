"""The SQLite log store: one file, WAL, synchronous=FULL, writers serialised by BEGIN IMMEDIATE."""
from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from kiosk.errors import StoreError
from kiosk.ledger.sql_store import SqlLogStore, translate

SCHEMA = """
CREATE TABLE IF NOT EXISTS leaves (
    idx INTEGER PRIMARY KEY,
    entry_hash BLOB NOT NULL UNIQUE,
    leaf BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tree_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL,
    frontier BLOB NOT NULL
);
INSERT OR IGNORE INTO tree_state (id, size, frontier) VALUES (1, 0, x'');
CREATE TABLE IF NOT EXISTS bodies (
    body_hash BLOB PRIMARY KEY,
    body BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    size INTEGER NOT NULL,
    note BLOB NOT NULL
);
"""


class SqliteLogStore(SqlLogStore):
    """A log in one SQLite file. Safe across threads (one lock) and processes (file locks)."""

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 30.0) -> None:
        super().__init__()
        self.path = Path(path)
        with self._guard():
            if not self.path.exists():
                # the body store holds personal data: 0600 from the first byte (the WAL and
                # shared-memory files SQLite makes beside it copy this mode)
                try:
                    os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
                except OSError as e:
                    raise StoreError(f"{self.path}: cannot create the log ({e.strerror})") from None
            # autocommit mode: transactions are explicit (BEGIN IMMEDIATE for writers)
            self._conn = sqlite3.connect(str(self.path), timeout=busy_timeout_s,
                                         isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")  # docs/design-notes.md: durable on return
            self._conn.execute("PRAGMA foreign_keys=ON")
            with self._write() as cur:
                for stmt in SCHEMA.split(";"):
                    if stmt.strip():
                        cur.execute(stmt)

    def _guard(self) -> AbstractContextManager[None]:
        return translate(sqlite3.Error, f"log store {self.path.name}")

    @contextmanager
    def _write(self) -> Iterator[Any]:
        self._conn.execute("BEGIN IMMEDIATE")  # take the write lock before reading the state
        try:
            yield self._conn
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[Any]:
        yield self._conn

    def close(self) -> None:
        """Close the database file."""
        with self._lock, self._guard():
            self._conn.close()
