"""Time bound to evidence: a presentation is judged at the time it provably was shown.

The kiosk signs `captured` into the leaf; a QR statement pins it to the phone's 30-second
window, an NFC nonce committed to a checkpoint pins it to after that checkpoint, and the
rest is judged on arrival. These tests play a holder of a kiosk key who tries to backdate.
"""
from __future__ import annotations

import os

import pytest
from nacl.public import PrivateKey

from kiosk.protocol import entry, presentation

from .factories import KIOSK, NOW


def _accept(gateway, payload):
    r = gateway.handle_record(KIOSK, payload)
    assert r is not None and r.status == entry.STATUS_ACCEPTED, r
    return r


def _reason(gateway, payload) -> str:
    r = gateway.handle_record(KIOSK, payload)
    assert r is not None
    return r.reason


def _checkpoint_now(world, gateway) -> bytes:
    """A checkpoint the gateway signs at its clock's time, as a kiosk receives it in a receipt."""
    c, _ = world.record("kiosk-event", pres=None, created_ms=int(gateway.clock() * 1000))
    return _accept(gateway, c).checkpoint


# ----------------------------------------------------------------------------- QR

def test_qr_slow_consent_is_judged_at_capture(world, gateway, clock):
    """The QR was read at NOW; the consent was finished and both leaves written 70 s later."""
    q = world.patient()
    (c1, _), (c2, _) = world.session(q, pres=world.qr(q, NOW), captured_ms=NOW * 1000,
                                     created_ms=(NOW + 70) * 1000)
    clock.t = NOW + 72
    _accept(gateway, c1)
    _accept(gateway, c2)


def test_capture_to_created_is_bounded(world, gateway, clock):
    q = world.patient()
    c, _ = world.record("check-in", pres=world.qr(q, NOW), patient=q.patient_id,
                        captured_ms=NOW * 1000, created_ms=(NOW + 601) * 1000)
    clock.t = NOW + 602
    assert _reason(gateway, c) == "stale"


def test_captured_after_created_is_malformed(world, gateway):
    q = world.patient()
    c, _ = world.record("check-in", pres=world.qr(q, NOW), patient=q.patient_id,
                        captured_ms=(NOW + 400) * 1000, created_ms=NOW * 1000)
    assert _reason(gateway, c) == "malformed"


def test_an_entry_with_a_presentation_needs_its_capture_time(world, gateway):
    q = world.patient()
    leaf, body = world.leaf("check-in", patient=q.patient_id)  # no captured
    assert _reason(gateway, world.seal(entry.Record(leaf, body, world.qr(q, NOW), 0))) == "malformed"


def test_kiosk_key_cannot_move_a_qr_away_from_its_window(world, gateway, clock):
    """Revoked at NOW - 600; the phone shows its QR at NOW. Backdating `captured` to before
    the revocation leaves the window the phone signed; keeping it in the window is judged there."""
    q = world.patient()
    assert gateway.set_revocations(world.revocations({q.pass_id: NOW - 600}, issued=NOW - 500, seq=2))
    pres = world.qr(q, NOW)
    backdated, _ = world.record("check-in", pres=pres, patient=q.patient_id,
                                captured_ms=(NOW - 900) * 1000, created_ms=(NOW - 900) * 1000)
    assert _reason(gateway, backdated) == "stale"
    honest, _ = world.record("check-in", pres=pres, patient=q.patient_id)
    assert _reason(gateway, honest) == "revoked"


# ----------------------------------------------------------------------------- NFC

def test_nfc_anchored_before_revocation_lands_after_an_outage(world, gateway, clock):
    """Tapped at NOW after a checkpoint of NOW; the gateway was down until NOW + 2 h and the
    pass was revoked at NOW + 1 h meanwhile: the records were made before, so they land."""
    p = world.patient()
    note = _checkpoint_now(world, gateway)
    (c1, _), (c2, _) = world.session(p, pres=world.nfc(p, anchor=note))
    clock.t = NOW + 7200
    assert gateway.set_revocations(world.revocations({p.pass_id: NOW + 3600}, issued=NOW + 3700, seq=2))
    _accept(gateway, c1)
    _accept(gateway, c2)


