"""No personal data at rest in the broker: records queued for an offline gateway are sealed.

A real Mosquitto with persistence on holds the records a kiosk sent while the gateway was
down (in the gateway's persistent session). Stopped, it writes them to `mosquitto.db`. The
file holds each record's entry hash and ciphertext, and none of the patient id, the FHIR
Consent text, the signature image or the pass.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from checkin.fakes import FakeFaces, Rig, good_face

from kiosk.checkin import engine as EN
from kiosk.checkin.headless import ScriptedPatient
from kiosk.gateway.mqtt import GatewayService
from kiosk.net.broker import MosquittoBroker
from kiosk.net.outbox import Outbox
from kiosk.net.publisher import Publisher
from kiosk.protocol import entry, patient_pass

from .conftest import Env, wait_for

pytestmark = pytest.mark.mosquitto


def _session_with_phi(rig: Rig) -> list[tuple[bytes, bytes, dict | None]]:
    """A check-in and a signed consent made by the real engine for an NFC patient."""
    w = rig.enroll()
    eng, _, sink = rig.engine(nfc=[rig.nfc(w, signer=False)], faces=FakeFaces(rig.clock, [good_face()]),
                              patient=ScriptedPatient())
    assert eng.run_once().status == EN.CHECKED_IN
    (recs,) = sink.sessions
    return recs


def test_broker_persistence_file_holds_no_personal_data(tmp_path: Path, env: Env) -> None:
    broker = MosquittoBroker("allow_anonymous true\nmax_packet_size 1048576\nautosave_interval 1\n",
                             directory=tmp_path / "broker").start()
    try:
        env.broker = {"host": broker.host, "port": broker.port}
        cfg = env.cfg("kiosk-1")
        # the gateway subscribes once (its persistent session), then goes offline
        svc = GatewayService.from_config(cfg)
        svc.start()
        assert svc.wait_ready(30), "gateway did not subscribe"
        svc.stop()
        recs = _session_with_phi(Rig())
        outbox = Outbox(cfg.state_path(cfg.outbox.path))
        outbox.add_session(recs)
        with Publisher.from_config(cfg, outbox) as pub:
            wait_for(lambda: pub.counts["sent"] >= len(recs), 30, what="records sent")
        broker.stop()  # a clean exit writes mosquitto.db
        db = (broker.directory / "mosquitto.db").read_bytes()
    finally:
        broker.close()

    leaf, consent_body, pres = recs[1]
    content = entry.decode_body(consent_body)
    pass_bytes = pres["pass"]
    patient = patient_pass.decode(pass_bytes).patient
    fhir, png = content["consent"], content["signature"]["png"]  # RFC 8785 JSON text; the image
    assert b'"resourceType":"Consent"' in fhir.encode() and png.startswith(b"\x89PNG")
    # the scan sees the queued messages: each names its entry hash; the leaves are sealed too
    # (a leaf carries the pseudonymous patient id)
    assert all(entry.entry_hash(r[0]) in db and r[0] not in db for r in recs)
    assert patient.encode() not in db
    assert b'"resourceType":"Consent"' not in db and fhir.encode()[:64] not in db
    assert png not in db and b"\x89PNG\r\n\x1a\n" not in db
    assert pass_bytes not in db and pass_bytes[-64:] not in db  # nor the issuer's signature
