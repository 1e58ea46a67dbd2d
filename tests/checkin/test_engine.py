"""The check-in state machine on fakes: every path, on a fake clock."""
from __future__ import annotations

import json

import pytest

from kiosk.checkin import engine as EN
from kiosk.checkin import events as E
from kiosk.checkin import records
from kiosk.checkin.events import UiInput
from kiosk.checkin.headless import ScriptedPatient
from kiosk.checkin.ports import FaceReading
from kiosk.errors import CameraError, FormatError, NfcError
from kiosk.protocol import cbor, cose, entry, patient_pass, presentation
from kiosk.protocol import consent as consent_format

from .fakes import KIOSK, SITE, FakeFaces, FakeLiveness, FakeSink, Rig, good_face, guidance


@pytest.fixture
def rig() -> Rig:
    return Rig()


def decoded(records_: list) -> list[tuple[entry.Envelope, dict, dict | None]]:
    out = []
    for leaf, body, pres in records_:
        env, _ = entry.decode_leaf(leaf)
        out.append((env, entry.decode_body(body), pres))
    return out


def test_nfc_checkin_with_second_tap(rig: Rig) -> None:
    w = rig.enroll(1)
    faces = FakeFaces(rig.clock, [FaceReading(False, "face.none"), guidance("face.come_closer"),
                                  guidance("face.come_closer"), good_face(1)])
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=faces, patient=ScriptedPatient(second_tap=True))
    out = eng.run_once()
    assert out.status == EN.CHECKED_IN and out.channel == "nfc" and out.consent == "permit"
    assert out.patient_signed and out.liveness == "not-configured"
    ids = ui.ids()
    # guidance is forwarded once per change, never repeated frame after frame
    assert ids.count("face.come_closer") == 1
    for want in (E.TAP_OR_SHOW_QR, E.READING, E.CHECKING_PASS, E.FACE_START, E.FACE_MATCHED,
                 E.LIVENESS_NOT_CONFIGURED, E.CONSENT_SHOW, E.CONSENT_TAP_TO_SIGN, E.CONSENT_PATIENT_SIGNED,
                 E.SAVING, E.DONE):
        assert want in ids, want
    assert ids.index(E.FACE_MATCHED) < ids.index(E.CONSENT_SHOW) < ids.index(E.DONE)
    assert len(sink.sessions) == 1
    (ci, ci_body, p1), (co, co_body, p2) = decoded(sink.sessions[0])
    assert (ci.type, co.type) == ("check-in", "consent")
    assert co.refs == (entry.entry_hash(sink.sessions[0][0][0]),)
    assert ci.patient == co.patient == patient_pass.decode(w.pass_bytes).patient
    assert p1 == p2 and p1["kind"] == "nfc"
    assert ci_body["binding"] == records.BINDING_PATIENT_KEY
    assert ci_body["liveness"] == {"status": "not-configured", "method": "none", "required": False, "attempts": 0}
    # every leaf is signed by the kiosk key and its hashes are the ones announced
    for leaf, _, _ in sink.sessions[0]:
        cose.verify_sign1(leaf, rig.kiosk_key.verify_key, "leaf")
    assert tuple(out.entries) == tuple(entry.entry_hash(r[0]) for r in sink.sessions[0])
    done = [e for e in ui.events if e.id == E.DONE][0]
    assert done.params["entries"] == [h.hex()[:12] for h in out.entries]
    # the patient's consent signature covers the body without itself
    body = sink.sessions[0][1][1]
    ps = co_body["patient_sig"]
    v = presentation.verify_consent_signature(patient_pass.decode(w.pass_bytes), ps["statement"], ps["sig"],
                                              site=SITE, kiosk=KIOSK, body_hash=consent_format.signed_body_hash(body))
    assert v.ok
    assert entry.body_hash_of(body) == co.body_hash


def test_qr_checkin_skips_second_tap(rig: Rig) -> None:
    w = rig.enroll(2)
    eng, ui, sink = rig.engine(qr=[rig.qr(w)], faces=FakeFaces(rig.clock, [good_face(2)]))
    out = eng.run_once()
    assert out.status == EN.CHECKED_IN and out.channel == "qr" and not out.patient_signed
    assert E.CONSENT_TAP_TO_SIGN not in ui.ids()  # no phone signer for a QR patient here
    assert sink.sessions[0][0][2]["kind"] == "qr"


