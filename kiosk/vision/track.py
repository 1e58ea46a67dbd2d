"""Keep the face boxes between full detections by re-detecting inside a small region.

A full-frame HOG pass every frame is the dominant cost on a Pi. Between full passes (every
`detect_every` frames, or whenever a face is lost) each known face is looked for again only
in its neighbourhood, resized so the face is ~HOG size: a few thousand pixels instead of a
whole frame. Unlike a correlation tracker this cannot drift: every box is a real detection,
which the landmarks and the template need.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kiosk.vision.detect import HOG_WINDOW_PX, Box, detect_faces, to_grey


@dataclass(frozen=True)
class TrackResult:
    """The faces in this frame (largest first) and whether a full detection produced them."""

    boxes: tuple[Box, ...]
    full_detection: bool


class FaceTracker:
    """Face boxes per frame at a fraction of the cost of detecting in every frame."""

    def __init__(self, detect_every: int = 5, detect_min_face_px: int = 100, roi_margin: float = 0.5) -> None:
        self.detect_every = max(1, int(detect_every))
        self.detect_min_face_px = detect_min_face_px
        self.roi_margin = roi_margin
        self._boxes: tuple[Box, ...] = ()
        self._since_full = 0

    def reset(self) -> None:
        """Forget the tracked faces (a new person, a new session)."""
        self._boxes = ()
        self._since_full = 0

    def update(self, image: np.ndarray) -> TrackResult:
        """The faces in `image`, by ROI re-detection when possible, else a full detection."""
        grey = to_grey(image)
        if self._boxes and self._since_full < self.detect_every - 1:
            found = [self._redetect(grey, b) for b in self._boxes]
            # the largest known face must still be there; otherwise look everywhere
            if found[0] is not None:
                self._since_full += 1
                self._boxes = tuple(sorted((b for b in found if b is not None), key=lambda b: b.area, reverse=True))
                return TrackResult(self._boxes, False)
        self._boxes = tuple(detect_faces(grey, self.detect_min_face_px))
        self._since_full = 0
        return TrackResult(self._boxes, True)

    def _redetect(self, grey: np.ndarray, prev: Box) -> Box | None:
        h, w = grey.shape
        mx, my = prev.width * self.roi_margin, prev.height * self.roi_margin
        x0, y0 = int(max(0, prev.left - mx)), int(max(0, prev.top - my))
        x1, y1 = int(min(w, prev.right + mx)), int(min(h, prev.bottom + my))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        # search for faces from 70 % of the previous size: someone stepping back is still found
        min_px = max(HOG_WINDOW_PX * 0.5, prev.width * 0.7)
        boxes = detect_faces(grey[y0:y1, x0:x1], min_face_px=min_px, offset=(x0, y0))
        if not boxes:
            return None
        pc = prev.centre
        return min(boxes, key=lambda b: (b.centre[0] - pc[0]) ** 2 + (b.centre[1] - pc[1]) ** 2)
