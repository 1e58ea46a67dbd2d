"""Frames from files: a folder of images (sorted by name) or one video file.

For replaying recorded sessions on a development machine and for `kiosk demo --faces DIR`.
Images are decoded with OpenCV; its failures become CameraError here.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kiosk.errors import CameraError
from kiosk.hardware.camera.base import Camera, EndOfStream, Frame

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


def read_image_rgb(path: Path) -> np.ndarray:
    """Decode an image file as RGB uint8, or raise CameraError naming the file."""
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
    if img is None:
        raise CameraError(f"{path}: not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class FilesCamera(Camera):
    """Plays an image folder or a video file; `loop` restarts at the end, else EndOfStream.

    `size` = (width, height) resizes every frame, so recordings of any size feed a
    pipeline tuned for 640×480.
    """

    name = "files"

    def __init__(self, source: Path, loop: bool = True, size: tuple[int, int] | None = None) -> None:
        self._source = Path(source)
        self._loop = loop
        self._size = size
        self._index = 0
        self._pos = 0
        self._video: Any = None
        self._images: list[Path] = []
        if self._source.is_dir():
            self._images = sorted(p for p in self._source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._images:
                raise CameraError(f"{self._source}: no images in this folder")
        elif self._source.is_file():
            self._video = cv2.VideoCapture(str(self._source))
            if not self._video.isOpened():
                raise CameraError(f"{self._source}: cannot open as a video")
        else:
            raise CameraError(f"{self._source}: no such folder or file")

    def _next_image(self) -> np.ndarray:
        if self._images:
            if self._pos >= len(self._images):
                if not self._loop:
                    raise EndOfStream(f"{self._source}: end of images")
                self._pos = 0
            img = read_image_rgb(self._images[self._pos])
            self._pos += 1
            return img
        if self._video is None:
            raise CameraError(f"{self._source}: closed")
        try:
            ok, bgr = self._video.read()
            if not ok and self._loop and self._pos > 0:
                self._video.set(cv2.CAP_PROP_POS_FRAMES, 0)
                self._pos = 0
                ok, bgr = self._video.read()
        except cv2.error as e:
            raise CameraError(f"{self._source}: video decoding failed ({e})") from None
        if not ok:
            raise EndOfStream(f"{self._source}: end of video")
        self._pos += 1
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def read(self) -> Frame:
        """The next image or video frame, as RGB."""
        img = self._next_image()
        if self._size is not None and (img.shape[1], img.shape[0]) != tuple(self._size):
            img = cv2.resize(img, tuple(self._size), interpolation=cv2.INTER_AREA)
        frame = Frame(np.ascontiguousarray(img), time.monotonic_ns(), self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        """Release the video decoder."""
        if self._video is not None:
            self._video.release()
            self._video = None

    def lock_exposure(self, locked: bool, headroom: float = 1.0) -> None:
        """Recorded frames have fixed exposure already; accepted so liveness code can run."""

    def lock_white_balance(self, locked: bool) -> None:
        """Recorded frames have fixed white balance already."""

    def controls(self) -> dict[str, Any]:
        """Files are always 'locked': nothing re-exposes a recording."""
        return {"backend": self.name, "exposure_locked": True, "white_balance_locked": True,
                "source_kind": "folder" if self._images else "video"}
