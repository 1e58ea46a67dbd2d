"""Revocation that survives restarts: the gateway keeps the last valid list it adopted and
starts from it, and records queued for it never keep the retained list from arriving."""
from __future__ import annotations

import time

import pytest

from kiosk.config import BrokerTable, GatewayTable
from kiosk.gateway.core import Gateway
from kiosk.gateway.mqtt import GatewayService
from kiosk.gateway.registry import SqliteRegistry
from kiosk.gateway.sessions import SqliteSessions
from kiosk.ledger.sqlite_store import SqliteLogStore
from kiosk.net import topics
from kiosk.protocol import entry

from .conftest import build_gateway
from .factories import KIOSK
from .mqtt_helpers import TestClient, wait_until

QUEUED = 100  # records (50 check-ins with their consents) waiting for the gateway


def test_an_adopted_list_is_saved_and_a_new_gateway_starts_from_it(world, tmp_path, clock):
    path = tmp_path / "state" / "revocations.cose"
    gw = build_gateway(world, tmp_path, clock)
    gw.persist_revocations_at(path)
    assert not path.exists()  # the list adopted before persisting was not saved
    newer = world.revocations(seq=2)
    assert gw.set_revocations(newer) and path.read_bytes() == newer
    assert not gw.set_revocations(world.revocations(seq=1))  # an older list changes nothing
    assert path.read_bytes() == newer
    gw.close()
    for sub in ("b", "c"):
        (tmp_path / sub).mkdir()
    again = build_gateway(world, tmp_path / "b", clock, revocations=b"")
    assert again.revocations is None
    assert again.persist_revocations_at(path) and again.revocations.seq == 2
    path.write_bytes(b"garbage")  # a damaged file is refused, never trusted
    third = build_gateway(world, tmp_path / "c", clock, revocations=b"")
    assert not third.persist_revocations_at(path) and third.revocations is None
    again.close()
    third.close()


def _service(world, broker, tmp_path, **settings) -> GatewayService:
    s = GatewayTable(client_id="gateway-1", **settings)
    registry = SqliteRegistry(tmp_path / "registry.sqlite3")
    if registry.get(KIOSK) is None:
        registry.add(KIOSK, world.kiosk_key(KIOSK).verify_key)
    gw = Gateway(store=SqliteLogStore(tmp_path / "ledger.sqlite3"), registry=registry,
                 sessions=SqliteSessions(tmp_path / "ledger.sqlite3"), log_key=world.log_key,
                 log_name=world.log_name, site=world.site, issuers=world.issuers,
                 sealing_keys=[world.seal_key], settings=s)
    gw.persist_revocations_at(tmp_path / "revocations.cose")
    svc = GatewayService(gw, BrokerTable(port=broker.port, session_expiry=600), settings=s)
    svc.start()
    assert svc.wait_ready(30), "gateway did not subscribe"
    return svc


@pytest.mark.mosquitto
@pytest.mark.parametrize("saved", [True, False], ids=["saved-list", "retained-list-only"])
def test_restart_with_100_queued_records_drains_with_no_stale_list(world, mosquitto, tmp_path,
                                                                   saved):
    now = int(time.time())
    kiosk = TestClient(mosquitto.port, [topics.all_receipts(world.site)])
    kiosk.publish(topics.revocations(world.site),
                  world.revocations(issued=now - 3600, next_update=now + 86400), retain=True)
    svc = _service(world, mosquitto, tmp_path)
    wait_until(lambda: svc.gateway.revocations is not None, what="the revocation list")
    svc.stop()  # its persistent session queues what comes next
    if not saved:
        (tmp_path / "revocations.cose").unlink()  # first start on a new host: only the broker has it
    leaves = []
    for _ in range(QUEUED // 2):
        for payload, leaf in world.session(world.patient(now=now), created_ms=now * 1000):
            kiosk.publish(topics.records(world.site, KIOSK), payload)
            leaves.append(leaf)
    svc = _service(world, mosquitto, tmp_path)
    try:
        got = kiosk.receipts(QUEUED, timeout_s=120)
        statuses = [got[entry.entry_hash(leaf)][0].status for leaf in leaves]
        assert statuses.count("accepted") == QUEUED, {s: statuses.count(s) for s in set(statuses)}
        assert svc.stats().get("revocation-list-stale", 0) == 0
    finally:
        svc.stop()
        kiosk.close()
