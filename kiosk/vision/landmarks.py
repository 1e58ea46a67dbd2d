"""Five landmarks per face (dlib's 5-point model: two corners of each eye, base of the nose).

The 5-point model is used rather than the 68-point one because the latter's training data
(iBUG 300-W) forbids commercial use (models/MANIFEST.json). Five points are what the
descriptor's alignment needs, and enough for a frontal-pose check.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kiosk.vision.detect import Box, to_grey
from kiosk.vision.models import load_shape_predictor

# dlib 5-point order, in image coordinates (not the subject's left/right):
# 0 outer and 1 inner corner of the eye on the image's right, 2 outer and 3 inner corner of
# the eye on the image's left, 4 base of the nose
RIGHT_EYE = (0, 1)
LEFT_EYE = (2, 3)
NOSE = 4


@dataclass(frozen=True, eq=False)
class FaceLandmarks:
    """A face box and its five landmark points as a (5, 2) float32 array of (x, y)."""

    box: Box
    points: np.ndarray

    @property
    def left_eye(self) -> np.ndarray:
        """Centre of the eye on the image's left."""
        return self.points[list(LEFT_EYE)].mean(axis=0)

    @property
    def right_eye(self) -> np.ndarray:
        """Centre of the eye on the image's right."""
        return self.points[list(RIGHT_EYE)].mean(axis=0)

    @property
    def nose(self) -> np.ndarray:
        return self.points[NOSE]

    def to_dlib(self) -> Any:
        """As a dlib.full_object_detection (for dlib's face-chip alignment)."""
        import dlib

        parts = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in self.points])
        return dlib.full_object_detection(self.box.to_dlib(), parts)


def find_landmarks(image: np.ndarray, box: Box, models_dir: Path | None = None) -> FaceLandmarks:
    """The five landmarks of the face in `box` (on the grey image: the model is trained on grey)."""
    predictor = load_shape_predictor(models_dir)
    grey = to_grey(image)
    shape = predictor(grey, box.to_dlib())
    pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
    return FaceLandmarks(box, pts)
