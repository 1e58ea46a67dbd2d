"""The gateway core (handle_record / handle_batch) on a SQLite store: every rule, no MQTT."""
from __future__ import annotations

import hashlib
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from kiosk.ledger.checkpoint import open_checkpoint
from kiosk.protocol import cbor, entry, presentation

from .conftest import build_gateway, check_receipt
from .factories import KIOSK, NOW


def _accept(world, gateway, payload, leaf, kiosk=KIOSK):
    r = gateway.handle_record(kiosk, payload)
    assert r is not None and r.status == entry.STATUS_ACCEPTED, r
    check_receipt(world, leaf, r)
    return r


def _rejected(gateway, payload, reason, kiosk=KIOSK):
    r = gateway.handle_record(kiosk, payload)
    assert r is not None
    assert (r.status, r.reason) == (entry.STATUS_REJECTED, reason)
    assert r.leaf_index is None and r.checkpoint is None
    entry.decode_receipt(r.to_cbor())  # a well-formed message for the kiosk
    return r


# ---------------------------------------------------------------- the happy path

def test_checkin_and_consent_are_appended_with_verifiable_receipts(world, gateway):
    p = world.patient()
    (c1, l1), (c2, l2) = world.session(p)
    r1 = _accept(world, gateway, c1, l1)
    r2 = _accept(world, gateway, c2, l2)
    assert (r1.leaf_index, r2.leaf_index) == (0, 1)
    assert gateway.store.size() == 2
    # bodies stored under their hash; checkpoint saved and signed by the log key
    env, _ = entry.decode_leaf(l2)
    assert entry.body_hash_of(gateway.store.get_body(env.body_hash)) == env.body_hash
    size, note = gateway.store.latest_checkpoint()
    assert size == 2 and open_checkpoint(note, world.verifier, world.log_name).size == 2
    assert gateway.stats()["accepted"] == 2


def test_receipt_carries_consistency_from_last_size(world, gateway):
    first = [world.session(world.patient()) for _ in range(3)]
    for sess in first:
        for payload, leaf in sess:
            _accept(world, gateway, payload, leaf)
    base = (6, gateway.store.root_hash(6))
    (c1, l1), _ = world.session(world.patient(), last_size=6)
    r = _accept(world, gateway, c1, l1)
    assert r.consistency, "a receipt from last_size 6 to 7 needs a consistency proof"
    assert r.from_size == 6
    check_receipt(world, l1, r, base=base)
    # a record that left with an older base is proven from the checkpoint of the last
    # receipt this gateway sent the kiosk (its head, in the normal course): no rebase
    (c3, l3), _ = world.session(world.patient(), last_size=0)
    r3 = _accept(world, gateway, c3, l3)
    assert r3.from_size == 7 and r3.consistency
    check_receipt(world, l3, r3, base=(7, gateway.store.root_hash(7)))
    # a resend names the kiosk's head at that send: the duplicate is proven from there
    dup = gateway.handle_record(KIOSK, world.session(world.patient())[0][0])
    again = gateway.handle_record(KIOSK, c1)
    assert again.status == entry.STATUS_DUPLICATE and again.from_size == 6
    assert dup.from_size == 8


def test_duplicate_resend_gets_the_existing_entry(world, gateway, clock):
    (c1, l1), _ = world.session(world.patient())
    r1 = _accept(world, gateway, c1, l1)
    clock.t += 40 * 86400  # long after: a resend is still answered, not judged again
    r2 = gateway.handle_record(KIOSK, c1)
    assert r2.status == entry.STATUS_DUPLICATE and r2.leaf_index == r1.leaf_index
    check_receipt(world, l1, r2)
    assert gateway.store.size() == 1


def test_same_leaf_twice_in_one_batch_is_appended_once(world, gateway):
    (c1, l1), (c2, l2) = world.session(world.patient())
    outs = gateway.handle_batch([(KIOSK, c1), (KIOSK, c2), (KIOSK, c1)])
    statuses = [o.receipt.status for o in outs]
    assert statuses == ["accepted", "accepted", "duplicate"]
    assert outs[0].receipt.leaf_index == outs[2].receipt.leaf_index == 0
    assert gateway.store.size() == 2
    # one checkpoint for the batch
    assert len({o.receipt.checkpoint for o in outs}) == 1


