"""Camera interface and backends that run anywhere: synthetic, files, open_camera."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.config import CameraTable
from kiosk.errors import CameraError
from kiosk.hardware.camera import EndOfStream, Frame, open_camera
from kiosk.hardware.camera.files import FilesCamera
from kiosk.hardware.camera.synthetic import NOBODY, Scene, SyntheticCamera, demo_portraits, render


def test_frame_validates() -> None:
    f = Frame(np.zeros((4, 6, 3), np.uint8), 1, 0)
    assert f.size == (6, 4)
    with pytest.raises(CameraError):
        Frame(np.zeros((4, 6), np.uint8), 1, 0)
    with pytest.raises(CameraError):
        Frame(np.zeros((4, 6, 3), np.float32), 1, 0)


def test_synthetic_camera_frames_and_controls() -> None:
    p = demo_portraits()
    scenes = [Scene(), NOBODY, Scene(brightness=0.5, blur=2.0, noise=5.0)]
    with SyntheticCamera([p["astronaut"]], scenes, size=(320, 240), loop=False) as cam:
        frames = [cam.read() for _ in scenes]
        with pytest.raises(EndOfStream):
            cam.read()
        assert [f.index for f in frames] == [0, 1, 2]
        assert all(f.image.shape == (240, 320, 3) and f.image.dtype == np.uint8 for f in frames)
        assert frames[0].t_ns <= frames[1].t_ns <= frames[2].t_ns
        assert frames[2].image.mean() < frames[0].image.mean()
        assert cam.controls()["exposure_locked"] is False
        cam.lock_exposure(True)
        cam.lock_white_balance(True)
        assert cam.controls()["exposure_locked"] and cam.controls()["white_balance_locked"]
    with pytest.raises(CameraError):
        cam.read()  # closed


def test_synthetic_default_is_a_demo_portrait_and_loops() -> None:
    cam = SyntheticCamera(size=(320, 240))
    frames = [cam.read() for _ in range(40)]  # more than the 30 demo scenes: it loops
    assert frames[-1].index == 39
    assert not np.array_equal(frames[0].image, frames[5].image)  # it moves


def test_render_is_deterministic_and_clips() -> None:
    p = [demo_portraits()["grace_hopper"]]
    a = render(p, Scene(shift=(0.9, 0.9), scale=3.0, noise=2.0), rng=np.random.default_rng(1))
    b = render(p, Scene(shift=(0.9, 0.9), scale=3.0, noise=2.0), rng=np.random.default_rng(1))
    assert np.array_equal(a, b) and a.shape == (480, 640, 3)
    with pytest.raises(CameraError):
        SyntheticCamera(p, [Scene(faces=(1,))])


def test_files_camera_folder_and_video(tmp_path: Path) -> None:
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for k in range(3):
        bgr = np.full((60, 80, 3), (k * 50, 10, 200), np.uint8)  # BGR on disk
        cv2.imwrite(str(imgs / f"{k:02d}.png"), bgr)
    (imgs / "notes.txt").write_text("not an image")
    cam = FilesCamera(imgs, loop=True, size=(40, 30))
    frames = [cam.read() for _ in range(4)]
    assert frames[0].image.shape == (30, 40, 3)
    assert tuple(frames[0].image[0, 0]) == (200, 10, 0)  # delivered as RGB
    assert np.array_equal(frames[3].image, frames[0].image)  # looped
    once = FilesCamera(imgs, loop=False)
    for _ in range(3):
        once.read()
    with pytest.raises(EndOfStream):
        once.read()

    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for k in range(4):
        writer.write(np.full((48, 64, 3), k * 60, np.uint8))
    writer.release()
    with FilesCamera(video, loop=False) as vc:
        got = [vc.read() for _ in range(4)]
        with pytest.raises(EndOfStream):
            vc.read()
    assert got[3].image.mean() > got[0].image.mean()
    assert vc.controls()["exposure_locked"] is True


def test_files_camera_errors(tmp_path: Path) -> None:
    with pytest.raises(CameraError):
        FilesCamera(tmp_path / "absent")
    with pytest.raises(CameraError):
        FilesCamera(tmp_path)  # empty folder
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(CameraError, match="not a readable image"):
        FilesCamera(tmp_path).read()


def test_open_camera(tmp_path: Path) -> None:
    cam = open_camera(CameraTable(backend="synthetic", width=320, height=240, realtime=False))
    assert cam.read().image.shape == (240, 320, 3)
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((50, 50, 3), np.uint8))
    cam = open_camera(CameraTable(backend="files", source=tmp_path, width=160, height=120))
    assert cam.read().size == (160, 120)
    cam = open_camera(CameraTable(backend="synthetic", source=tmp_path / "x.png", width=160, height=120,
                                  realtime=False))
    assert cam.read().size == (160, 120)
    with pytest.raises(CameraError, match="camera.source"):
        open_camera(CameraTable(backend="files"))


def test_opencv_missing_device_is_a_camera_error() -> None:
    with pytest.raises(CameraError):
        open_camera(CameraTable(backend="opencv", device="/dev/video-does-not-exist"))


def test_picamera2_absent_is_not_an_error() -> None:
    from kiosk.hardware.camera import picamera2_backend

    try:
        import picamera2  # noqa: F401
    except ImportError:
        assert picamera2_backend.available() is False
        with pytest.raises(CameraError):
            picamera2_backend.Picamera2Camera()


class _FakeCapture:
    """cv2.VideoCapture for a V4L2 webcam that honours manual exposure (exposure_time_absolute)."""

    def __init__(self, *a: object) -> None:
        self.props: dict[int, float] = {cv2.CAP_PROP_EXPOSURE: 300.0, cv2.CAP_PROP_AUTO_EXPOSURE: 3.0}

    def isOpened(self) -> bool:  # noqa: N802 - cv2's name
        return True

    def set(self, prop: int, value: float) -> bool:
        self.props[prop] = float(value)
        return True

    def get(self, prop: int) -> float:
        return self.props.get(prop, 0.0)

    def release(self) -> None:
        pass


def test_opencv_exposure_locks_with_headroom(monkeypatch: pytest.MonkeyPatch) -> None:
    from kiosk.hardware.camera import opencv_backend

    monkeypatch.setattr(opencv_backend.cv2, "VideoCapture", _FakeCapture)
    cam = opencv_backend.OpenCVCamera("0")
    cap = cam._cap
    assert isinstance(cap, _FakeCapture)
    cam.lock_exposure(True, 1.5)
    assert cap.props[cv2.CAP_PROP_AUTO_EXPOSURE] == 1.0  # manual
    assert cap.props[cv2.CAP_PROP_EXPOSURE] == 200.0     # 300 (100 us units) / 1.5
    assert cam.controls()["exposure_locked"] is True
    cam.lock_exposure(False)
    assert cap.props[cv2.CAP_PROP_AUTO_EXPOSURE] == 3.0
    with pytest.raises(CameraError, match="headroom"):
        cam.lock_exposure(True, 0.9)
    cam.close()
