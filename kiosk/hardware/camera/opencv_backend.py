"""A USB webcam through OpenCV's V4L2 backend.

Exposure and white-balance locking use the V4L2 controls OpenCV exposes. Cameras differ in
what they honour; `controls()` reads back what the driver reports, and `kiosk doctor` can
show it. cv2 errors become CameraError here.
"""
from __future__ import annotations

import time
from typing import Any

import cv2

from kiosk.errors import CameraError
from kiosk.hardware.camera.base import Camera, Frame

# V4L2 through OpenCV: CAP_PROP_AUTO_EXPOSURE takes the V4L2 menu values,
# 1 = manual, 3 = aperture-priority auto (uvcvideo)
_V4L2_MANUAL_EXPOSURE = 1
_V4L2_AUTO_EXPOSURE = 3


class OpenCVCamera(Camera):
    """A V4L2 device (`device` = index such as "0", or a path such as /dev/video2)."""

    name = "opencv"

    def __init__(self, device: str = "0", width: int = 640, height: int = 480, fps: float = 15.0) -> None:
        target: int | str = int(device) if device.isdigit() else device
        try:
            self._cap: cv2.VideoCapture | None = cv2.VideoCapture(target, cv2.CAP_V4L2)
            if not self._cap.isOpened():
                raise CameraError(f"camera {device}: cannot open (is it plugged in, and is the user in group 'video'?)")
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            self._cap.set(cv2.CAP_PROP_FPS, fps)
            # a one-frame buffer: the engine wants the newest frame, not a queue of old ones
            self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        except cv2.error as e:
            raise CameraError(f"camera {device}: {e}") from None
        self._device = device
        self._index = 0
        self._exposure_locked = False
        self._wb_locked = False

    def read(self) -> Frame:
        """Grab and decode the newest frame as RGB."""
        if self._cap is None:
            raise CameraError(f"camera {self._device}: closed")
        try:
            ok, bgr = self._cap.read()
            t_ns = time.monotonic_ns()
            if not ok or bgr is None:
                raise CameraError(f"camera {self._device}: no frame (unplugged?)")
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        except cv2.error as e:
            raise CameraError(f"camera {self._device}: {e}") from None
        frame = Frame(rgb, t_ns, self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        """Release the device."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def _set(self, prop: int, value: float) -> bool:
        try:
            return bool(self._cap is not None and self._cap.set(prop, value))
        except cv2.error as e:
            raise CameraError(f"camera {self._device}: {e}") from None

    def lock_exposure(self, locked: bool, headroom: float = 1.0) -> None:
        """Switch to manual exposure at the current value divided by `headroom` (or back to
        auto). V4L2's exposure_time_absolute is linear (units of 100 µs), so the division is
        the headroom in light; a driver that reports no usable value keeps its own."""
        if locked:
            if not headroom >= 1.0:
                raise CameraError(f"camera {self._device}: exposure headroom must be >= 1, got {headroom}")
            current = self._cap.get(cv2.CAP_PROP_EXPOSURE) if self._cap is not None else 0
            ok = self._set(cv2.CAP_PROP_AUTO_EXPOSURE, _V4L2_MANUAL_EXPOSURE)
            if ok and current > 0:
                self._set(cv2.CAP_PROP_EXPOSURE, max(1.0, round(current / headroom)))
        else:
            ok = self._set(cv2.CAP_PROP_AUTO_EXPOSURE, _V4L2_AUTO_EXPOSURE)
        if not ok:
            raise CameraError(f"camera {self._device}: the driver refused the exposure mode")
        self._exposure_locked = locked

    def lock_white_balance(self, locked: bool) -> None:
        """Switch automatic white balance off at the current temperature (or back on)."""
        if locked:
            current = self._cap.get(cv2.CAP_PROP_WB_TEMPERATURE) if self._cap is not None else 0
            ok = self._set(cv2.CAP_PROP_AUTO_WB, 0)
            if ok and current > 0:
                self._set(cv2.CAP_PROP_WB_TEMPERATURE, current)
        else:
            ok = self._set(cv2.CAP_PROP_AUTO_WB, 1)
        if not ok:
            raise CameraError(f"camera {self._device}: the driver refused the white-balance mode")
        self._wb_locked = locked

    def controls(self) -> dict[str, Any]:
        """Lock state and what the driver reports."""
        get = self._cap.get if self._cap is not None else (lambda _p: float("nan"))
        return {"backend": self.name, "device": self._device,
                "exposure_locked": self._exposure_locked, "white_balance_locked": self._wb_locked,
                "width": get(cv2.CAP_PROP_FRAME_WIDTH), "height": get(cv2.CAP_PROP_FRAME_HEIGHT),
                "exposure": get(cv2.CAP_PROP_EXPOSURE), "wb_temperature": get(cv2.CAP_PROP_WB_TEMPERATURE)}