def test_card_and_qr_presentations_are_accepted(world, gateway):
    p = world.patient(card=True)
    c, leaf = world.record("check-in", pres=world.card(p), patient=p.patient_id)
    _accept(world, gateway, c, leaf)
    # a phone pass shown bare (a copy lifted from a screenshot) is not a card
    phone = world.patient()
    c, _ = world.record("check-in", pres=world.card(phone), patient=phone.patient_id)
    assert gateway.handle_record(KIOSK, c).reason == "stale"
    q = world.patient()
    c, leaf = world.record("check-in", pres=world.qr(q, NOW), patient=q.patient_id)
    _accept(world, gateway, c, leaf)


def test_staff_override_and_kiosk_event_need_no_presentation(world, gateway):
    for t in ("staff-override", "kiosk-event"):
        c, leaf = world.record(t, pres=None)
        _accept(world, gateway, c, leaf)


def test_checkin_without_presentation_is_malformed(world, gateway):
    c, _ = world.record("check-in", pres=None)
    _rejected(gateway, c, "malformed")


def test_entry_that_waited_out_an_outage_is_accepted(world, gateway, clock):
    p = world.patient()
    (c1, l1), (c2, l2) = world.session(p)
    clock.t = NOW + 3 * 86400  # the gateway was down for three days
    _accept(world, gateway, c1, l1)
    _accept(world, gateway, c2, l2)


# ---------------------------------------------------------------- replays and sessions

def test_presentation_reused_in_a_new_session_is_a_replay(world, gateway):
    p = world.patient()
    pres = world.nfc(p)
    for payload, leaf in world.session(p, pres=pres):
        _accept(world, gateway, payload, leaf)
    # a new check-in (another entry, so no duplicate) with the same presentation
    (c3, _), (c4, _) = world.session(p, pres=pres, created_ms=NOW * 1000 + 5000)
    _rejected(gateway, c3, "replayed")
    _rejected(gateway, c4, "replayed")
    assert gateway.stats()["replayed"] == 2


def test_replay_within_one_batch(world, gateway):
    p = world.patient()
    pres = world.nfc(p)
    a, _ = world.record("check-in", pres=pres, patient=p.patient_id)
    b, _ = world.record("check-in", pres=pres, patient=p.patient_id)
    outs = gateway.handle_batch([(KIOSK, a), (KIOSK, b)])
    assert [o.receipt.status for o in outs] == ["accepted", "rejected"]
    assert outs[1].receipt.reason == "replayed"


def test_consent_must_ref_the_checkin_of_its_presentation(world, gateway):
    p = world.patient()
    pres = world.nfc(p)
    # a consent with no check-in at all
    c, _ = world.record("consent", pres=pres, patient=p.patient_id, refs=(os.urandom(32),))
    _rejected(gateway, c, "wrong-entry")
    # the check-in arrives; a consent that refs something else is a replay of its presentation
    ci, li = world.record("check-in", pres=pres, patient=p.patient_id)
    _accept(world, gateway, ci, li)
    c, _ = world.record("consent", pres=pres, patient=p.patient_id, refs=(os.urandom(32),))
    _rejected(gateway, c, "replayed")
    c, lc = world.record("consent", pres=pres, patient=p.patient_id, refs=(entry.entry_hash(li),))
    _accept(world, gateway, c, lc)


def test_consent_before_its_checkin_may_be_deferred(world, gateway):
    (c1, l1), (c2, l2) = world.session(world.patient())
    out = gateway.handle_batch([(KIOSK, c2)], may_defer=[True])
    assert out[0].deferred and out[0].receipt is None
    _accept(world, gateway, c1, l1)
    out = gateway.handle_batch([(KIOSK, c2)], may_defer=[True])
    assert out[0].receipt.status == "accepted"
    check_receipt(world, l2, out[0].receipt)


def test_dedup_comes_before_the_replay_rule(world, gateway):
    p = world.patient()
    (c1, l1), (c2, l2) = world.session(p)
    _accept(world, gateway, c1, l1)
    _accept(world, gateway, c2, l2)
    assert gateway.handle_record(KIOSK, c1).status == "duplicate"
    assert gateway.handle_record(KIOSK, c2).status == "duplicate"


def test_leaf_patient_must_match_the_pass(world, gateway):
    p = world.patient()
    c, _ = world.record("check-in", pres=world.nfc(p), patient="p-someoneelse")
    _rejected(gateway, c, "malformed")


def test_presentation_for_another_kiosk(world, gateway):
    p = world.patient()
    c, _ = world.record("check-in", pres=world.nfc(p, kiosk="kiosk-9"), patient=p.patient_id)
    _rejected(gateway, c, "wrong-kiosk")


