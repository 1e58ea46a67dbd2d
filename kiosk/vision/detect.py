"""Face detection: dlib's HOG frontal detector on a resized grey copy of the frame.

dlib's HOG window is 80×80 pixels, so it finds faces of about 80 px and up. We resize the
grey frame so that the smallest face we care about (`min_face_px`) becomes ~80 px: a
640×480 kiosk frame with `min_face_px=100` is searched at 0.8 scale (cheaper), while a
150×150 LFW copy, whose face is ~70 px, is searched at 2× (upsampled, slower but found).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from kiosk.errors import FormatError

HOG_WINDOW_PX = 80


@dataclass(frozen=True)
class Box:
    """A face box in frame pixels (right/bottom exclusive) with the detector's score."""

    left: int
    top: int
    right: int
    bottom: int
    score: float = 0.0

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def centre(self) -> tuple[float, float]:
        return (self.left + self.right) / 2, (self.top + self.bottom) / 2

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    def to_dlib(self) -> Any:
        """As a dlib.rectangle (for the shape predictor)."""
        import dlib

        return dlib.rectangle(int(self.left), int(self.top), int(self.right), int(self.bottom))

    def clipped(self, width: int, height: int) -> Box:
        """This box clipped to a width×height image."""
        return Box(max(0, self.left), max(0, self.top), min(width, self.right), min(height, self.bottom), self.score)


@functools.lru_cache(maxsize=1)
def _hog_detector() -> Any:
    import dlib

    return dlib.get_frontal_face_detector()


def to_grey(image: np.ndarray) -> np.ndarray:
    """A contiguous grey uint8 copy of an RGB (or already grey) uint8 image."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise FormatError("image must be a uint8 numpy array")
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    raise FormatError(f"image must be H×W×3 RGB or H×W grey, got shape {image.shape}")


def detect_faces(image: np.ndarray, min_face_px: float = 80, max_side: int = 1600,
                 offset: tuple[int, int] = (0, 0)) -> list[Box]:
    """Faces in `image` at least about `min_face_px` wide, largest first.

    `max_side` caps the resized frame's longer side, so a huge photo cannot make one call
    take seconds (it then finds only larger faces). `offset` is added to the boxes (used
    when `image` is a crop of a larger frame).
    """
    grey = to_grey(image)
    h, w = grey.shape
    scale = HOG_WINDOW_PX / float(min_face_px)
    scale = min(scale, max_side / max(h, w))
    if abs(scale - 1.0) > 0.02:
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        grey = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=interp)
    else:
        scale = 1.0
    if min(grey.shape) < HOG_WINDOW_PX:
        return []
    rects, scores, _ = _hog_detector().run(grey, 0, 0.0)
    ox, oy = offset
    boxes = []
    for r, s in zip(rects, scores, strict=False):
        b = Box(math.floor(r.left() / scale) + ox, math.floor(r.top() / scale) + oy,
                math.ceil((r.right() + 1) / scale) + ox, math.ceil((r.bottom() + 1) / scale) + oy, float(s))
        boxes.append(b.clipped(w + ox, h + oy))
    boxes.sort(key=lambda b: b.area, reverse=True)
    return boxes


def detect_faces_in_photo(image: np.ndarray) -> list[Box]:
    """Faces in a photo of unknown size (enrolment, evaluation): search down to 1/8 of its side.

    A portrait's face fills a quarter to a half of the picture; 1/8 leaves room for loose
    crops while keeping large photos cheap. Never below 40 px (LFW's 150×150 copies: ~70 px).
    """
    h, w = image.shape[:2]
    return detect_faces(image, min_face_px=max(40.0, min(h, w) / 8.0))
