"""The picamera2 backend on a fake picamera2 module: frames, failures, and a stalled camera."""
from __future__ import annotations

import sys
import threading
import time
import types

import numpy as np
import pytest

from kiosk.errors import CameraError


class FakeRequest:
    def __init__(self, cam: FakePicamera2) -> None:
        self.cam = cam
        self.released = False

    def make_array(self, name: str) -> np.ndarray:
        a = np.zeros((4, 6, 3), np.uint8)
        a[..., 0] = 255  # blue in libcamera's RGB888 (B, G, R in memory)
        return a

    def get_metadata(self) -> dict:
        return {"ExposureTime": 10000, "AnalogueGain": 2.0}

    def release(self) -> None:
        self.released = True


class FakePicamera2:
    """Delivers a request at once, or blocks while `stall` is set (a hung libcamera)."""

    instances: list[FakePicamera2] = []

    def __init__(self, index: int = 0) -> None:
        self.stall = threading.Event()
        self.unstall = threading.Event()
        self.fail: Exception | None = None
        self.requests: list[FakeRequest] = []
        self.closed = False
        self.controls: list[dict] = []
        FakePicamera2.instances.append(self)

    @staticmethod
    def global_camera_info() -> list:
        return [{"Model": "fake"}]

    def create_video_configuration(self, **kw) -> dict:
        return kw

    def configure(self, config: dict) -> None:
        pass

    def start(self) -> None:
        pass

    def capture_request(self) -> FakeRequest:  # the old signature: no wait= at all
        if self.fail is not None:
            raise self.fail
        if self.stall.is_set():
            self.unstall.wait(30)
        r = FakeRequest(self)
        self.requests.append(r)
        return r

    def set_controls(self, controls: dict) -> None:
        self.controls.append(dict(controls))

    def stop(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def camera(monkeypatch: pytest.MonkeyPatch):
    mod = types.ModuleType("picamera2")
    mod.Picamera2 = FakePicamera2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", mod)
    from kiosk.hardware.camera.picamera2_backend import Picamera2Camera

    FakePicamera2.instances.clear()
    cam = Picamera2Camera(6, 4, capture_timeout_s=0.3)
    yield cam, FakePicamera2.instances[-1]
    FakePicamera2.instances[-1].unstall.set()
    cam.close()


def test_frames_come_as_rgb_and_requests_go_back(camera) -> None:
    cam, fake = camera
    f = cam.read()
    assert f.image.shape == (4, 6, 3) and tuple(f.image[0, 0]) == (0, 0, 255)
    assert fake.requests[-1].released
    assert cam.controls()["exposure_time_us"] == 10000


def test_capture_failure_is_a_camera_error(camera) -> None:
    cam, fake = camera
    fake.fail = RuntimeError("libcamera: dequeue failed")
    with pytest.raises(CameraError, match="capture failed"):
        cam.read()


def test_a_stalled_camera_is_a_camera_error_within_the_timeout(camera) -> None:
    cam, fake = camera
    fake.stall.set()
    t0 = time.monotonic()
    with pytest.raises(CameraError, match="stalled"):
        cam.read()
    assert time.monotonic() - t0 < 2
    # while the capture still hangs, reads fail at once instead of piling up threads
    t0 = time.monotonic()
    with pytest.raises(CameraError, match="still stalled"):
        cam.read()
    assert time.monotonic() - t0 < 0.1
    # the camera comes back: the late request is given back, and frames flow again
    fake.stall.clear()
    fake.unstall.set()
    deadline = time.monotonic() + 5
    while not (fake.requests and fake.requests[0].released) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.requests[0].released, "the late buffer went back to libcamera"
    assert cam.read().image.shape == (4, 6, 3)


def test_read_after_close_is_a_camera_error(camera) -> None:
    cam, fake = camera
    cam.close()
    assert fake.closed
    with pytest.raises(CameraError):
        cam.read()


def test_available_with_the_fake(camera) -> None:
    from kiosk.hardware.camera import picamera2_backend

    assert picamera2_backend.available() is True


def test_exposure_locks_with_headroom_below_the_auto_exposure(camera) -> None:
    cam, fake = camera
    cam.read()  # metadata: ExposureTime 10000 us, AnalogueGain 2.0
    cam.lock_exposure(True, 1.5)
    # the exposure time shortened by the headroom, the gain kept (a lower gain adds no range)
    assert fake.controls[-1] == {"AeEnable": False, "ExposureTime": 6667, "AnalogueGain": 2.0}
    assert cam.controls()["exposure_locked"] is True
    cam.lock_exposure(False)
    assert fake.controls[-1] == {"AeEnable": True}
    cam.lock_exposure(True)  # no headroom: the auto values as they are
    assert fake.controls[-1]["ExposureTime"] == 10000
    with pytest.raises(CameraError, match="headroom"):
        cam.lock_exposure(True, 0.5)