# ---------------------------------------------------------------- kiosks and leaves

def test_unknown_kiosk(world, gateway):
    p = world.patient()
    c, _ = world.record("check-in", kiosk="kiosk-7", pres=world.nfc(p, "kiosk-7"), patient=p.patient_id)
    _rejected(gateway, c, "unknown-kiosk", kiosk="kiosk-7")


def test_revoked_kiosk(world, gateway):
    gateway.registry.revoke(KIOSK)
    (c1, _), _ = world.session(world.patient())
    _rejected(gateway, c1, "revoked")


def test_bad_kiosk_signature(world, gateway):
    p = world.patient()
    c, leaf = world.record("check-in", pres=world.nfc(p), patient=p.patient_id, key=SigningKey.generate())
    r = _rejected(gateway, c, "bad-signature")
    assert r.entry_hash == entry.entry_hash(leaf)


def test_tampered_leaf_signature(world, gateway):
    p = world.patient()
    leaf, body = world.leaf("check-in", patient=p.patient_id)
    tampered = leaf[:-1] + bytes([leaf[-1] ^ 1])
    c = world.seal(entry.Record(tampered, body, world.nfc(p), 0))
    _rejected(gateway, c, "bad-signature")


def test_body_hash_mismatch(world, gateway):
    p = world.patient()
    other, _ = entry.make_body({"kind": "other"})
    c, _ = world.record("check-in", pres=world.nfc(p), patient=p.patient_id, body=other)
    _rejected(gateway, c, "malformed")


def test_leaf_kiosk_differs_from_topic_kiosk(world, tmp_path, clock):
    gw = build_gateway(world, tmp_path, clock, kiosks=(KIOSK, "kiosk-2"))
    p = world.patient()
    c, _ = world.record("check-in", pres=world.nfc(p), patient=p.patient_id)  # kiosk-1's leaf
    _rejected(gw, c, "wrong-kiosk", kiosk="kiosk-2")
    gw.close()


def test_wrong_site(world, gateway):
    c, _ = world.record("kiosk-event", site="clinic-b")
    _rejected(gateway, c, "wrong-site")


def test_too_large(world, tmp_path, clock):
    gw = build_gateway(world, tmp_path, clock, max_message_bytes=4096)
    p = world.patient()
    big, _ = entry.make_body({"pad": b"x" * 5000})
    c, leaf = world.record("check-in", pres=world.nfc(p), patient=p.patient_id, body=big)
    r = _rejected(gw, c, "too-large")
    assert r.entry_hash == entry.entry_hash(leaf)
    _rejected(gw, os.urandom(300 * 1024), "too-large")
    gw.close()


def test_invalid_topic_kiosk_is_dropped(world, gateway):
    c, _ = world.record("kiosk-event")
    assert gateway.handle_record(None, c) is None
    assert gateway.handle_record("Not A Kiosk", c) is None
    assert gateway.stats()["dropped"] == 2


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=2048),
                      st.builds(lambda m: cbor.dumps(m), st.dictionaries(
                          st.sampled_from(["leaf", "body", "presentation", "last_size", "x"]),
                          st.one_of(st.binary(max_size=64), st.integers(-5, 5), st.none(),
                                    st.dictionaries(st.text(max_size=5), st.binary(max_size=8),
                                                    max_size=3)),
                          max_size=5))))
def test_random_bytes_are_answered_never_crash(world, gateway, data):
    r = gateway.handle_record(KIOSK, data)
    assert r is not None and r.status == "rejected" and r.reason
    assert len(r.entry_hash) == 32
    entry.decode_receipt(r.to_cbor())


def test_random_bytes_answer_names_the_payload_hash(world, gateway):
    data = os.urandom(100)
    assert _rejected(gateway, data, "malformed").entry_hash == hashlib.sha256(data).digest()


# ---------------------------------------------------------------- time and passes

def test_created_in_the_future(world, gateway, clock):
    p = world.patient()
    c, _ = world.record("check-in", pres=world.nfc(p), patient=p.patient_id,
                        created_ms=(NOW + 301) * 1000)
    _rejected(gateway, c, "created-in-future")
    c, leaf = world.record("check-in", pres=world.nfc(p), patient=p.patient_id,
                        created_ms=(NOW + 200) * 1000)  # within the skew
    _accept(world, gateway, c, leaf)


def test_too_old(world, gateway, clock):
    p = world.patient()
    c, _ = world.record("check-in", pres=world.nfc(p), patient=p.patient_id)
    clock.t = NOW + 31 * 86400
    _rejected(gateway, c, "too-old")


