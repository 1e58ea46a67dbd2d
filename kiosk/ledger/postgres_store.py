"""The PostgreSQL log store: several gateways share one log.

Appends serialise the way Tessera's PostgreSQL driver does (docs/design-notes.md): one row holds the
tree state and each append transaction locks it with SELECT … FOR UPDATE, then appends a
small batch. All tables live in one schema (`schema=`), so tests use a schema each.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import psycopg
from psycopg import sql

from kiosk.errors import StoreError
from kiosk.ledger.sql_store import SqlLogStore, translate

SCHEMA = """
CREATE TABLE IF NOT EXISTS leaves (
    idx BIGINT PRIMARY KEY,
    entry_hash BYTEA NOT NULL UNIQUE,
    leaf BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS nodes (
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    hash BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TABLE IF NOT EXISTS tree_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    size BIGINT NOT NULL,
    frontier BYTEA NOT NULL
);
INSERT INTO tree_state (id, size, frontier) VALUES (1, 0, '\\x') ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS bodies (
    body_hash BYTEA PRIMARY KEY,
    body BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    size BIGINT NOT NULL,
    note BYTEA NOT NULL
);
"""
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")


class PostgresLogStore(SqlLogStore):
    """A log in one PostgreSQL schema, shared safely by several processes."""

    _PARAM = "%s"
    _LOCK_STATE = " FOR UPDATE"  # the Tessera-style single state row lock

    def __init__(self, dsn: str, *, schema: str = "kiosk_ledger", connect_timeout_s: int = 10) -> None:
        super().__init__()
        if not _SCHEMA_NAME.match(schema):
            raise StoreError(f"schema name {schema!r} must match [a-z_][a-z0-9_]*")
        self.schema = schema
        with self._guard():
            self._conn = psycopg.connect(dsn, autocommit=True, connect_timeout=connect_timeout_s)
            with self._conn.transaction():
                # two processes creating the same schema at once would collide without this
                self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (schema,))
                self._conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(schema)))
                self._conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
                for stmt in SCHEMA.split(";"):
                    if stmt.strip():
                        self._conn.execute(stmt)
            # SET inside a committed transaction persists for the session
            self._conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))

    def _guard(self) -> AbstractContextManager[None]:
        return translate(psycopg.Error, f"log store schema {self.schema}")

    @contextmanager
    def _write(self) -> Iterator[Any]:
        with self._conn.transaction(), self._conn.cursor() as cur:
            yield cur

    @contextmanager
    def _read(self) -> Iterator[Any]:
        with self._conn.cursor() as cur:
            yield cur

    def _bulk_insert(self, cur: Any, table: str, columns: Sequence[str],
                     rows: list[tuple]) -> None:
        query = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
        with cur.copy(query) as copy:
            for row in rows:
                copy.write_row(row)

    def drop_schema(self) -> None:
        """Drop this store's schema and everything in it (tests, benchmarks)."""
        with self._lock, self._guard():
            self._conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(self.schema)))

    def close(self) -> None:
        """Close the connection."""
        with self._lock, self._guard():
            self._conn.close()
