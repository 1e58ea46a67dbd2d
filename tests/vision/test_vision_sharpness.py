"""The sharpness gate judges a face on its own pixels: a sharp small photo is not "blurred"."""

from __future__ import annotations

import cv2
import numpy as np
from vision_scenes import frame_of

from kiosk.vision import quality as Q
from kiosk.vision.detect import detect_faces_in_photo, to_grey


def _shrunk(grey: np.ndarray, factor: float) -> np.ndarray:
    h, w = grey.shape
    return cv2.resize(grey, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)


def _sharpness(grey: np.ndarray) -> tuple[float, int]:
    boxes = detect_faces_in_photo(grey)
    assert boxes, "no face found"
    return Q.sharpness(grey, boxes[0]), boxes[0].width


def test_a_sharp_face_shrunk_to_a_small_photo_still_reads_sharp(portraits: list[np.ndarray]) -> None:
    limit = Q.QualityLimits().min_sharpness
    for i in range(len(portraits)):
        big = to_grey(frame_of(portraits, i, face_px=240))
        s_big, w_big = _sharpness(big)
        small = _shrunk(big, 0.27)  # the face of a 150 px LFW copy, ~65 px
        s_small, w_small = _sharpness(small)
        assert w_big >= 200 and w_small <= 80
        assert s_big > limit and s_small > limit
        # enlarging the small face to 128 px (the gate's old way) measured the interpolation
        crop = cv2.resize(Q._face_crop(small, detect_faces_in_photo(small)[0]), (128, 128),
                          interpolation=cv2.INTER_LINEAR).astype(np.float64)
        enlarged = float(cv2.Laplacian(crop * (50.0 / crop.std()), cv2.CV_64F).var())
        assert enlarged < s_small / 3


def test_blur_of_a_few_of_the_faces_own_pixels_fails_at_every_size(portraits: list[np.ndarray]) -> None:
    limit = Q.QualityLimits().min_sharpness
    for factor in (1.0, 0.5, 0.27):
        grey = _shrunk(to_grey(frame_of(portraits, 0, face_px=240)), factor)
        box = detect_faces_in_photo(grey)[0]
        sharp = Q.sharpness(grey, box)
        blurred = Q.sharpness(cv2.GaussianBlur(grey, (0, 0), 3.0), box)
        assert blurred < limit < sharp, (factor, sharp, blurred)
