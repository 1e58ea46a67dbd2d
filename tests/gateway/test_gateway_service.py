"""The gateway over MQTT: a real Mosquitto on a free port, the gateway in threads of this process."""
from __future__ import annotations

import os
import time

import pytest

from kiosk.config import BrokerTable, GatewayTable
from kiosk.gateway.core import Gateway
from kiosk.gateway.mqtt import GatewayService
from kiosk.gateway.registry import PostgresRegistry, SqliteRegistry
from kiosk.gateway.sessions import PostgresSessions, SqliteSessions
from kiosk.ledger import merkle
from kiosk.ledger.checkpoint import open_checkpoint
from kiosk.ledger.sqlite_store import SqliteLogStore
from kiosk.net import topics
from kiosk.protocol import entry

from .conftest import PG_DSN, check_receipt
from .factories import KIOSK
from .mqtt_helpers import TestClient, wait_until

pytestmark = pytest.mark.mosquitto


def _now() -> int:
    return int(time.time())


def _service(world, broker, store, registry, sessions, client_id="gateway-1", **settings):
    gw_settings = GatewayTable(client_id=client_id, **settings)
    gw = Gateway(store=store, registry=registry, sessions=sessions, log_key=world.log_key,
                 log_name=world.log_name, site=world.site, issuers=world.issuers,
                 sealing_keys=[world.seal_key], settings=gw_settings)
    svc = GatewayService(gw, BrokerTable(port=broker.port, session_expiry=600), settings=gw_settings)
    svc.start()
    assert svc.wait_ready(30), "gateway did not subscribe"
    return svc


def _sqlite_service(world, broker, tmp_path, kiosks=(KIOSK,), **settings):
    registry = SqliteRegistry(tmp_path / "registry.sqlite3")
    for k in kiosks:
        if registry.get(k) is None:
            registry.add(k, world.kiosk_key(k).verify_key)
    return _service(world, broker, SqliteLogStore(tmp_path / "ledger.sqlite3"), registry,
                    SqliteSessions(tmp_path / "ledger.sqlite3"), **settings)


def _publish_revocations(world, client):
    now = _now()
    client.publish(topics.revocations(world.site),
                   world.revocations(issued=now - 3600, next_update=now + 86400), retain=True)


@pytest.fixture
def kiosk_client(mosquitto, world):
    c = TestClient(mosquitto.port, [topics.all_receipts(world.site)])
    _publish_revocations(world, c)
    yield c
    c.close()


def test_records_get_receipts_and_checkpoint_is_retained(world, mosquitto, tmp_path, kiosk_client):
    svc = _sqlite_service(world, mosquitto, tmp_path)
    try:
        wait_until(lambda: svc.gateway.revocations is not None, what="the revocation list")
        leaves, payloads = [], []
        for _ in range(3):
            for payload, leaf in world.session(world.patient(now=_now()), created_ms=_now() * 1000):
                kiosk_client.publish(topics.records(world.site, KIOSK), payload)
                leaves.append(leaf)
                payloads.append(payload)
        got = kiosk_client.receipts(len(leaves))
        for leaf in leaves:
            (r,) = got[entry.entry_hash(leaf)]
            assert r.status == "accepted"
            check_receipt(world, leaf, r)
        assert svc.gateway.store.size() == 6
        # a kiosk that connects later finds the newest checkpoint retained
        late = TestClient(mosquitto.port, [topics.checkpoint(world.site)])
        note = late.retained(topics.checkpoint(world.site))
        late.close()
        assert open_checkpoint(note, world.verifier, world.log_name).size == 6
        # a resend gets the same entry back
        kiosk_client.publish(topics.records(world.site, KIOSK), payloads[0])
        (again,) = kiosk_client.receipts(1)[entry.entry_hash(leaves[0])]
        assert again.status == "duplicate" and again.leaf_index == 0
    finally:
        svc.stop()


def test_hostile_input_is_answered_and_the_gateway_keeps_serving(world, mosquitto, tmp_path, kiosk_client):
    svc = _sqlite_service(world, mosquitto, tmp_path, max_message_bytes=16384)
    try:
        wait_until(lambda: svc.gateway.revocations is not None, what="the revocation list")
        t = topics.records(world.site, KIOSK)
        junk = os.urandom(500)
        kiosk_client.publish(t, junk)
        kiosk_client.publish(t, os.urandom(20000))
        p = world.patient(now=_now())
        stranger, _ = world.record("check-in", kiosk="kiosk-x", pres=world.nfc(p, "kiosk-x"),
                                   patient=p.patient_id, created_ms=_now() * 1000)
        kiosk_client.publish(topics.records(world.site, "kiosk-x"), stranger)
        kiosk_client.publish(t, b"")
        got = kiosk_client.receipts(4)
        reasons = sorted(r.reason for rs in got.values() for r in rs)
        assert reasons == ["malformed", "malformed", "too-large", "unknown-kiosk"]
        assert all(r.status == "rejected" for rs in got.values() for r in rs)
        # a topic that is not a kiosk's records topic is dropped silently
        kiosk_client.publish(f"clinic/{world.site}/kiosk/UPPER/records", b"x")
        # ...and the next honest record still lands
        (c1, l1), _ = world.session(p, created_ms=_now() * 1000)
        kiosk_client.publish(t, c1)
        (r,) = kiosk_client.receipts(1)[entry.entry_hash(l1)]
        check_receipt(world, l1, r)
        stats = svc.stats()
        assert stats["malformed"] == 2 and stats["too-large"] == 1 and stats["unknown-kiosk"] == 1
        assert stats["accepted"] == 1
    finally:
        svc.stop()


