"""The demo's simulated camera: a liveness session's evidence does not depend on when it ran."""
from __future__ import annotations

import random

import pytest

pytestmark = pytest.mark.timeout(300)  # hang guard: two rendered challenges


def _session(frames_before: int) -> dict:  # type: ignore[type-arg]
    from kiosk.app.demo import DEMO_CHALLENGE_SEED, DemoCamera, _ScreenTap
    from kiosk.checkin import events as E
    from kiosk.checkin.headless import HeadlessDriver
    from kiosk.config import VisionTable
    from kiosk.hardware.camera.synthetic import demo_portraits
    from kiosk.vision.adapters import FaceAdapter
    from kiosk.vision.liveness.check import LivenessSettings, ScreenLightLiveness
    from kiosk.vision.pipeline import FacePipeline

    cam = DemoCamera(demo_portraits())
    cam.show_person("grace_hopper")
    for _ in range(frames_before):  # the face step read some frames first (how many varies)
        cam.read()
    ui = _ScreenTap(HeadlessDriver(clock=cam.clock), cam)
    ui.on(E.LIVENESS_TURN, lambda ev: cam.prompt(str(ev.params["direction"])))
    check = ScreenLightLiveness(cam, LivenessSettings(max_templates=0), rng=random.Random(DEMO_CHALLENGE_SEED),
                                clock=cam.clock)
    res = check.run(FaceAdapter(cam, FacePipeline(VisionTable())), ui, cam.clock)
    return {"status": res.status, **res.detail}


def test_demo_liveness_evidence_is_the_same_whatever_was_read_before() -> None:
    """The sway and blink phases, the sensor's state and its noise restart with each session,
    so a demo run reproduces its liveness evidence number for number (and passes)."""
    a, b = _session(0), _session(11)
    assert a == b
    assert a["status"] == "live", a
