"""A stop request (SIGTERM) inside a session, the watchdog heartbeat, and the face budget's pruning."""
from __future__ import annotations

import itertools
import threading

import pytest

from kiosk.checkin import engine as EN
from kiosk.checkin import events as E
from kiosk.checkin.events import UiInput
from kiosk.checkin.headless import ScriptedPatient
from kiosk.checkin.session_limits import FaceBudget, Lifeline
from kiosk.config import EngineTable

from .fakes import FakeClock, FakeFaces, Rig, good_face, guidance


@pytest.fixture
def rig() -> Rig:
    return Rig(engine_cfg=EngineTable(done_display_s=5))


def _stopped(out: EN.Outcome) -> bool:
    return (out.status, out.reason) == (EN.CANCELLED, EN.STOPPING)


def test_stop_at_consent_even_while_the_patient_keeps_touching(rig: Rig) -> None:
    """Each touch resets the consent deadline; a stop still ends the session at once."""
    w = rig.enroll(1)
    stop = threading.Event()
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(1)]),
                               patient=ScriptedPatient(decision="ignore"))
    touches = [UiInput(E.STROKES, strokes=([[1, 2, 0]],))] * 50
    ui.on(E.CONSENT_SHOW, lambda ev: touches)
    ui.on(E.CONSENT_SHOW, lambda ev: stop.set())
    t0 = rig.clock.monotonic()
    out = eng.run_once(stop=stop)
    assert _stopped(out) and sink.sessions == []
    assert rig.clock.monotonic() - t0 < 5
    assert {"reason": EN.STOPPING} in [e.params for e in ui.events if e.id == E.SEE_FRONT_DESK]
    assert eng.state == "idle"


def test_stop_during_face_capture(rig: Rig) -> None:
    w = rig.enroll(1)
    stop = threading.Event()
    faces = FakeFaces(rig.clock, [], tail=guidance("face.hold_still"))
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=faces)
    orig_read = faces.read

    def read():
        if faces.reads == 3:
            stop.set()
        return orig_read()

    faces.read = read  # type: ignore[method-assign]
    out = eng.run_once(stop=stop)
    assert _stopped(out) and sink.sessions == []
    assert faces.reads == 4, "the face loop checks the stop before every frame"


def test_stop_during_the_retry_pause(rig: Rig) -> None:
    """A failed comparison pauses before the next try; a stop cuts the pause short."""
    rig.engine_cfg = EngineTable(done_display_s=0, retry_pause_s=60)
    w = rig.enroll(1)
    stop = threading.Event()
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(9)], tail=good_face(1)))
    ui.on(E.FACE_RETRY, lambda ev: stop.set())
    t0 = rig.clock.monotonic()
    out = eng.run_once(stop=stop)
    assert _stopped(out) and sink.sessions == []
    assert rig.clock.monotonic() - t0 < 5


def test_stop_during_the_second_tap_writes_nothing(rig: Rig) -> None:
    w = rig.enroll(1)
    stop = threading.Event()
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(1)]),
                               patient=ScriptedPatient(second_tap=True))
    ui.on(E.CONSENT_TAP_TO_SIGN, lambda ev: stop.set())
    out = eng.run_once(stop=stop)
    assert _stopped(out)
    assert sink.sessions == [], "a session writes its whole transaction or nothing"
    assert E.SAVING not in ui.ids()


def test_stop_during_the_done_screen_keeps_the_written_checkin(rig: Rig) -> None:
    w = rig.enroll(1)
    stop = threading.Event()
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(1)]))
    done_at: list[float] = []

    def on_done(ev: E.Event) -> None:
        done_at.append(rig.clock.monotonic())
        stop.set()

    ui.on(E.DONE, on_done)
    out = eng.run_once(stop=stop)
    assert out.status == EN.CHECKED_IN and len(sink.sessions) == 1
    assert rig.clock.monotonic() - done_at[0] < 1, "the done screen no longer holds up the stop"


def test_run_forever_returns_after_a_stop_mid_session(rig: Rig) -> None:
    w = rig.enroll(1)
    stop = threading.Event()
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(1)]),
                               patient=ScriptedPatient(decision="ignore"))
    ui.on(E.CONSENT_SHOW, lambda ev: stop.set())
    outcomes: list = []
    eng.run_forever(stop, outcomes.append)
    assert [o.status for o in outcomes] == [EN.CANCELLED]


def test_heartbeat_comes_at_least_every_poll_in_every_state(rig: Rig) -> None:
    """The watchdog hears from the engine while it waits: idle, face, consent, done screen."""
    w = rig.enroll(1)
    beats: list[float] = []
    faces = FakeFaces(rig.clock, [guidance("face.come_closer")] * 30 + [good_face(1)])
    eng, ui, sink = rig.engine(nfc=[None] * 50 + [rig.nfc(w)], faces=faces,
                               patient=ScriptedPatient(second_tap=True))
    out = eng.run_once(heartbeat=lambda: beats.append(rig.clock.monotonic()))
    assert out.status == EN.CHECKED_IN
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    assert beats and max(gaps) <= 1.0
    assert rig.clock.monotonic() - beats[-1] <= 1.0  # the done screen beats too

    # a patient who never answers the consent screen: 90 s of waiting, beating throughout
    beats.clear()
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=FakeFaces(rig.clock, [good_face(1)]),
                               patient=ScriptedPatient(decision="ignore"))
    out = eng.run_once(heartbeat=lambda: beats.append(rig.clock.monotonic()))
    assert out.reason == "consent-timeout"
    assert max(b - a for a, b in itertools.pairwise(beats)) <= 1.0


def test_lifeline_pause() -> None:
    clock = FakeClock()
    beats: list[float] = []
    life = Lifeline(None, lambda: beats.append(clock.t))
    t0 = clock.t
    assert life.pause(clock, 2.0, 0.5) is True
    assert clock.t - t0 == pytest.approx(2.0) and len(beats) >= 4
    stop = threading.Event()
    stop.set()
    t0 = clock.t
    assert Lifeline(stop).pause(clock, 10.0, 0.5) is False and clock.t == t0


def test_face_budget_prunes_every_expired_pass() -> None:
    budget = FaceBudget(window_s=100)
    for i in range(50):
        budget.failed(bytes([i]) * 16, now=float(i))
    assert len(budget) == 50
    # one look-up for any pass, after the window: all of them are gone
    assert budget.failures(b"\xff" * 16, now=200.0) == 0
    assert len(budget) == 0
    # inside the window nothing changes
    budget.failed(b"a" * 16, now=300.0)
    budget.failed(b"a" * 16, now=350.0)
    assert budget.failures(b"a" * 16, now=380.0) == 2
    assert budget.failures(b"a" * 16, now=420.0) == 1  # the first one expired
    assert budget.failures(b"b" * 16, now=420.0) == 0 and len(budget) == 1


def test_engine_face_budget_does_not_grow_with_passes_seen(rig: Rig) -> None:
    """Passes that failed long ago leave the table when any later pass is checked."""
    rig.engine_cfg = EngineTable(done_display_s=0, face_lockout_s=60)
    wallets = [rig.enroll(i) for i in (1, 2, 3)]
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w) for w in wallets],
                               faces=FakeFaces(rig.clock, [good_face(9)] * 3 + [good_face(9)] * 3 + [good_face(3)]))
    assert eng.run_once().status == EN.FACE_MISMATCH
    assert eng.run_once().status == EN.FACE_MISMATCH
    assert len(eng._face_budget) == 2
    rig.clock.sleep(61)
    assert eng.run_once().status == EN.CHECKED_IN
    assert len(eng._face_budget) == 0
