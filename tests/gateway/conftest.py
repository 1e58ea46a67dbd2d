"""Gateway fixtures: a World of keys, a gateway on a SQLite store, a private Mosquitto broker,
and PostgreSQL schemas of their own.

`mosquitto` is the reusable broker fixture (kiosk.net.broker.MosquittoBroker on a free
loopback port); other test folders can copy the three lines or import MosquittoBroker.
"""
from __future__ import annotations

import os
import uuid

import pytest

from kiosk.config import GatewayTable, PassTable
from kiosk.gateway.core import Gateway
from kiosk.gateway.registry import SqliteRegistry
from kiosk.gateway.sessions import SqliteSessions
from kiosk.ledger import merkle
from kiosk.ledger.checkpoint import open_checkpoint
from kiosk.ledger.sqlite_store import SqliteLogStore
from kiosk.protocol import entry

from .factories import KIOSK, NOW, World

PG_DSN = os.environ.get("KIOSK_TEST_PG_DSN", "postgresql://postgres@127.0.0.1/test")


class Clock:
    """A settable clock for the gateway (Unix seconds)."""

    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def build_gateway(world: World, tmp_path, clock, *, revocations: bytes | None = None,
                  kiosks=(KIOSK,), **settings) -> Gateway:
    store = SqliteLogStore(tmp_path / "ledger.sqlite3")
    registry = SqliteRegistry(tmp_path / "registry.sqlite3")
    for k in kiosks:
        registry.add(k, world.kiosk_key(k).verify_key)
    gw = Gateway(store=store, registry=registry, sessions=SqliteSessions(tmp_path / "ledger.sqlite3"),
                 log_key=world.log_key, log_name=world.log_name, site=world.site,
                 issuers=world.issuers, sealing_keys=[world.seal_key], settings=GatewayTable(**settings),
                 passes=PassTable(), clock=clock)
    gw.set_revocations(revocations if revocations is not None else world.revocations())
    return gw


@pytest.fixture
def gateway(world, tmp_path, clock):
    gw = build_gateway(world, tmp_path, clock)
    yield gw
    gw.close()


def check_receipt(world: World, leaf: bytes, r: entry.Receipt, base: tuple[int, bytes] | None = None):
    """Verify an accepted receipt as a kiosk would; return the checkpoint."""
    assert r.accepted, r
    assert r.entry_hash == entry.entry_hash(leaf)
    r.verify_signature(world.log_key.verify_key)
    cp = open_checkpoint(r.checkpoint, world.verifier, world.log_name)
    merkle.verify_inclusion(merkle.leaf_hash(leaf), r.leaf_index, cp.size, list(r.inclusion), cp.root_hash)
    if base is not None and 0 < base[0] < cp.size:
        merkle.verify_consistency(base[0], cp.size, base[1], cp.root_hash, list(r.consistency))
    return cp


# ---------------------------------------------------------------- brokers and databases

@pytest.fixture
def mosquitto(tmp_path):
    """A private Mosquitto on a free loopback port (plain, anonymous, persistent)."""
    from kiosk.errors import TransportError
    from kiosk.net.broker import MosquittoBroker

    try:
        broker = MosquittoBroker(directory=tmp_path / "broker")
        broker.start()
    except TransportError as e:
        pytest.skip(f"mosquitto unavailable: {e.message}")
    yield broker
    broker.close()


_PG: list[str | None] = []


def pg_skip_reason() -> str | None:
    if not _PG:
        try:
            import psycopg

            with psycopg.connect(PG_DSN, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _PG.append(None)
        except Exception as e:  # any failure: skip with the reason
            _PG.append(f"PostgreSQL not reachable at {PG_DSN}: {type(e).__name__}")
    return _PG[0]


@pytest.fixture
def pg_schema():
    """A fresh schema name on the shared test server, dropped afterwards."""
    reason = pg_skip_reason()
    if reason:
        pytest.skip(reason)
    schema = "t_gw_" + uuid.uuid4().hex[:16]
    yield schema
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
