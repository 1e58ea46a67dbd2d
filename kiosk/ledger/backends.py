"""Which log store a gateway's config names: SQLite (one file, the default) or PostgreSQL.

Kept apart from `kiosk.ledger.store` (the interface every store implements) so the interface
does not import its implementations."""
from __future__ import annotations

from typing import TYPE_CHECKING

from kiosk.ledger.store import LogStore

if TYPE_CHECKING:
    from kiosk.config import GatewayTable


def open_store(gateway: GatewayTable, *, sqlite_path: str | None = None) -> LogStore:
    """Open the store a config's `[gateway]` table names (`sqlite_path` overrides the file)."""
    if gateway.store == "postgres":
        from kiosk.ledger.postgres_store import PostgresLogStore

        return PostgresLogStore(gateway.postgres_dsn, schema=gateway.postgres_schema)
    from kiosk.ledger.sqlite_store import SqliteLogStore

    return SqliteLogStore(sqlite_path or gateway.sqlite_path)
