"""A template from an enrolment photo (the issuer's side of DESIGN §7 Templates).

The photo must show exactly one person: with none, or with several faces of similar size,
the issuer cannot know whose template it would seal, so it refuses with a FormatError
whose message names the problem, never the person. The photo and the template stay in
memory; the caller seals the template into the pass and drops both.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kiosk.errors import FormatError
from kiosk.vision.detect import Box, detect_faces_in_photo, to_grey
from kiosk.vision.landmarks import FaceLandmarks, find_landmarks
from kiosk.vision.quality import FACE_NONE, FACE_TOO_MANY, QualityLimits, QualityVerdict, assess, pick_subject
from kiosk.vision.template import compute_template

# a photo is not a live frame: faces in ID-style photos can be small (LFW: ~60 px), and a
# still has no motion, so only the size gate is relaxed; the rest is reported as is
PHOTO_LIMITS = QualityLimits(min_face_px=40, crowd_ratio=0.5)


@dataclass(frozen=True, eq=False)
class PhotoFace:
    """The face found in a photo, its quality verdict, and its template."""

    box: Box
    landmarks: FaceLandmarks
    quality: QualityVerdict
    template: np.ndarray


def load_photo(path_or_array: str | Path | np.ndarray) -> np.ndarray:
    """An RGB uint8 array from a file path (EXIF orientation applied) or an array."""
    if isinstance(path_or_array, np.ndarray):
        arr = path_or_array
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise FormatError("the photo must be an RGB uint8 H×W×3 array")
        return np.ascontiguousarray(arr[..., :3])
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path_or_array) as im:
            # phone photos are stored sideways with an EXIF rotation; the detector needs them upright
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError):
        raise FormatError("the photo cannot be read as an image") from None


def face_from_photo(path_or_array: str | Path | np.ndarray, models_dir: Path | None = None,
                    limits: QualityLimits = PHOTO_LIMITS) -> PhotoFace:
    """Find the one face in a photo, judge it and compute its template; refuse 0 or several faces."""
    image = load_photo(path_or_array)
    grey = to_grey(image)
    boxes = detect_faces_in_photo(grey)
    idx, problem = pick_subject(boxes, limits.crowd_ratio)
    if problem == FACE_NONE:
        raise FormatError("no face found in the photo; use a clear, front-facing photo of the patient")
    if problem == FACE_TOO_MANY or idx is None:
        raise FormatError(f"the photo shows {len(boxes)} faces; use a photo of the patient alone")
    box = boxes[idx]
    lm = find_landmarks(grey, box, models_dir)
    verdict = assess(grey, boxes, lm, None, limits)
    return PhotoFace(box, lm, verdict, compute_template(image, lm, models_dir))


def template_from_photo(path_or_array: str | Path | np.ndarray, models_dir: Path | None = None) -> np.ndarray:
    """The (128,) float16 template of the one face in an enrolment photo (FormatError otherwise)."""
    return face_from_photo(path_or_array, models_dir).template