def test_qr_patient_may_skip_offered_tap(rig: Rig) -> None:
    w = rig.enroll(2)
    from .fakes import WalletSigner
    eng, ui, sink = rig.engine(qr=[rig.qr(w)], faces=FakeFaces(rig.clock, [good_face(2)]))
    eng.consent_signer = WalletSigner(w)
    out = eng.run_once()
    assert out.status == EN.CHECKED_IN and not out.patient_signed
    assert E.CONSENT_TAP_TO_SIGN in ui.ids()
    skipped = [e for e in ui.events if e.id == E.CONSENT_PATIENT_SIG_SKIPPED]
    assert skipped[0].params == {"reason": "patient-skipped"}
    assert eng.consent_signer.calls == 0


def test_card_is_bound_by_face_alone(rig: Rig) -> None:
    card = rig.card_pass(3)
    eng, ui, sink = rig.engine(nfc=[rig.card(card)], faces=FakeFaces(rig.clock, [good_face(3)]))
    out = eng.run_once()
    assert out.status == EN.CHECKED_IN and not out.patient_signed
    (ci, ci_body, pres), _ = decoded(sink.sessions[0])
    assert ci_body["binding"] == records.BINDING_FACE_ONLY and pres == {"kind": "card", "pass": card}
    assert E.CONSENT_TAP_TO_SIGN not in ui.ids()


def test_a_phone_pass_shown_bare_is_refused(rig: Rig) -> None:
    """A phone pass without its fresh signature (lifted from a screenshot) is a copy."""
    w = rig.enroll(3)
    eng, ui, sink = rig.engine(nfc=[rig.card(w.pass_bytes)], faces=FakeFaces(rig.clock, [good_face(3)]))
    out = eng.run_once()
    assert (out.status, out.reason) == (EN.PASS_REFUSED, "stale") and sink.sessions == []


def test_revoked_pass_is_refused(rig: Rig) -> None:
    w = rig.enroll(1)
    rig.revoked = {patient_pass.decode(w.pass_bytes).pass_id: int(rig.clock.time()) - 5}
    faces = FakeFaces(rig.clock, [good_face(1)])
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=faces)
    out = eng.run_once()
    assert out.status == EN.PASS_REFUSED and out.reason == "revoked"
    assert [e.params for e in ui.events if e.id == E.PASS_REFUSED] == [{"reason": "revoked"}]
    assert sink.sessions == [] and faces.reads == 0


def test_replayed_qr_is_refused(rig: Rig) -> None:
    w = rig.enroll(1)
    cred = rig.qr(w)
    eng, ui, sink = rig.engine(qr=[cred, cred], faces=FakeFaces(rig.clock, [good_face(1)]))
    assert eng.run_once().status == EN.CHECKED_IN
    out = eng.run_once()
    assert (out.status, out.reason) == (EN.PASS_REFUSED, "replayed")
    assert len(sink.sessions) == 1


def test_unreadable_qr_is_refused(rig: Rig) -> None:
    eng, ui, sink = rig.engine(qr=[FormatError("QR text: base45 layer is invalid")])
    out = eng.run_once()
    assert (out.status, out.reason) == (EN.PASS_REFUSED, "malformed")


def test_stale_revocation_list_alerts_staff(rig: Rig) -> None:
    w = rig.enroll(1)
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)])
    eng.checker.revocations = lambda: None
    out = eng.run_once()
    assert out.reason == "revocation-list-stale"
    assert {"kind": "revocation-list-stale"} in [e.params for e in ui.events if e.id == E.STAFF_ALERT]


def test_a_revocation_list_from_the_future_means_this_clock_is_behind(rig: Rig) -> None:
    """QR time windows are refused and staff told; an NFC tap still works, judged at the
    list's time at least."""
    from kiosk.protocol import revocation
    w = rig.enroll(1)
    now = int(rig.clock.time())
    raw = revocation.sign(rig.issuer, site=SITE, revoked={}, issued=now + 3600, next_update=now + 86400, seq=2)
    future = revocation.verify(raw, {cose_kid(rig): rig.issuer.verify_key})
    eng, ui, sink = rig.engine(qr=[rig.qr(w)], faces=FakeFaces(rig.clock, [good_face(1)]))
    eng.checker.revocations = lambda: future
    out = eng.run_once()
    assert out.reason == "clock-unsynced"
    assert {"kind": "clock-unsynced"} in [e.params for e in ui.events if e.id == E.STAFF_ALERT]
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(1)]))
    eng.checker.revocations = lambda: future
    assert eng.run_once().status == EN.CHECKED_IN


