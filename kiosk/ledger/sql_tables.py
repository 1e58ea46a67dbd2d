"""Small tables kept beside the log — the kiosk registry, the presentation sessions — on
SQLite or PostgreSQL, behind one query method.

Queries are written once: `{name}` stands for a table (SQLite: the bare name; PostgreSQL:
the name inside the log's schema) and `%s` for a parameter. Both dialects share the upsert
and RETURNING forms used here (SQLite ≥ 3.35). Driver errors become StoreError here.
"""
from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from kiosk.errors import StoreError

_NAME = re.compile(r"\{([a-z_]+)\}")


class SqlTables(ABC):
    """One connection to the tables of one part (`what` names it in errors)."""

    what: str

    @abstractmethod
    def q(self, query: str, args: tuple = (), *, durable: bool = True) -> list[tuple]:
        """Run one statement; return its rows (empty for statements without rows).

        `durable=False`: SQLite commits it without an fsync (it survives a killed process;
        a power cut only once a later durable commit to the same file synced the WAL).
        PostgreSQL commits as the server is configured."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""


class SqliteTables(SqlTables):
    """The tables in a SQLite file (WAL, synchronous FULL; safe beside other connections)."""

    def __init__(self, path: Path | str, ddl: list[str], what: str) -> None:
        self.path, self.what = Path(path), what
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():  # may share a file with the body store: 0600 from the start
                os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            self._db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            for stmt in ddl:
                self._db.execute(_NAME.sub(r"\1", stmt))
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"{self.path}: cannot open the {what} ({e})") from None

    def q(self, query: str, args: tuple = (), *, durable: bool = True) -> list[tuple]:
        with self._lock:
            try:
                if not durable:
                    self._db.execute("PRAGMA synchronous=NORMAL")
                try:
                    return self._db.execute(_NAME.sub(r"\1", query).replace("%s", "?"),
                                            args).fetchall()
                finally:
                    if not durable:
                        self._db.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as e:
                raise StoreError(f"{self.what}: {e}") from None

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresTables(SqlTables):
    """The tables in the log's PostgreSQL schema (created if missing), autocommit."""

    def __init__(self, dsn: str, schema: str, ddl: list[str], what: str) -> None:
        import psycopg

        self._psycopg, self._schema, self.what = psycopg, schema, what
        self._lock = threading.Lock()
        try:
            self._db = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
            with self._db.transaction():
                # several gateways start at once: one creates, the others wait and find it
                self._db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (schema,))
                from psycopg import sql
                self._db.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
                for stmt in ddl:
                    self._db.execute(self._sql(stmt))
        except psycopg.Error as e:
            raise StoreError(f"{what}: cannot open PostgreSQL ({type(e).__name__})") from None

    def _sql(self, query: str) -> Any:  # a psycopg sql.Composed
        from psycopg import sql

        names = {n: sql.Identifier(self._schema, n) for n in _NAME.findall(query)}
        return sql.SQL(query).format(**names)

    def q(self, query: str, args: tuple = (), *, durable: bool = True) -> list[tuple]:
        with self._lock:
            try:
                cur = self._db.execute(self._sql(query), args)
                return cur.fetchall() if cur.description else []
            except self._psycopg.Error as e:
                raise StoreError(f"{self.what}: {type(e).__name__}") from None

    def close(self) -> None:
        with self._lock, contextlib.suppress(self._psycopg.Error):
            self._db.close()
