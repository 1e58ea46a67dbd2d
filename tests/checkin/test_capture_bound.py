"""A session longer than the capture bound writes nothing: the patient is not told
"checked in" for records the gateway would refuse as stale."""
from __future__ import annotations

from kiosk.checkin import engine as EN
from kiosk.checkin import events as E
from kiosk.checkin.headless import ScriptedPatient

from .fakes import FakeFaces, Rig, good_face


def _run(rig: Rig, consent_reading_s: float):
    w = rig.enroll()
    eng, ui, sink = rig.engine(qr=[rig.qr(w)], faces=FakeFaces(rig.clock, [good_face()]),
                               patient=ScriptedPatient())
    ui.on(E.CONSENT_SHOW, lambda ev: rig.clock.sleep(consent_reading_s))
    return eng.run_once(), ui, sink


def test_a_session_past_the_capture_bound_records_nothing() -> None:
    rig = Rig()
    out, ui, sink = _run(rig, rig.engine_cfg.max_capture_age_s + 1)
    assert (out.status, out.reason) == (EN.CANCELLED, "session-too-long")
    assert sink.sessions == []
    assert any(e.id == E.SEE_FRONT_DESK and e.params.get("reason") == "session-too-long" for e in ui.events)


def test_a_slow_but_bounded_session_records_with_its_capture_time() -> None:
    rig = Rig()
    out, _, sink = _run(rig, 70)
    assert out.status == EN.CHECKED_IN and len(sink.sessions) == 1
