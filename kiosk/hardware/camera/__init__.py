"""Cameras: one interface (`Camera`, `Frame`), several backends, and `open_camera(cfg)`.

Backends: picamera2 on a Pi, OpenCV/V4L2 for a USB webcam, image folders or video files,
and frames synthesised from still portraits. "auto" takes picamera2 when it is importable
and sees a camera, else the V4L2 device.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from kiosk.errors import CameraError
from kiosk.hardware.camera.base import Camera, EndOfStream, Frame

if TYPE_CHECKING:
    from kiosk.config import CameraTable

__all__ = ["Camera", "CameraError", "EndOfStream", "Frame", "open_camera"]


def open_camera(cfg: CameraTable) -> Camera:
    """Open the camera the config names; raise CameraError with a reason an operator can act on."""
    backend = cfg.backend
    size = (cfg.width, cfg.height)
    if backend == "auto":
        from kiosk.hardware.camera import picamera2_backend

        backend = "picamera2" if picamera2_backend.available() else "opencv"
    if backend == "picamera2":
        from kiosk.hardware.camera.picamera2_backend import Picamera2Camera

        return Picamera2Camera(cfg.width, cfg.height, cfg.fps)
    if backend == "opencv":
        from kiosk.hardware.camera.opencv_backend import OpenCVCamera

        return OpenCVCamera(cfg.device, cfg.width, cfg.height, cfg.fps)
    if backend == "files":
        from kiosk.hardware.camera.files import FilesCamera

        if cfg.source is None:
            raise CameraError("camera.backend 'files' needs camera.source (an image folder or a video)")
        return FilesCamera(cfg.source, loop=cfg.loop, size=size)
    if backend == "synthetic":
        from kiosk.hardware.camera.files import read_image_rgb
        from kiosk.hardware.camera.synthetic import SyntheticCamera

        # with a source image the synthetic camera animates that still; without, a demo portrait
        portraits = [read_image_rgb(cfg.source)] if cfg.source is not None else None
        return SyntheticCamera(portraits, size=size, loop=cfg.loop, fps=cfg.fps if cfg.realtime else 0.0)
    raise CameraError(f"unknown camera backend {backend!r}")
