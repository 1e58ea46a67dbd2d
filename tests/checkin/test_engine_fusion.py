"""The engine decides per attempt over several good frames of one tracked face."""

from __future__ import annotations

import pytest

from kiosk.checkin import engine as EN
from kiosk.checkin import events as E
from kiosk.checkin.ports import FaceReading

from .fakes import FakeFaces, FakeMatcher, Rig, good_face, guidance


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_one_decision_fuses_the_configured_number_of_frames(rig: Rig) -> None:
    w = rig.enroll(1)
    matcher = FakeMatcher(rig.sealing_key, frames=3)
    faces = FakeFaces(rig.clock, [guidance("face.come_closer"), good_face(1), good_face(1), good_face(1)])
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=faces, matcher=matcher)
    assert eng.run_once().status == EN.CHECKED_IN
    assert matcher.decisions == [3] and faces.reads == 4


def test_an_impostor_gets_the_attempt_budget_in_decisions_not_frames(rig: Rig) -> None:
    w = rig.enroll(1)
    matcher = FakeMatcher(rig.sealing_key, frames=3)
    faces = FakeFaces(rig.clock, [], tail=good_face(9))
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=faces, matcher=matcher)
    assert eng.run_once().status == EN.FACE_MISMATCH
    n = rig.engine_cfg.max_face_attempts
    assert matcher.decisions == [3] * n and faces.reads == 3 * n
    assert [e.params for e in ui.events if e.id == E.FACE_RETRY] == [
        {"attempt": i, "max": n} for i in range(1, n)
    ]


def test_frames_before_a_lost_track_or_a_crowd_are_dropped(rig: Rig) -> None:
    """A stranger's frames must not mix with the patient's: a gap or a second face starts over."""
    w = rig.enroll(1)
    matcher = FakeMatcher(rig.sealing_key, frames=2)
    script = [
        good_face(9),
        FaceReading(False, "face.none"),  # someone leaves
        good_face(9),
        guidance("face.too_many"),  # two people in view
        good_face(1),
        good_face(1),
    ]  # the patient alone
    faces = FakeFaces(rig.clock, script)
    eng, ui, sink = rig.engine(nfc=[rig.nfc(w)], faces=faces, matcher=matcher)
    assert eng.run_once().status == EN.CHECKED_IN
    assert matcher.decisions == [2]
