"""Whole check-ins through the touchscreen: the real engine on the test fakes, the pygame UI on
SDL's dummy driver, and a robot tapping widgets with real mouse events."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from checkin.fakes import FakeFaces, FakeLiveness, Rig, good_face, guidance

from kiosk.checkin import engine as EN
from kiosk.checkin import events as E
from kiosk.checkin import records
from kiosk.checkin.headless import ScriptedPatient
from kiosk.checkin.ports import FaceReading
from kiosk.config import ConsentTable, EngineTable
from kiosk.protocol import entry
from kiosk.protocol.consent import text_sha256
from kiosk.staff.desk import Desk
from kiosk.staff.store import StaffStore
from kiosk.ui.app import PygameUi
from kiosk.ui.model import UiModel, UiSettings
from kiosk.ui.robot import PatientRobot, drive, tap
from kiosk.ui.widgets import Field, flatten


class Run:
    """One engine + UI; `screens` lists every screen the patient saw, in order."""

    def __init__(self, rig: Rig, tmp: Path, settings: UiSettings | None = None, **engine_kw) -> None:
        self.rig = rig
        self.store = StaffStore(tmp / "staff.sqlite3")
        self.desk = Desk(self.store, site="clinic", kiosk="kiosk-1")
        self.engine, _, self.sink = rig.engine(**engine_kw)
        self.model = UiModel(
            settings or UiSettings(result_s=0.0), ConsentTable().text, rig.clock, ConsentTable(), self.desk
        )
        self.ui = PygameUi(self.model, (800, 480), fps=0, clock=rig.clock).open()
        self.engine.ui = self.ui

        self.drawn: list[str] = []  # what reached the display, frame by frame

        def seen(ui: PygameUi) -> None:
            s = "field" if any(isinstance(w, Field) for w in ui.widgets) else ui.model.screen
            if not self.drawn or self.drawn[-1] != s:
                self.drawn.append(s)

        self.ui.on_frame = seen

    @property
    def screens(self) -> list[str]:
        """Every screen the model showed (some pass quicker than a frame on the fake clock)."""
        return list(self.model.history)

    def go(self, patient: ScriptedPatient, language: str | None = None) -> EN.Outcome:
        try:
            return drive(
                self.ui, self.engine.run_once, PatientRobot(patient, language=language), timeout_s=120
            )
        finally:
            self.ui.close()


def _consent_body(sink) -> dict:
    return entry.decode_body(sink.sessions[0][1][1])


def test_nfc_checkin_by_touch_with_second_tap(tmp_path: Path) -> None:
    rig = Rig()
    w = rig.enroll(1)
    faces = FakeFaces(
        rig.clock, [FaceReading(False, "face.none"), guidance("face.come_closer"), good_face(1)]
    )
    run = Run(rig, tmp_path, nfc=[rig.nfc(w)], faces=faces)
    out = run.go(ScriptedPatient(second_tap=True))
    assert out.status == EN.CHECKED_IN and out.patient_signed
    for s in ("welcome", "reading", "checking", "face", "consent", "second_tap", "phone_signed", "done"):
        assert s in run.screens, (s, run.screens)
    assert run.screens.index("face") < run.screens.index("consent") < run.screens.index("done")
    # the finger strokes drawn on the pad are the ones bound into the signed consent
    body = _consent_body(run.sink)
    strokes = body["signature"]["strokes"]
    assert len(strokes) == 2 and all(len(p) == 3 for s in strokes for p in s)
    assert strokes == run.model.consent.strokes  # exactly what the robot's finger drew
    assert body["signature"]["png"].startswith(b"\x89PNG")
    doc = body["document"]
    assert doc["language"] == "en" and doc["text_sha256"] == text_sha256(ConsentTable().text["en"])
    assert body["signature"]["signer"] == {
        "identified_by": records.BINDING_PATIENT_KEY,
        "channel": "nfc",
        "intent": "sign-button",
    }
    # the ticket the patient saw is in the staff queue, with its channel, and no name anywhere
    q = run.desk.queue(rig.clock.time())
    assert [(t.ticket, t.channel) for t in q] == [("A-1", "nfc")] and run.model.ticket == "A-1"


def test_qr_checkin_in_spanish(tmp_path: Path) -> None:
    rig = Rig()
    w = rig.enroll(2)
    run = Run(rig, tmp_path, qr=[rig.qr(w)], faces=FakeFaces(rig.clock, [good_face(2)]))
    out = run.go(ScriptedPatient(), language="es")
    assert out.status == EN.CHECKED_IN and out.channel == "qr"
    doc = _consent_body(run.sink)["document"]
    assert doc["language"] == "es" and doc["text_sha256"] == text_sha256(ConsentTable().text["es"])
    assert "second_tap" not in run.screens


def test_refused_pass_shows_why_and_a_next_step(tmp_path: Path) -> None:
    rig = Rig()
    w = rig.enroll(1)
    from kiosk.protocol import patient_pass

    rig.revoked = {patient_pass.decode(w.pass_bytes).pass_id: int(rig.clock.time()) - 5}
    run = Run(rig, tmp_path, UiSettings(result_s=30.0), nfc=[rig.nfc(w)])
    out = run.go(ScriptedPatient())
    assert out.status == EN.PASS_REFUSED and out.reason == "revoked"
    assert run.model.screen == "refused" and run.model.params["reason"] == "revoked"
    texts = " ".join(r.text for r in run.ui.records)
    assert "cancelled" in texts and "front desk" in texts
    assert run.sink.sessions == []


def test_decline_records_a_deny_and_says_so(tmp_path: Path) -> None:
    rig = Rig()
    w = rig.enroll(3)
    run = Run(rig, tmp_path, nfc=[rig.nfc(w, signer=False)], faces=FakeFaces(rig.clock, [good_face(3)]))
    out = run.go(ScriptedPatient(decision="decline", strokes=()))
    assert out.status == EN.CONSENT_DECLINED and out.consent == "deny"
    assert run.screens[-1] == "done" and run.model.params["consent"] == "deny"
    assert "staff may ask" in " ".join(r.text for r in run.ui.records)


def test_consent_timeout_walks_away(tmp_path: Path) -> None:
    rig = Rig()
    rig.engine_cfg = EngineTable(done_display_s=0, consent_timeout_s=3.0)
    w = rig.enroll(1)
    run = Run(rig, tmp_path, nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(1)]))
    out = run.go(ScriptedPatient(decision="ignore"))
    assert out.status == EN.WALKED_AWAY and out.reason == "consent-timeout"
    assert run.screens[-1] == "walked_away" and run.sink.sessions == []


def test_idle_warning_counts_down_then_forgets_the_patient(tmp_path: Path) -> None:
    rig = Rig()
    w = rig.enroll(1)
    run = Run(
        rig,
        tmp_path,
        UiSettings(result_s=0.0, idle_warning_s=2.0, idle_countdown_s=2.0),
        nfc=[rig.nfc(w)],
        faces=FakeFaces(rig.clock, [good_face(1)]),
    )
    warned: list[int] = []
    orig = run.ui.on_frame

    def frame(ui: PygameUi) -> None:
        orig(ui)
        if ui.model.idle_left is not None:
            warned.append(ui.model.idle_left)

    run.ui.on_frame = frame
    out = run.go(ScriptedPatient(decision="ignore"))
    assert out.status == EN.CANCELLED and out.reason == "patient-cancelled"
    assert warned and warned[0] == 2 and min(warned) == 1  # the countdown was on screen
    assert run.screens[-1] == "cancelled" and run.model.consent.strokes == [] and run.sink.sessions == []


def test_face_retry_then_liveness_fields_full_screen(tmp_path: Path) -> None:
    rig = Rig()
    w = rig.enroll(4)
    faces = FakeFaces(rig.clock, [good_face(9), guidance("face.hold_still"), good_face(4)])
    run = Run(rig, tmp_path, nfc=[rig.nfc(w, signer=False)], faces=faces, liveness=FakeLiveness("live"))
    out = run.go(ScriptedPatient())
    assert out.status == EN.CHECKED_IN and out.liveness == "live"
    assert "field" in run.drawn and run.drawn.index("field") < run.drawn.index("consent")
    assert run.model.field is None  # the light is gone once the consent shows


def test_liveness_failure_sends_to_the_desk(tmp_path: Path) -> None:
    rig = Rig()
    w = rig.enroll(4)
    run = Run(
        rig,
        tmp_path,
        UiSettings(result_s=30.0),
        nfc=[rig.nfc(w)],
        faces=FakeFaces(rig.clock, [good_face(4)]),
        liveness=FakeLiveness("attack"),
    )
    out = run.go(ScriptedPatient())
    assert out.status == EN.LIVENESS_FAILED
    assert "liveness_failed" in run.screens and run.model.screen == "desk"


def test_result_screen_ok_returns_to_welcome(tmp_path: Path) -> None:
    rig = Rig()
    w = rig.enroll(1)
    from kiosk.protocol import patient_pass

    rig.revoked = {patient_pass.decode(w.pass_bytes).pass_id: int(rig.clock.time()) - 5}
    run = Run(rig, tmp_path, UiSettings(result_s=30.0), nfc=[rig.nfc(w)])
    drive(run.ui, run.engine.run_once, None)
    assert run.model.screen == "refused"
    assert tap(run.ui, "result:ok")
    run.ui.step()
    run.ui.step()
    assert run.model.screen == "welcome"
    assert not any(isinstance(x, Field) for x in flatten(run.ui.widgets))
    run.ui.close()


@pytest.mark.parametrize("size", [(800, 480), (720, 1280)])
def test_both_panel_sizes_run_a_checkin(tmp_path: Path, size: tuple[int, int]) -> None:
    rig = Rig()
    w = rig.enroll(1)
    run = Run(rig, tmp_path, nfc=[rig.nfc(w, signer=False)], faces=FakeFaces(rig.clock, [good_face(1)]))
    run.ui.close()
    run.ui = PygameUi(run.model, size, fps=0, clock=rig.clock).open()
    run.engine.ui = run.ui
    assert run.go(ScriptedPatient()).status == EN.CHECKED_IN


class RetryingLiveness:
    """A light challenge that needs a second go: fields, "once more", fields, a head turn."""

    method = "fake"
    required = True

    def run(self, faces, ui, clock):
        from kiosk.checkin.events import Event
        from kiosk.checkin.ports import LivenessResult

        self.times = [ui.show_field((255, 255, 255), "full"), ui.show_field((40, 40, 200), "left")]
        ui.emit(Event(E.LIVENESS_RETRY, {"attempt": 2, "max": 2}, clock.monotonic_ns()))
        time.sleep(0.2)  # the patient reads it (real time: the UI loop draws meanwhile)
        self.times.append(ui.show_field((255, 255, 255), "right"))
        ui.emit(Event(E.LIVENESS_TURN, {"direction": "turn-left"}, clock.monotonic_ns()))
        time.sleep(0.2)
        # templates of the challenge's frames: the engine decides the match on them
        return LivenessResult("live", "fake", {}, (faces.last_template,))


def test_liveness_retry_fields_then_a_head_turn(tmp_path: Path) -> None:
    rig = Rig()
    w = rig.enroll(4)
    live = RetryingLiveness()
    run = Run(
        rig,
        tmp_path,
        nfc=[rig.nfc(w, signer=False)],
        faces=FakeFaces(rig.clock, [good_face(4)]),
        liveness=live,
    )
    hints: list[str] = []
    fields: list[tuple] = []
    orig = run.ui.on_frame

    def frame(ui: PygameUi) -> None:
        orig(ui)
        if ui.model.field is not None:
            fields.append(ui.model.field)
        if ui.model.screen == "liveness" and ui.model.hint:
            hints.append(ui.model.hint[0])  # the turn is asked on the last field, the retry without one

    run.ui.on_frame = frame
    out = run.go(ScriptedPatient())
    assert out.status == EN.CHECKED_IN
    # each light field reached the display, full-screen or on its half
    assert [f for i, f in enumerate(fields) if i == 0 or fields[i - 1] != f] == [
        ((255, 255, 255), "full"),
        ((40, 40, 200), "left"),
        ((255, 255, 255), "right"),
    ]
    assert "liveness.retry" in hints and "liveness.turn.turn-left" in hints
    assert len(live.times) == 3 and live.times == sorted(live.times)  # flip times, in order
