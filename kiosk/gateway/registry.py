"""The kiosk registry: kiosk id → Ed25519 public key, active or revoked (docs/design-notes.md).

A stolen kiosk is revoked here and the gateway refuses its leaves from that moment on
(the gateway asks the registry for every message, so no restart is needed). SQLite at
`gateway.registry_path` by default; a table in the log's PostgreSQL schema when several
gateways share one log, so they all see the same registry.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from nacl.signing import VerifyKey

from kiosk.config import KIOSK_ID_RE, Config
from kiosk.errors import CannotCreateError, FormatError, NoInputError, StoreError
from kiosk.ids import reserved_id
from kiosk.ledger.sql_tables import PostgresTables, SqliteTables, SqlTables

ACTIVE, REVOKED = "active", "revoked"


@dataclass(frozen=True)
class KioskRecord:
    """One registered kiosk. `public_key` is the raw 32-byte Ed25519 key."""

    kiosk_id: str
    public_key: bytes
    status: str
    added_at: int
    revoked_at: int | None = None

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    @property
    def verify_key(self) -> VerifyKey:
        return VerifyKey(self.public_key)


def _check_id(kiosk_id: str) -> str:
    if not isinstance(kiosk_id, str) or not KIOSK_ID_RE.match(kiosk_id):
        raise FormatError("kiosk id must match [a-z0-9-]{1,32}")
    return kiosk_id


_DDL_SQLITE = [
    """CREATE TABLE IF NOT EXISTS {kiosks} (kiosk_id TEXT PRIMARY KEY, public_key BLOB NOT NULL,
       status TEXT NOT NULL, added_at INTEGER NOT NULL, revoked_at INTEGER)""",
    """CREATE TABLE IF NOT EXISTS {kiosk_retired_keys} (kiosk_id TEXT NOT NULL,
       public_key BLOB NOT NULL, retired_at INTEGER NOT NULL)""",
]
_DDL_POSTGRES = [
    """CREATE TABLE IF NOT EXISTS {kiosks} (kiosk_id TEXT PRIMARY KEY, public_key BYTEA NOT NULL,
       status TEXT NOT NULL, added_at BIGINT NOT NULL, revoked_at BIGINT)""",
    """CREATE TABLE IF NOT EXISTS {kiosk_retired_keys} (kiosk_id TEXT NOT NULL,
       public_key BYTEA NOT NULL, retired_at BIGINT NOT NULL)""",
]
_COLS = "kiosk_id, public_key, status, added_at, revoked_at"


class KioskRegistry:
    """The registry over SQLite (`SqliteRegistry`) or PostgreSQL (`PostgresRegistry`)."""

    def __init__(self, tables: SqlTables) -> None:
        self._t = tables

    def add(self, kiosk_id: str, key: VerifyKey, *, replace: bool = False, service: bool = False) -> KioskRecord:
        """Register a kiosk as active. An existing id is refused unless `replace` (re-keying);
        a replaced key is kept as retired, so the leaves it signed still verify in audits.

        Refused: an id reserved for a service (its certificate would be that service on the
        broker), and a key that another kiosk has or had (two ids, one key: either could sign
        as the other). `service` registers the key a gateway signs its own entries with (the
        EHR's answers) under its reserved id, so audits verify them; the gateway never accepts
        a record from such an id."""
        _check_id(kiosk_id)
        if service and not reserved_id(kiosk_id):
            raise FormatError(f"{kiosk_id} is not a service id (gateway-*)")
        if reserved_id(kiosk_id) and not service:
            raise FormatError(f"kiosk id {kiosk_id} is reserved for a broker service (gateway-*, issuer)")
        raw = bytes(key)
        others = self._t.q("SELECT kiosk_id FROM {kiosks} WHERE public_key = %s AND kiosk_id <> %s "
                           "UNION SELECT kiosk_id FROM {kiosk_retired_keys} WHERE public_key = %s "
                           "AND kiosk_id <> %s", (raw, kiosk_id, raw, kiosk_id))
        if others:
            raise StoreError(f"this public key is already registered for kiosk {others[0][0]}; "
                             "each kiosk needs its own key pair (kiosk provision makes one)")
        old = self.get(kiosk_id) if replace else None
        if old is not None and old.public_key != bytes(key):
            self._t.q("INSERT INTO {kiosk_retired_keys} VALUES (%s, %s, %s)",
                      (kiosk_id, old.public_key, int(time.time())))
        conflict = ("DO UPDATE SET public_key = excluded.public_key, status = excluded.status, "
                    "added_at = excluded.added_at, revoked_at = NULL") if replace else "DO NOTHING"
        rows = self._t.q("INSERT INTO {kiosks} VALUES (%s, %s, %s, %s, NULL) ON CONFLICT (kiosk_id) "
                         + conflict + " RETURNING kiosk_id",
                         (kiosk_id, bytes(key), ACTIVE, int(time.time())))
        if not rows:
            raise CannotCreateError(f"kiosk {kiosk_id} is already registered (use --replace to re-key it)")
        rec = self.get(kiosk_id)
        assert rec is not None
        return rec

    def revoke(self, kiosk_id: str) -> KioskRecord:
        """Mark a kiosk revoked; NoInputError (66) if it is not registered."""
        _check_id(kiosk_id)
        self._t.q("UPDATE {kiosks} SET status = %s, revoked_at = COALESCE(revoked_at, %s) "
                  "WHERE kiosk_id = %s", (REVOKED, int(time.time()), kiosk_id))
        rec = self.get(kiosk_id)
        if rec is None:
            raise NoInputError(f"kiosk {kiosk_id} is not registered (kiosk gateway kiosk list)")
        return rec

    def get(self, kiosk_id: str) -> KioskRecord | None:
        rows = self._t.q(f"SELECT {_COLS} FROM {{kiosks}} WHERE kiosk_id = %s", (kiosk_id,))
        return _row(rows[0]) if rows else None

    def list(self) -> list[KioskRecord]:
        return [_row(r) for r in self._t.q(f"SELECT {_COLS} FROM {{kiosks}} ORDER BY kiosk_id")]

    def keys_for(self, kiosk_id: str) -> dict[bytes, VerifyKey]:
        """Every key the kiosk ever had, by COSE kid: audits verify old leaves with them.
        (Live acceptance uses `key_for`: the current key of an active kiosk only.)"""
        from kiosk.protocol.keys import kid

        rec = self.get(kiosk_id)
        raw = [bytes(r[0]) for r in self._t.q("SELECT public_key FROM {kiosk_retired_keys} "
                                              "WHERE kiosk_id = %s", (kiosk_id,))]
        if rec is not None:
            raw.append(rec.public_key)
        return {kid(k): VerifyKey(k) for k in raw}

    def key_for(self, kiosk_id: str) -> VerifyKey | None:
        """The key of an active kiosk, or None (unknown or revoked)."""
        rec = self.get(kiosk_id)
        return rec.verify_key if rec is not None and rec.active else None

    def close(self) -> None:
        self._t.close()

    def __enter__(self) -> KioskRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _row(r: tuple) -> KioskRecord:
    return KioskRecord(r[0], bytes(r[1]), r[2], int(r[3]), None if r[4] is None else int(r[4]))


class SqliteRegistry(KioskRegistry):
    """The registry in a SQLite file (WAL; safe for the CLI and a running gateway at once)."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(SqliteTables(path, _DDL_SQLITE, "kiosk registry"))


class PostgresRegistry(KioskRegistry):
    """The registry as tables in the log's PostgreSQL schema, shared by its gateways."""

    def __init__(self, dsn: str, schema: str) -> None:
        super().__init__(PostgresTables(dsn, schema, _DDL_POSTGRES, "kiosk registry"))


def open_registry(cfg: Config) -> KioskRegistry:
    """The registry the configuration names: PostgreSQL with a postgres store, else SQLite."""
    gw = cfg.gateway
    if gw.store == "postgres":
        return PostgresRegistry(gw.postgres_dsn, gw.postgres_schema)
    return SqliteRegistry(cfg.state_path(gw.registry_path))
