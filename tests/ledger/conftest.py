"""Log store fixtures: every store test runs on SQLite and on PostgreSQL (own schema each)."""
from __future__ import annotations

import contextlib
import os
import uuid

import pytest

PG_DSN = os.environ.get("KIOSK_TEST_PG_DSN", "postgresql://postgres@127.0.0.1/test")


def pg_available() -> str | None:
    """None if the test server answers, else the reason it does not."""
    try:
        import psycopg

        with psycopg.connect(PG_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as e:  # any failure means: skip, with the reason
        return f"PostgreSQL not reachable at {PG_DSN}: {type(e).__name__}"


_PG_REASON: list[str | None] = []


def pg_skip_reason() -> str | None:
    if not _PG_REASON:
        _PG_REASON.append(pg_available())
    return _PG_REASON[0]


def unique_schema() -> str:
    return "t_" + uuid.uuid4().hex[:20]


@pytest.fixture
def pg_schema():
    """A fresh schema name, dropped afterwards; skips without a server."""
    reason = pg_skip_reason()
    if reason:
        pytest.skip(reason)
    schema = unique_schema()
    yield schema
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _make_store(kind: str, tmp_path, request):
    if kind == "sqlite":
        from kiosk.ledger.sqlite_store import SqliteLogStore

        return SqliteLogStore(tmp_path / "log.sqlite3")
    schema = request.getfixturevalue("pg_schema")
    from kiosk.ledger.postgres_store import PostgresLogStore

    return PostgresLogStore(PG_DSN, schema=schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    """An empty log store of each kind."""
    s = _make_store(request.param, tmp_path, request)
    yield s
    s.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_factory(request, tmp_path):
    """(kind, open()) for tests that reopen or share a store."""
    opened = []

    def open_():
        s = _make_store(request.param, tmp_path, request)
        opened.append(s)
        return s

    yield request.param, open_
    for s in opened:
        with contextlib.suppress(Exception):
            s.close()
