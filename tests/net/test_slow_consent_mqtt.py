"""The QR slow-consent case over the real transport: engine → outbox → publisher → Mosquitto →
gateway service → verified receipts → both entries in the ledger.

The QR is read, the patient spends 70 s on the consent, the kiosk writes both leaves then:
the gateway judges the QR window at the signed capture time, not at `created`.
"""
from __future__ import annotations

import time

import pytest
from checkin.fakes import FakeClock, FakeFaces, Rig, good_face

from kiosk.checkin import engine as EN
from kiosk.checkin import events as E
from kiosk.checkin.headless import ScriptedPatient
from kiosk.gateway.mqtt import GatewayService
from kiosk.net import topics
from kiosk.net.mqtt_once import publish_retained
from kiosk.net.outbox import Outbox
from kiosk.net.publisher import Publisher
from kiosk.protocol import entry, keys, revocation

from .conftest import Env, wait_for
from .helpers import ledger_hashes

pytestmark = pytest.mark.mosquitto


def test_qr_consent_finished_70_s_after_the_qr_was_shown_lands_in_the_ledger(env: Env, broker) -> None:
    issuer = keys.load_signing_key(env.root / "keys" / "issuer.key")
    # the kiosk's clock: the QR was shown 80 s ago, the leaves written 10 s ago
    rig = Rig(clock=FakeClock(wall=time.time() - 80 - 1000), issuer=issuer,
              kiosk_key=env.kiosk_keys["kiosk-1"])
    w = rig.enroll()
    eng, ui, sink = rig.engine(qr=[rig.qr(w)], faces=FakeFaces(rig.clock, [good_face()]),
                               patient=ScriptedPatient())
    ui.on(E.CONSENT_SHOW, lambda ev: rig.clock.sleep(70))
    assert eng.run_once().status == EN.CHECKED_IN
    (recs,) = sink.sessions

    cfg = env.cfg("kiosk-1")
    now = int(time.time())
    publish_retained(broker.host, broker.port, topics.revocations("clinic"),
                     revocation.sign(issuer, site="clinic", revoked={}, issued=now - 600,
                                     next_update=now + 86400, seq=1), client_id="issuer")
    svc = GatewayService.from_config(cfg)
    svc.start()
    try:
        assert svc.wait_ready(30), "gateway did not subscribe"
        outbox = Outbox(cfg.state_path(cfg.outbox.path))
        hashes = outbox.add_session(recs)
        with Publisher.from_config(cfg, outbox) as pub:
            pub.wake()
            wait_for(lambda: outbox.depth() == 0 or outbox.parked(), 60, what="receipts")
            assert outbox.parked() == [] and outbox.depth() == 0
    finally:
        svc.stop()
    assert sorted(ledger_hashes(env.root / "gw" / "ledger.sqlite3")) == sorted(hashes)
    envs = [entry.decode_leaf(leaf)[0] for leaf, _, _ in recs]
    assert all(e.created - e.captured >= 70_000 for e in envs)