def cose_kid(rig: Rig) -> bytes:
    from kiosk.protocol.keys import kid
    return kid(rig.issuer.verify_key)


def test_face_mismatch_after_limited_retries(rig: Rig) -> None:
    w = rig.enroll(1)
    faces = FakeFaces(rig.clock, [], tail=good_face(9))  # someone else, every frame
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=faces)
    out = eng.run_once()
    assert out.status == EN.FACE_MISMATCH
    retries = [e.params for e in ui.events if e.id == E.FACE_RETRY]
    n = rig.engine_cfg.max_face_attempts
    assert retries == [{"attempt": i, "max": n} for i in range(1, n)]
    assert faces.reads == n and sink.sessions == []
    assert {"reason": "face-mismatch"} in [e.params for e in ui.events if e.id == E.SEE_FRONT_DESK]


def test_match_on_second_attempt(rig: Rig) -> None:
    w = rig.enroll(1)
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(9), good_face(1)]))
    out = eng.run_once()
    assert out.status == EN.CHECKED_IN
    assert decoded(sink.sessions[0])[0][1]["face"] == {"verified": True, "attempts": 2}


def test_nobody_there(rig: Rig) -> None:
    w = rig.enroll(1)
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)])
    t0 = rig.clock.monotonic()
    out = eng.run_once()
    assert out.status == EN.NOBODY and E.FACE_NOBODY in ui.ids()
    assert rig.clock.monotonic() - t0 >= rig.engine_cfg.face_timeout_s
    assert sink.sessions == []


def test_walks_away_during_face_capture(rig: Rig) -> None:
    w = rig.enroll(1)
    faces = FakeFaces(rig.clock, [guidance("face.hold_still")] * 3)  # then nobody
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=faces)
    out = eng.run_once()
    assert (out.status, out.reason) == (EN.WALKED_AWAY, "face-lost") and E.WALKED_AWAY in ui.ids()


def test_walks_away_at_consent(rig: Rig) -> None:
    w = rig.enroll(1)
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(1)]),
                               patient=ScriptedPatient(decision="ignore"))
    out = eng.run_once()
    assert (out.status, out.reason) == (EN.WALKED_AWAY, "consent-timeout")
    assert sink.sessions == []


def test_cancel_at_consent(rig: Rig) -> None:
    w = rig.enroll(1)
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(1)]),
                               patient=ScriptedPatient(decision="ignore"))
    ui.on(E.CONSENT_SHOW, lambda ev: UiInput(E.CANCEL))
    assert eng.run_once().status == EN.CANCELLED and sink.sessions == []


def test_declined_consent_is_recorded_as_deny(rig: Rig) -> None:
    w = rig.enroll(1)
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(1)]),
                               patient=ScriptedPatient(decision="decline", strokes=()))
    out = eng.run_once()
    assert out.status == EN.CONSENT_DECLINED and out.consent == "deny"
    _, (co, body, _) = decoded(sink.sessions[0])
    consent = json.loads(body["consent"])
    assert consent["provision"]["type"] == "deny"
    assert [e.params["consent"] for e in ui.events if e.id == E.DONE] == ["deny"]


def test_accept_needs_a_finger_signature(rig: Rig) -> None:
    w = rig.enroll(1)
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(1)]),
                               patient=ScriptedPatient(strokes=()))
    strokes = ([[1, 2, 0], [30, 40, 20]],)
    ui.on(E.CONSENT_SIGN_PLEASE, lambda ev: [UiInput(E.STROKES, strokes=strokes), UiInput(E.ACCEPT)])
    out = eng.run_once()
    assert out.status == EN.CHECKED_IN and E.CONSENT_SIGN_PLEASE in ui.ids()
    _, (_, body, _) = decoded(sink.sessions[0])
    assert body["signature"]["strokes"] == [list(map(list, s)) for s in strokes]
    assert body["signature"]["png"].startswith(b"\x89PNG")