def test_pass_revoked_before_created_is_refused(world, gateway):
    p = world.patient()
    assert gateway.set_revocations(world.revocations({p.pass_id: NOW - 60}, seq=2))
    (c1, _), _ = world.session(p)
    _rejected(gateway, c1, "revoked")


def test_older_revocation_list_is_ignored(world, gateway):
    assert gateway.set_revocations(world.revocations(seq=5))
    assert not gateway.set_revocations(world.revocations(seq=4))
    assert not gateway.set_revocations(b"junk")
    assert gateway.revocations.seq == 5


def test_expired_pass(world, gateway):
    p = world.patient(issued=NOW - 10 * 86400, valid_s=86400)
    (c1, _), _ = world.session(p)
    _rejected(gateway, c1, "expired")


def test_no_revocation_list_refuses_passes(world, tmp_path, clock):
    gw = build_gateway(world, tmp_path, clock, revocations=b"")
    assert gw.revocations is None
    (c1, _), _ = world.session(world.patient())
    _rejected(gw, c1, "revocation-list-stale")
    gw.close()


def test_stats_count_every_outcome(world, gateway):
    (c1, l1), _ = world.session(world.patient())
    _accept(world, gateway, c1, l1)
    gateway.handle_record(KIOSK, c1)
    gateway.handle_record(KIOSK, b"\x00")
    assert gateway.stats() == {"accepted": 1, "duplicate": 1, "malformed": 1}


def test_a_decoder_bug_is_a_rejection_not_a_crash(world, gateway, monkeypatch):
    from kiosk.gateway import core as gateway_module

    def boom(data):
        raise RuntimeError("bug")

    monkeypatch.setattr(gateway_module.entry, "decode_record", boom)
    r = gateway.handle_record(KIOSK, b"\xa0")
    assert (r.status, r.reason) == ("rejected", "malformed")


# ------------------------------------------------- the optional patient consent signature

def _consent_with_patient_sig(world, p, ci_leaf, pres, *, signer, body_hash=None):
    from kiosk.protocol import consent as consent_format
    body, bh = entry.make_body({"consent": "{}"})
    h = body_hash or consent_format.signed_body_hash(body)
    stmt = presentation.consent_statement(world.site, KIOSK, os.urandom(16), h)
    body = consent_format.with_patient_sig(body, stmt, presentation.sign_statement(signer, stmt))
    bh = entry.body_hash_of(body)
    env = entry.new_envelope("consent", site=world.site, kiosk=KIOSK, body_hash=bh, created_ms=NOW * 1000 + 1,
                             refs=(entry.entry_hash(ci_leaf),), patient=p.patient_id, captured_ms=NOW * 1000)
    leaf = entry.sign_leaf(env, world.kiosk_key())
    return world.seal(entry.Record(leaf, body, pres, 0)), leaf


def test_patient_consent_signature_is_checked_where_present(world, gateway):
    from nacl.signing import SigningKey
    p = world.patient()
    pres = world.nfc(p)
    c1, l1 = world.record("check-in", pres=pres, patient=p.patient_id)
    _accept(world, gateway, c1, l1)
    # signed by someone else's key: refused
    bad, _ = _consent_with_patient_sig(world, p, l1, pres, signer=SigningKey.generate())
    assert gateway.handle_record(KIOSK, bad).reason == "bad-signature"
    # signed over another body: refused
    other, _ = _consent_with_patient_sig(world, p, l1, pres, signer=p.key, body_hash=os.urandom(32))
    assert gateway.handle_record(KIOSK, other).reason == "malformed"
    # the patient's own signature over this body: appended
    good, leaf = _consent_with_patient_sig(world, p, l1, pres, signer=p.key)
    _accept(world, gateway, good, leaf)


# ------------------------------------------------------- sessions: who may reuse a presentation

def test_only_a_consent_may_join_a_session(world, gateway):
    """A check-in naming the first one in `refs` is still a replay of its presentation."""
    p = world.patient()
    pres = world.nfc(p)
    c1, l1 = world.record("check-in", pres=pres, patient=p.patient_id)
    _accept(world, gateway, c1, l1)
    for typ in ("check-in", "consent-withdrawal", "staff-override"):
        again, _ = world.record(typ, pres=pres, patient=p.patient_id, refs=(entry.entry_hash(l1),))
        assert gateway.handle_record(KIOSK, again).reason == "replayed", typ
    assert gateway.store.size() == 1