def test_records_sent_while_the_gateway_is_down_arrive_after_restart(world, mosquitto, tmp_path, kiosk_client):
    svc = _sqlite_service(world, mosquitto, tmp_path)
    wait_until(lambda: svc.gateway.revocations is not None, what="the revocation list")
    svc.stop()  # the persistent session stays on the broker and queues for gateway-1
    sessions = [world.session(world.patient(now=_now()), created_ms=_now() * 1000) for _ in range(2)]
    for sess in sessions:
        for payload, _ in sess:
            kiosk_client.publish(topics.records(world.site, KIOSK), payload)
    svc = _sqlite_service(world, mosquitto, tmp_path)
    try:
        got = kiosk_client.receipts(4)
        for sess in sessions:
            for _, leaf in sess:
                assert got[entry.entry_hash(leaf)][0].status == "accepted"
    finally:
        svc.stop()


@pytest.mark.postgres
def test_two_gateways_share_one_postgres_log(world, mosquitto, pg_schema, kiosk_client):
    kiosks = ("kiosk-1", "kiosk-2")
    services = []
    reg = PostgresRegistry(PG_DSN, pg_schema)
    for k in kiosks:
        reg.add(k, world.kiosk_key(k).verify_key)
    reg.close()
    from kiosk.ledger.postgres_store import PostgresLogStore

    for cid in ("gateway-a", "gateway-b"):
        services.append(_service(world, mosquitto, PostgresLogStore(PG_DSN, schema=pg_schema),
                                 PostgresRegistry(PG_DSN, pg_schema), PostgresSessions(PG_DSN, pg_schema),
                                 client_id=cid, batch_size=8))
    try:
        for svc in services:
            wait_until(lambda svc=svc: svc.gateway.revocations is not None, what="the revocation list")
        leaves = []
        for i in range(20):
            k = kiosks[i % 2]
            for payload, leaf in world.session(world.patient(now=_now()), kiosk=k, created_ms=_now() * 1000):
                kiosk_client.publish(topics.records(world.site, k), payload)
                leaves.append(leaf)
        got = kiosk_client.receipts(len(leaves), timeout_s=120)
        store = services[0].gateway.store
        assert store.size() == len(leaves)
        indices = set()
        for leaf in leaves:
            (r,) = got[entry.entry_hash(leaf)]
            assert r.status == "accepted", r.reason
            check_receipt(world, leaf, r)
            indices.add(r.leaf_index)
        assert indices == set(range(len(leaves)))  # every entry exactly once
        # one consistent tree: every checkpoint any gateway signed is a prefix of the final one
        stored = [leaf for _, leaf in store.iter_leaves()]
        assert sorted(stored) == sorted(leaves)
        final = merkle.root_from_leaf_hashes([merkle.leaf_hash(x) for x in stored])
        assert final == store.root_hash()
        for r in (r for rs in got.values() for r in rs):
            cp = open_checkpoint(r.checkpoint, world.verifier, world.log_name)
            assert cp.root_hash == merkle.root_from_leaf_hashes(
                [merkle.leaf_hash(x) for x in stored[:cp.size]])
        counts = [svc.stats().get("accepted", 0) for svc in services]
        assert sum(counts) == len(leaves)
        assert all(counts), f"the shared subscription should spread the load: {counts}"
    finally:
        for svc in services:
            svc.stop()


def test_consent_whose_checkin_never_comes_is_rejected_after_the_wait(world, mosquitto, tmp_path,
                                                                      kiosk_client):
    svc = _sqlite_service(world, mosquitto, tmp_path, ref_wait_s=0.5)
    try:
        wait_until(lambda: svc.gateway.revocations is not None, what="the revocation list")
        _, (c2, l2) = world.session(world.patient(now=_now()), created_ms=_now() * 1000)
        kiosk_client.publish(topics.records(world.site, KIOSK), c2)
        r = kiosk_client.receipt_for(entry.entry_hash(l2))
        assert (r.status, r.reason) == ("rejected", "wrong-entry")
        assert svc.stats()["deferred"] >= 1
    finally:
        svc.stop()