def test_language_choice(rig: Rig) -> None:
    w = rig.enroll(1)
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(1)]),
                               patient=ScriptedPatient(language="es"))
    eng.run_once()
    shows = [e.params for e in ui.events if e.id == E.CONSENT_SHOW]
    assert [s["language"] for s in shows] == ["en", "es"]
    from kiosk.config import ConsentTable
    from kiosk.protocol.consent import text_sha256
    assert shows[1]["text_sha256"] == text_sha256(ConsentTable().text["es"]).hex()
    _, (_, body, _) = decoded(sink.sessions[0])
    assert body["document"]["language"] == "es"
    assert body["document"]["text_sha256"].hex() == shows[1]["text_sha256"]


def test_reader_failure_alerts_staff_and_qr_still_works(rig: Rig) -> None:
    w = rig.enroll(1)
    eng, ui, sink = rig.engine(nfc=[NfcError("reader gone")], qr=[None, rig.qr(w)],
                               faces=FakeFaces(rig.clock, [good_face(1)]))
    out = eng.run_once()
    assert out.status == EN.CHECKED_IN and out.channel == "qr"
    assert [e.params for e in ui.events if e.id == E.STAFF_ALERT] == [{"kind": "nfc-failure"}]
    # the broken reader rests; the attract screen of the next session offers QR only
    rig.nfc_source.polls = 0
    eng.run_once()
    assert [e.params for e in ui.events if e.id == E.TAP_OR_SHOW_QR][-1] == {"channels": ["qr"]}


def test_camera_failure_alerts_staff(rig: Rig) -> None:
    w = rig.enroll(1)
    faces = FakeFaces(rig.clock, [CameraError("camera unplugged")])
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w), rig.nfc(w)], faces=faces)
    out = eng.run_once()
    assert (out.status, out.reason) == (EN.HARDWARE_FAILURE, "camera-failure")
    assert {"kind": "camera-failure"} in [e.params for e in ui.events if e.id == E.STAFF_ALERT]
    # the next NFC patient is sent to the desk at once, the engine keeps running
    out = eng.run_once()
    assert (out.status, out.reason) == (EN.HARDWARE_FAILURE, "camera-unavailable")
    assert faces.reads == 1


def test_no_camera_at_all(rig: Rig) -> None:
    w = rig.enroll(1)
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], no_camera=True)
    assert eng.run_once().reason == "camera-unavailable"


def test_everything_broken_is_out_of_service(rig: Rig) -> None:
    eng, ui, sink = rig.engine(nfc=[NfcError("x")], qr=[CameraError("y")])
    outs = [eng.run_once().status for _ in range(2)]
    assert EN.OUT_OF_SERVICE in outs and E.OUT_OF_SERVICE in ui.ids()


def test_no_biometric_consent_goes_to_front_desk(rig: Rig) -> None:
    w = rig.enroll(None)
    faces = FakeFaces(rig.clock)
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=faces)
    out = eng.run_once()
    assert out.status == EN.NO_BIOMETRIC_CONSENT and faces.reads == 0
    assert {"reason": "no-biometric-consent"} in [e.params for e in ui.events if e.id == E.SEE_FRONT_DESK]


def test_template_sealed_to_another_key(rig: Rig) -> None:
    w = rig.enroll(1)
    from nacl.public import PrivateKey
    rig.sealing_key = PrivateKey.generate()
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)])
    out = eng.run_once()
    assert out.reason == "template-unreadable"
    assert {"kind": "sealing-key-mismatch"} in [e.params for e in ui.events if e.id == E.STAFF_ALERT]


def test_liveness_port(rig: Rig) -> None:
    w = rig.enroll(1)
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(1)] * 3),
                               liveness=FakeLiveness("attack"))
    out = eng.run_once()
    assert out.status == EN.LIVENESS_FAILED and sink.sessions == []
    assert ui.fields and ui.fields[0][:2] == ((255, 255, 255), "full")
    # one guided retry, then the front desk (never a lock-out)
    assert ui.ids().count(E.LIVENESS_RETRY) == 1 and eng.liveness.runs == 2
    assert E.LIVENESS_START in ui.ids() and E.LIVENESS_FAILED in ui.ids()
    assert [e.params["reason"] for e in ui.events if e.id == E.SEE_FRONT_DESK] == ["liveness-failed"]
    eng2, ui2, sink2 = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(1)] * 2),
                                  liveness=FakeLiveness("live"))
    assert eng2.run_once().liveness == "live"
    assert decoded(sink2.sessions[0])[0][1]["liveness"] == {"status": "live", "method": "fake", "required": True,
                                                            "attempts": 1}