def test_a_consent_from_another_kiosk_cannot_join(world, gateway):
    """A QR statement names no kiosk: the session itself must stay at its kiosk."""
    p = world.patient()
    pres = world.qr(p, NOW)
    c1, l1 = world.record("check-in", pres=pres, patient=p.patient_id)
    _accept(world, gateway, c1, l1)
    gateway.registry.add("kiosk-2", world.kiosk_key("kiosk-2").verify_key)
    c2, _ = world.record("consent", pres=pres, kiosk="kiosk-2", patient=p.patient_id,
                         refs=(entry.entry_hash(l1),))
    assert gateway.handle_record("kiosk-2", c2).reason == "replayed"


def test_a_card_patient_checks_in_on_every_visit(world, gateway):
    p = world.patient(card=True)
    for visit in range(3):
        (c1, l1), (c2, l2) = world.session(p, pres=world.card(p), created_ms=(NOW + visit) * 1000)
        _accept(world, gateway, c1, l1)
        _accept(world, gateway, c2, l2)
    assert gateway.store.size() == 6


def test_re_encoded_leaves_are_not_new_entries(world, gateway):
    """The same signed envelope in another encoding must not be appended again."""
    import cbor2
    (c1, l1), _ = world.session(world.patient())
    _accept(world, gateway, c1, l1)
    rec = entry.decode_record(c1).open(gateway.sealing_keys)
    tag = cbor2.loads(l1)
    prot, _, payload, sig = tag.value
    variants = {
        "untagged": cbor2.dumps(tag.value),
        "unprotected header": cbor2.dumps(cbor2.CBORTag(18, [prot, {99: b"anything at all"}, payload, sig])),
        "long length": l1[:-66] + b"\x59\x00\x40" + l1[-64:],  # the 64-byte signature with a 2-byte length
    }
    for what, leaf in variants.items():
        payload_msg = world.seal(entry.Record(leaf, rec.body, rec.presentation, 0))
        r = gateway.handle_record(KIOSK, payload_msg)
        assert r.status == "rejected" and r.reason == "malformed", what
    assert gateway.store.size() == 1


def test_the_shell_keeps_the_checkpoint_time_after_sending_the_receipts(world, gateway):
    p = world.patient()
    (c1, l1), _ = world.session(p)
    (out,) = gateway.handle_batch([(KIOSK, c1)], note_later=True)
    note_hash = presentation.checkpoint_hash(out.receipt.checkpoint)
    assert gateway.sessions.checkpoint_time(note_hash) is None  # receipts go out first
    gateway.note_signed()
    assert gateway.sessions.checkpoint_time(note_hash) is not None
    gateway.note_signed()  # nothing pending: a no-op
    # without note_later the time is kept before handle_batch returns
    (c3, _), _ = world.session(world.patient())
    (out,) = gateway.handle_batch([(KIOSK, c3)])
    assert gateway.sessions.checkpoint_time(presentation.checkpoint_hash(out.receipt.checkpoint))


def test_checkpoint_times_kept_without_an_fsync_are_synced_once(world, gateway):
    syncs: list[bytes] = []
    sync = gateway.sessions.sync
    gateway.sessions.sync = lambda h: (syncs.append(h), sync(h))[1]
    (c1, _), _ = world.session(world.patient())
    (out,) = gateway.handle_batch([(KIOSK, c1)], note_later=True)
    gateway.note_signed(durable=False)
    note_hash = presentation.checkpoint_hash(out.receipt.checkpoint)
    assert gateway.sessions.checkpoint_time(note_hash) is not None  # kept, not yet synced
    assert gateway.sync_notes() and syncs == [note_hash]
    assert not gateway.sync_notes() and syncs == [note_hash]  # nothing new: no fsync
    assert gateway.sessions.checkpoint_time(note_hash) is not None  # the row as it was
    gateway.note_signed()  # a durable note leaves nothing to sync
    assert not gateway.sync_notes()


def test_one_registry_read_per_kiosk_and_batch(world, gateway):
    reads: list[str] = []
    get = gateway.registry.get

    def counting(kiosk_id):
        reads.append(kiosk_id)
        return get(kiosk_id)

    gateway.registry.get = counting
    items = [(KIOSK, c) for p in (world.patient(), world.patient()) for c, _ in world.session(p)]
    outs = gateway.handle_batch(items)
    assert [o.receipt.status for o in outs] == [entry.STATUS_ACCEPTED] * 4
    assert reads == [KIOSK]