def test_a_backlog_is_delivered_beyond_mosquittos_default_window(world, mosquitto, tmp_path, kiosk_client):
    # MQTT 5 Receive Maximum: the broker may send several batches' worth before our acks (sent
    # once a batch is answered); at Mosquitto's default of 20 unacknowledged messages no batch
    # could be full, and every batch's commit would hold up the delivery of the next one
    svc = _sqlite_service(world, mosquitto, tmp_path)
    wait_until(lambda: svc.gateway.revocations is not None, what="the revocation list")
    svc.stop()
    leaves = []
    for _ in range(30):
        for payload, leaf in world.session(world.patient(now=_now()), created_ms=_now() * 1000):
            kiosk_client.publish(topics.records(world.site, KIOSK), payload)
            leaves.append(leaf)
    registry = SqliteRegistry(tmp_path / "registry.sqlite3")
    gw_settings = GatewayTable(client_id="gateway-1", batch_size=8)  # a window of 32
    gw = Gateway(store=SqliteLogStore(tmp_path / "ledger.sqlite3"), registry=registry,
                 sessions=SqliteSessions(tmp_path / "ledger.sqlite3"), log_key=world.log_key,
                 log_name=world.log_name, site=world.site, issuers=world.issuers,
                 sealing_keys=[world.seal_key], settings=gw_settings)
    svc = GatewayService(gw, BrokerTable(port=mosquitto.port, session_expiry=600), settings=gw_settings)
    gw._lock.acquire()  # the worker takes its first batch and waits: nothing is acknowledged
    locked = True
    try:
        svc.start()
        # the worker holds at most 8, so 22 waiting means more than 20 unacknowledged
        wait_until(lambda: svc.stats()["queued"] >= 22, timeout_s=20,
                   what="more than 20 unacknowledged records")
        gw._lock.release()
        locked = False
        got = kiosk_client.receipts(len(leaves))
        assert all(got[entry.entry_hash(leaf)][0].status == "accepted" for leaf in leaves)
    finally:
        if locked:
            gw._lock.release()
        svc.stop()


class _FakeSocketClient:
    """paho's client as _next_batch sees it: only its socket."""

    def __init__(self, sock) -> None:
        self.sock = sock

    def socket(self):
        return self.sock


def _msg(i: int):
    from kiosk.gateway.mqtt import _Msg

    return _Msg(f"clinic/c/kiosk/{KIOSK}/records", b"%d" % i, i, 1, time.monotonic())


def _idle_service(world, tmp_path, client=None) -> GatewayService:
    """A service that is never started: its worker's batching, on a store in tmp_path."""
    registry = SqliteRegistry(tmp_path / "registry.sqlite3")
    gw = Gateway(store=SqliteLogStore(tmp_path / "ledger.sqlite3"), registry=registry,
                 sessions=SqliteSessions(tmp_path / "ledger.sqlite3"), log_key=world.log_key,
                 log_name=world.log_name, site=world.site, issuers=world.issuers,
                 sealing_keys=[world.seal_key])
    svc = GatewayService(gw, BrokerTable(), settings=GatewayTable())
    svc._client = client
    return svc


def test_a_record_already_in_the_socket_joins_the_batch(world, tmp_path):
    import queue
    import socket

    a, b = socket.socketpair()
    try:
        svc = _idle_service(world, tmp_path, _FakeSocketClient(a))
        waited: list[float] = []

        class Arriving(queue.Queue):
            """The second record reaches the queue while the worker waits for it (paho's thread)."""

            def get(self, block=True, timeout=None):
                if timeout is not None and timeout < 0.01:
                    waited.append(timeout)
                    a.recv(100)  # paho read it
                    self.put(_msg(2))
                return super().get(block, timeout)

        svc._queue = Arriving()
        svc._queue.put(_msg(1))
        b.send(b"next record's bytes")  # readable on our side: more is arriving
        assert [m.mid for m in svc._next_batch()] == [1, 2]
        assert len(waited) == 1
        # nothing readable: a lone record goes at once, without waiting
        svc._queue.put(_msg(3))
        assert [m.mid for m in svc._next_batch()] == [3]
        assert len(waited) == 1
    finally:
        a.close()
        b.close()
        svc.gateway.close()


def test_an_idle_worker_syncs_the_last_checkpoint_time(world, tmp_path):
    svc = _idle_service(world, tmp_path)
    try:
        synced: list[bool] = []
        svc.gateway.sync_notes = lambda: synced.append(True) or True
        assert svc._next_batch() == []  # the queue stayed empty for its timeout
        assert synced == [True]
    finally:
        svc.gateway.close()
