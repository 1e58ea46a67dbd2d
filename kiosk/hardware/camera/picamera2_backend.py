"""The Raspberry Pi camera through picamera2 (which comes from the OS, not from pip).

Imported only when picamera2 is importable; nothing else in the kiosk needs it. Every
picamera2/libcamera exception becomes CameraError at this boundary (they raise a mix of
RuntimeError, OSError and their own types, so the catch here is deliberately broad).

A stalled camera (sensor cable, libcamera pipeline hang) makes `capture_request()` wait
forever. Only recent picamera2 takes a number for `wait=`; older ones (as shipped with some
Raspberry Pi OS images) treat any true value as "wait" and block, so each capture runs in a
daemon thread (a hung one cannot hold up the process's exit) and `read()` waits at most
`capture_timeout_s` for it: a timeout is a CameraError.
"""
from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy as np

from kiosk.errors import CameraError
from kiosk.hardware.camera.base import Camera, Frame


def available() -> bool:
    """True when picamera2 imports and libcamera sees at least one camera."""
    try:
        from picamera2 import Picamera2  # noqa: F401

        return bool(Picamera2.global_camera_info())
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


CAPTURE_TIMEOUT_S = 3.0  # a frame is due every 1/fps s; seconds without one is a stalled camera


def _capture_async(cam: Any) -> Future:
    """`cam.capture_request()` in a daemon thread; the Future holds the request or the error."""
    fut: Future = Future()

    def run() -> None:
        fut.set_running_or_notify_cancel()
        try:
            fut.set_result(cam.capture_request())
        except BaseException as e:  # noqa: BLE001 - handed to the reader as is
            fut.set_exception(e)

    threading.Thread(target=run, name="picamera2-capture", daemon=True).start()
    return fut


def _release_late(fut: Future) -> None:
    """A capture that timed out and came back later: give its buffer back to libcamera."""
    if not fut.cancelled() and fut.exception() is None:
        with contextlib.suppress(Exception):  # the camera may be closed by now
            fut.result().release()


class Picamera2Camera(Camera):
    """A libcamera camera (Camera Module 2/3, HQ) delivering RGB frames of `width`×`height`."""

    name = "picamera2"

    def __init__(self, width: int = 640, height: int = 480, fps: float = 15.0, index: int = 0,
                 capture_timeout_s: float = CAPTURE_TIMEOUT_S) -> None:
        self.capture_timeout_s = capture_timeout_s
        self._stalled: Future | None = None  # a capture that timed out and still blocks the worker
        try:
            from picamera2 import Picamera2

            self._cam = Picamera2(index)
            # libcamera's "RGB888" is B,G,R in memory; we flip to RGB in read()
            config = self._cam.create_video_configuration(
                main={"size": (width, height), "format": "RGB888"},
                controls={"FrameDurationLimits": (int(1e6 / fps), int(1e6 / fps))},
                buffer_count=4,
            )
            self._cam.configure(config)
            self._cam.start()
        except Exception as e:  # noqa: BLE001 - the hardware boundary (STYLE 5)
            raise CameraError(f"picamera2: cannot start the camera ({e})") from None
        self._index = 0
        self._exposure_locked = False
        self._wb_locked = False
        self._last_metadata: dict[str, Any] = {}

    def read(self) -> Frame:
        """The next frame as RGB, stamped with the monotonic time it was delivered.

        CameraError when no frame comes within `capture_timeout_s`; while that capture still
        hangs, every read fails at once (the engine rests the camera and alerts staff).
        """
        if self._cam is None:
            raise CameraError("picamera2: the camera is closed")
        if self._stalled is not None:
            if not self._stalled.done():
                raise CameraError("picamera2: the camera is still stalled")
            self._stalled = None  # it came back (its buffer was released): capture afresh
        fut = _capture_async(self._cam)
        try:
            request = fut.result(timeout=self.capture_timeout_s)
        except FutureTimeout:
            self._stalled = fut
            fut.add_done_callback(_release_late)
            raise CameraError(f"picamera2: no frame within {self.capture_timeout_s:g} s (camera stalled)") from None
        except Exception as e:  # noqa: BLE001
            raise CameraError(f"picamera2: capture failed ({e})") from None
        try:
            try:
                bgr = request.make_array("main")
                self._last_metadata = dict(request.get_metadata())
            finally:
                request.release()
        except Exception as e:  # noqa: BLE001
            raise CameraError(f"picamera2: capture failed ({e})") from None
        t_ns = time.monotonic_ns()
        rgb = np.ascontiguousarray(bgr[..., 2::-1])
        frame = Frame(rgb, t_ns, self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        """Stop and release the camera (a stalled capture's daemon thread is left behind)."""
        cam, self._cam = getattr(self, "_cam", None), None
        if cam is not None:
            try:
                cam.stop()
                cam.close()
            except Exception:  # noqa: BLE001 - closing must not raise
                pass

    def _set_controls(self, controls: dict[str, Any]) -> None:
        try:
            self._cam.set_controls(controls)
        except Exception as e:  # noqa: BLE001
            raise CameraError(f"picamera2: controls refused ({e})") from None

    def lock_exposure(self, locked: bool, headroom: float = 1.0) -> None:
        """Freeze exposure time and analogue gain at the last frame's values (AeEnable off),
        the exposure time divided by `headroom` (a shorter exposure adds no noise, as a lower
        gain on a sensor at its base gain could not)."""
        if locked:
            if not headroom >= 1.0:
                raise CameraError(f"picamera2: exposure headroom must be >= 1, got {headroom}")
            md = self._last_metadata
            controls: dict[str, Any] = {"AeEnable": False}
            if "ExposureTime" in md:
                controls["ExposureTime"] = max(1, int(round(float(md["ExposureTime"]) / headroom)))
            if "AnalogueGain" in md:
                controls["AnalogueGain"] = md["AnalogueGain"]
            self._set_controls(controls)
        else:
            self._set_controls({"AeEnable": True})
        self._exposure_locked = locked

    def lock_white_balance(self, locked: bool) -> None:
        """Freeze the colour gains at the last frame's values (AwbEnable off)."""
        if locked:
            controls: dict[str, Any] = {"AwbEnable": False}
            if "ColourGains" in self._last_metadata:
                controls["ColourGains"] = tuple(self._last_metadata["ColourGains"])
            self._set_controls(controls)
        else:
            self._set_controls({"AwbEnable": True})
        self._wb_locked = locked

    def controls(self) -> dict[str, Any]:
        """Lock state and the last frame's exposure, gain and colour gains."""
        md = self._last_metadata
        return {"backend": self.name, "exposure_locked": self._exposure_locked,
                "white_balance_locked": self._wb_locked,
                "exposure_time_us": md.get("ExposureTime"), "analogue_gain": md.get("AnalogueGain"),
                "colour_gains": md.get("ColourGains")}