def test_liveness_retry_then_live(rig: Rig) -> None:
    w = rig.enroll(1)
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(1)] * 3),
                               liveness=FakeLiveness("inconclusive", "live"))
    out = eng.run_once()
    assert out.status == EN.CHECKED_IN and out.liveness == "live"
    assert decoded(sink.sessions[0])[0][1]["liveness"]["attempts"] == 2


def test_match_uses_the_challenge_frames(rig: Rig) -> None:
    """The face step matched patient 1; a photo of someone else swapped in for the challenge
    is caught by the match made on the challenge's own frames."""
    w = rig.enroll(1)
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(1), good_face(2)]),
                               liveness=FakeLiveness("live"))
    out = eng.run_once()
    assert (out.status, out.reason) == (EN.FACE_MISMATCH, "face-changed") and sink.sessions == []


def test_outbox_failure(rig: Rig) -> None:
    w = rig.enroll(1)
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(1)]),
                               sink=FakeSink(fail=True))
    out = eng.run_once()
    assert out.status == EN.RECORD_FAILED and E.RECORD_FAILED in ui.ids()
    assert {"kind": "outbox-failure"} in [e.params for e in ui.events if e.id == E.STAFF_ALERT]


def test_idle_timeout(rig: Rig) -> None:
    eng, ui, sink = rig.engine()
    t0 = rig.clock.monotonic()
    assert eng.run_once().status == EN.NO_CREDENTIAL
    assert rig.clock.monotonic() - t0 >= rig.engine_cfg.credential_timeout_s
    assert ui.ids()[-1] == E.STATE and ui.events[-1].params == {"state": "idle"}


def test_events_are_ids_with_phi_free_params(rig: Rig) -> None:
    w = rig.enroll(1)
    patient = patient_pass.decode(w.pass_bytes).patient
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [guidance("face.more_light"),
                                                                           good_face(1)]))
    eng.run_once()
    last = 0
    for ev in ui.events:
        assert ev.id in E.ALL_EVENTS or ev.id.startswith("face."), ev.id
        assert " " not in ev.id and ev.t_ns >= last
        last = ev.t_ns
        blob = repr(ev.params)
        assert patient not in blob and "pass" not in ev.params


def test_signed_body_hash_ignores_only_patient_sig() -> None:
    body, h = entry.make_body({"a": 1})
    assert consent_format.signed_body_hash(body) == h
    signed = consent_format.with_patient_sig(body, b"s", b"x" * 64)
    assert consent_format.signed_body_hash(signed) == h and entry.body_hash_of(signed) != h
    assert cbor.loads(signed)["patient_sig"] == {"statement": b"s", "sig": b"x" * 64}


def test_face_budget_belongs_to_the_pass_not_the_tap(rig: Rig) -> None:
    """A stranger with a stolen phone does not get fresh comparisons by tapping again."""
    w = rig.enroll(1)
    n = rig.engine_cfg.max_face_attempts
    faces = FakeFaces(rig.clock, [], tail=good_face(9))  # someone else, every frame
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w), rig.nfc(w)], faces=faces)
    assert eng.run_once().status == EN.FACE_MISMATCH
    assert faces.reads == n
    second = eng.run_once()
    assert (second.status, second.reason) == (EN.FACE_MISMATCH, "face-locked")
    assert faces.reads == n, "a locked pass gets no comparison at all"
    assert {"kind": "face-locked"} in [e.params for e in ui.events if e.id == E.STAFF_ALERT]
    assert sink.sessions == []


def test_face_budget_refills_after_the_lockout(rig: Rig) -> None:
    w = rig.enroll(1)
    faces = FakeFaces(rig.clock, [good_face(9)] * rig.engine_cfg.max_face_attempts, tail=good_face(1))
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w), rig.nfc(w)], faces=faces)
    assert eng.run_once().status == EN.FACE_MISMATCH
    rig.clock.sleep(rig.engine_cfg.face_lockout_s + 1)
    assert eng.run_once().status == EN.CHECKED_IN