def test_kiosk_key_cannot_backdate_nfc_before_its_checkpoint(world, gateway, clock):
    """Revoked at NOW + 600; the kiosk held a checkpoint of NOW + 800 when the phone was tapped.
    A kiosk-key holder writing the tap at NOW (before the revocation) is refused; honest about
    the checkpoint, the tap is judged after the revocation."""
    p = world.patient()
    assert gateway.set_revocations(world.revocations({p.pass_id: NOW + 600}, issued=NOW + 700, seq=2))
    clock.t = NOW + 800
    note = _checkpoint_now(world, gateway)
    clock.t = NOW + 830
    backdated, _ = world.record("check-in", pres=world.nfc(p, anchor=note), patient=p.patient_id,
                                created_ms=NOW * 1000)
    assert _reason(gateway, backdated) == "stale"
    # within the clock skew before the checkpoint (so not refused as stale), and before the
    # revocation: judged at the checkpoint's time, not at `captured`
    near, _ = world.record("check-in", pres=world.nfc(p, anchor=note), patient=p.patient_id,
                           captured_ms=(NOW + 550) * 1000, created_ms=(NOW + 820) * 1000)
    assert _reason(gateway, near) == "revoked"
    honest, _ = world.record("check-in", pres=world.nfc(p, anchor=note), patient=p.patient_id,
                             created_ms=(NOW + 820) * 1000)
    assert _reason(gateway, honest) == "revoked"


def test_nfc_without_anchor_is_judged_on_arrival(world, gateway, clock):
    """A nonce that commits to no checkpoint proves no time: a pass revoked before the
    record arrives is refused, whatever `captured` says."""
    p = world.patient()
    (c1, _), _ = world.session(p, pres=world.nfc(p))
    clock.t = NOW + 7200
    assert gateway.set_revocations(world.revocations({p.pass_id: NOW + 3600}, issued=NOW + 3700, seq=2))
    assert _reason(gateway, c1) == "revoked"


def test_nonce_committing_to_an_unknown_checkpoint_is_stale(world, gateway):
    p = world.patient()
    c, _ = world.record("check-in", pres=world.nfc(p, anchor=b"a checkpoint this log never signed"),
                        patient=p.patient_id)
    assert _reason(gateway, c) == "stale"


def test_anchor_that_does_not_make_the_nonce_is_stale(world, gateway):
    p = world.patient()
    note = _checkpoint_now(world, gateway)
    pres = world.nfc(p)  # a random nonce ...
    pres["anchor"] = {"seed": os.urandom(16), "checkpoint": presentation.checkpoint_hash(note)}  # ... claimed
    c, _ = world.record("check-in", pres=pres, patient=p.patient_id)
    assert _reason(gateway, c) == "stale"


def test_card_is_judged_on_arrival(world, gateway, clock):
    p = world.patient(card=True)
    (c1, _), _ = world.session(p, pres=world.card(p))
    clock.t = NOW + 7200
    assert gateway.set_revocations(world.revocations({p.pass_id: NOW + 3600}, issued=NOW + 3700, seq=2))
    assert _reason(gateway, c1) == "revoked"


# ----------------------------------------------------------------------- sessions

def test_consent_cannot_be_appended_to_a_past_session(world, gateway, clock):
    """A kiosk-key holder who kept a session's presentation writes a new consent for it an
    hour later (the latest consent decides): refused. Backdated into the session's window,
    it is a second consent for a session that has one: refused too."""
    p = world.patient()
    note = _checkpoint_now(world, gateway)
    pres = world.nfc(p, anchor=note)
    (c1, l1), (c2, _) = world.session(p, pres=pres)
    _accept(gateway, c1)
    _accept(gateway, c2)
    clock.t = NOW + 3600
    refs = (entry.entry_hash(l1),)
    late, _ = world.record("consent", pres=pres, patient=p.patient_id, refs=refs,
                           captured_ms=NOW * 1000, created_ms=(NOW + 3600) * 1000)
    assert _reason(gateway, late) == "stale"
    second, _ = world.record("consent", pres=pres, patient=p.patient_id, refs=refs,
                             captured_ms=NOW * 1000, created_ms=NOW * 1000 + 2)
    assert _reason(gateway, second) == "replayed"
    other_capture, _ = world.record("consent", pres=pres, patient=p.patient_id, refs=refs,
                                    captured_ms=NOW * 1000 - 5, created_ms=NOW * 1000 + 3)
    assert _reason(gateway, other_capture) == "stale"
    assert gateway.store.size() == 3


def test_default_age_bound_keeps_a_long_weekend_and_refuses_a_week(world, gateway, clock):
    p = world.patient(card=True)
    (c1, _), (c2, _) = world.session(p, pres=world.card(p))
    clock.t = NOW + 88 * 3600  # Friday 17:00 to Tuesday 09:00
    _accept(gateway, c1)
    _accept(gateway, c2)
    (c3, _), _ = world.session(p, pres=world.card(p), created_ms=(NOW + 1) * 1000)
    clock.t = NOW + 7 * 86400
    assert _reason(gateway, c3) == "too-old"


# ------------------------------------------------ the sealed part belongs to its leaf

def test_sealed_part_moved_to_another_leaf_is_malformed(world, gateway):
    import cbor2

    p = world.patient()
    (c1, _), (c2, _) = world.session(p)
    m1, m2 = cbor2.loads(c1), cbor2.loads(c2)
    m1["sealed"] = m2["sealed"]  # the consent's body and presentation under the check-in's leaf
    assert _reason(gateway, cbor2.dumps(m1)) == "malformed"


@pytest.mark.parametrize("what", ["other key", "garbage"])
def test_sealed_part_that_does_not_open_is_malformed(world, gateway, what):
    import cbor2

    p = world.patient()
    leaf, body = world.leaf("check-in", patient=p.patient_id, captured_ms=NOW * 1000)
    rec = entry.Record(leaf, body, world.nfc(p), 0)
    m = cbor2.loads(rec.seal(PrivateKey.generate().public_key))
    if what == "other key":
        m["kid"] = cbor2.loads(world.seal(rec))["kid"]  # names our key, sealed to another
    else:
        m["sealed"] = os.urandom(200)
    assert _reason(gateway, cbor2.dumps(m)) == "malformed"


# ------------------------------------------- end to end: the kiosk engine, then the gateway

def _engine_gateway(tmp_path, rig, clock_offset_s: float):
    """A gateway for the rig's kiosk, site and issuer, whose clock runs `clock_offset_s` behind
    the kiosk's by (the record takes that long to arrive)."""
    from checkin.fakes import KIOSK as RIG_KIOSK
    from checkin.fakes import SITE as RIG_SITE
    from nacl.signing import SigningKey

    from kiosk.config import GatewayTable, PassTable
    from kiosk.gateway.core import Gateway
    from kiosk.gateway.registry import SqliteRegistry
    from kiosk.gateway.sessions import SqliteSessions
    from kiosk.ledger.sqlite_store import SqliteLogStore
    from kiosk.protocol import keys, revocation

    registry = SqliteRegistry(tmp_path / "registry.sqlite3")
    registry.add(RIG_KIOSK, rig.kiosk_key.verify_key)
    seal = PrivateKey.generate()
    gw = Gateway(store=SqliteLogStore(tmp_path / "ledger.sqlite3"), registry=registry,
                 sessions=SqliteSessions(tmp_path / "ledger.sqlite3"), log_key=SigningKey.generate(),
                 log_name="e2e.example/log", site=RIG_SITE,
                 issuers={keys.kid(rig.issuer.verify_key): rig.issuer.verify_key}, sealing_keys=[seal],
                 settings=GatewayTable(), passes=PassTable(), clock=lambda: rig.clock.time() + clock_offset_s)
    now = int(rig.clock.time())
    assert gw.set_revocations(revocation.sign(rig.issuer, site=RIG_SITE, revoked={}, issued=now - 10,
                                              next_update=now + 86400, seq=1))
    return gw, seal.public_key


def test_qr_patient_who_takes_70_s_over_the_consent_lands_in_the_ledger(tmp_path):
    """The QR is read, the patient reads the consent for 70 s, signs; the kiosk writes both
    leaves then; the gateway (a few seconds later) appends both."""
    from checkin.fakes import KIOSK as RIG_KIOSK
    from checkin.fakes import Rig, good_face

    from kiosk.checkin import engine as EN
    from kiosk.checkin import events as E
    from kiosk.checkin.headless import ScriptedPatient
    from kiosk.protocol.entry import Record

    rig = Rig()
    w = rig.enroll()
    from checkin.fakes import FakeFaces

    eng, ui, sink = rig.engine(qr=[rig.qr(w)], faces=FakeFaces(rig.clock, [good_face()]),
                               patient=ScriptedPatient())
    ui.on(E.CONSENT_SHOW, lambda ev: rig.clock.sleep(70))  # a slow reader
    t_shown = rig.clock.time()
    out = eng.run_once()
    assert out.status == EN.CHECKED_IN
    (recs,) = sink.sessions
    envs = [entry.decode_leaf(leaf)[0] for leaf, _, _ in recs]
    assert all(e.created - e.captured >= 70_000 for e in envs)
    assert all(abs(e.captured - t_shown * 1000) < 2000 for e in envs)
    gw, seal_to = _engine_gateway(tmp_path, rig, clock_offset_s=5)
    try:
        outcomes = gw.handle_batch([(RIG_KIOSK, Record(leaf, body, pres, 0).seal(seal_to))
                                    for leaf, body, pres in recs])
        assert [o.receipt.status for o in outcomes] == ["accepted", "accepted"], outcomes
        assert gw.store.size() == 2
    finally:
        gw.close()
