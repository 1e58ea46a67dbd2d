"""Templates from enrolment photos (the issuer's side of the shared template function).

The enrolment photo makes a template that lasts as long as the pass, so it must pass the
same quality gates as a kiosk frame (kiosk.vision.quality): the face at least as large as
the kiosk demands (`vision.min_face_px`), frontal, lit and sharp. A photo with no face is
refused; one with several faces of similar size is refused unless the desk asks for
`crop_largest` after confirming that the largest face is the patient's. Several photos (or
several shots from the desk camera) may be given: each passes the gates alone, and the
sealed template is the mean of their templates, which is how the kiosk fuses live frames
too (kiosk.vision.verify). Refusals are FormatErrors whose message names the problem and
what to do, never the person; `message_id` carries the gate's id for a UI.
The photos and the templates stay in memory; the caller seals the template and drops both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kiosk.errors import FormatError, NoInputError
from kiosk.vision.detect import Box, detect_faces_in_photo, to_grey
from kiosk.vision.landmarks import FaceLandmarks, find_landmarks
from kiosk.vision.quality import (
    FACE_COME_CLOSER,
    FACE_HOLD_STILL,
    FACE_LOOK_AT_CAMERA,
    FACE_MORE_LIGHT,
    FACE_NONE,
    FACE_TOO_BRIGHT,
    FACE_TOO_MANY,
    QualityLimits,
    QualityVerdict,
    assess,
    pick_subject,
)
from kiosk.vision.template import FLIP_TTA, TEMPLATE_DTYPE, combine, descriptors

# the kiosk's own gates (QualityLimits' defaults are the kiosk's: 110 px, pose, light, sharpness)
ENROL_LIMITS = QualityLimits()

# A template from one photo refuses about eight times as many genuine check-ins as the mean of
# two or more (13.2 % against 1.6 % of the same 311 people, held out; docs/face-evaluation.md),
# so the desk takes a second photo unless it acknowledges that cost (`single_photo`).
MIN_ENROL_PHOTOS = 2
ENROL_ONE_PHOTO = "enrol.one_photo"
ENROL_SAME_PHOTO = "enrol.same_photo"
# Two templates this close come from one image given twice (or saved again losslessly): float16
# rounding moves a distance by < 1e-3. It does not catch a copy: re-compressing a photo as JPEG
# q85 moved biden__01's template by 0.037, halving it by 0.071 (two photos of him: 0.39), so the
# desk still vouches that the photos are two shots.
SAME_PHOTO_DISTANCE = 0.02
SINGLE_PHOTO_REFUSAL = (
    "one photo makes a weaker template (about 1 patient in 8 refused at the kiosk, against 1 in 60 from two "
    "photos): take a second photo of the patient, or add --single-photo to accept that"
)

_ADVICE = {
    FACE_COME_CLOSER: "the face is {px} px wide; the kiosk needs {need} px: take the photo closer",
    FACE_LOOK_AT_CAMERA: "the face is turned or tilted: the patient should look straight at the camera",
    FACE_MORE_LIGHT: "the face is too dark: add light in front of the patient",
    FACE_TOO_BRIGHT: "the face is over-exposed: reduce the light or the flash",
    FACE_HOLD_STILL: "the face is blurred: hold the camera and the patient still, and focus",
}


class EnrolmentRefused(FormatError):
    """A photo the issuer must not seal a template from; `message_id` is the failing gate."""

    def __init__(self, message: str, message_id: str) -> None:
        super().__init__(message)
        self.message_id = message_id


@dataclass(frozen=True, eq=False)
class PhotoFace:
    """The face found in a photo, its quality verdict, and its template."""

    box: Box
    landmarks: FaceLandmarks
    quality: QualityVerdict
    template: np.ndarray
    faces: int = 1  # faces found in the photo
    cropped: bool = False  # several faces, the largest taken on the desk's confirmation
    descriptors: np.ndarray | None = None  # the chip's descriptor, and its mirror's when asked (evaluation)


@dataclass(frozen=True, eq=False)
class Enrolment:
    """The template to seal (mean of the photos' templates) and the faces it came from."""

    template: np.ndarray
    faces: tuple[PhotoFace, ...]


def load_photo(path_or_array: str | Path | np.ndarray) -> np.ndarray:
    """An RGB uint8 array from a file path (EXIF orientation applied) or an array."""
    if isinstance(path_or_array, np.ndarray):
        arr = path_or_array
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
            raise FormatError("the photo must be an RGB uint8 H×W×3 array")
        return np.ascontiguousarray(arr[..., :3])
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path_or_array)
    if not path.is_file():
        raise NoInputError(f"{path}: no such photo")
    try:
        with Image.open(path) as im:
            # phone photos are stored sideways with an EXIF rotation; the detector needs them upright
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError):
        raise FormatError(f"{path}: cannot be read as an image") from None


def inspect_photo(
    path_or_array: str | Path | np.ndarray,
    models_dir: Path | None = None,
    limits: QualityLimits = ENROL_LIMITS,
    crop_largest: bool = False,
    mirror: bool = False,
) -> PhotoFace:
    """The subject's face, its verdict and template, judged but not refused on quality.

    Refuses (EnrolmentRefused) only when there is no face, or several of similar size and
    not `crop_largest`: then there is no one to judge. `mirror`: also keep the mirrored
    chip's descriptor in `descriptors` (the evaluation compares both kinds of template).
    """
    image = load_photo(path_or_array)
    grey = to_grey(image)
    boxes = detect_faces_in_photo(grey)
    idx, problem = pick_subject(boxes, limits.crowd_ratio)
    found, cropped = len(boxes), False
    if problem == FACE_NONE:
        raise EnrolmentRefused(
            "no face found in the photo; use a clear, front-facing photo of the patient", FACE_NONE
        )
    if problem == FACE_TOO_MANY and crop_largest:
        idx, problem, cropped = 0, None, True  # largest first; the desk confirmed it is the patient
        boxes = boxes[:1]  # judge the crop alone: the others are not the subject
    if problem == FACE_TOO_MANY or idx is None:
        raise EnrolmentRefused(
            f"the photo shows {len(boxes)} faces; use a photo of the patient alone, or "
            "--crop-largest once the desk has checked the largest face is the patient's",
            FACE_TOO_MANY,
        )
    box = boxes[idx]
    lm = find_landmarks(grey, box, models_dir)
    verdict = assess(grey, boxes, lm, None, limits)
    descs = descriptors(image, lm, models_dir, mirror=mirror or FLIP_TTA)
    template = combine(descs if FLIP_TTA else descs[:1])
    return PhotoFace(box, lm, verdict, template, found, cropped, descs)


def refusal(face: PhotoFace, limits: QualityLimits = ENROL_LIMITS) -> EnrolmentRefused | None:
    """The refusal a face that failed a gate gets (None when every gate passed)."""
    if face.quality.ok:
        return None
    gate = face.quality.message_id
    advice = _ADVICE.get(gate, "the photo does not pass the quality gates")
    return EnrolmentRefused(advice.format(px=face.box.width, need=limits.min_face_px), gate)


def face_from_photo(
    path_or_array: str | Path | np.ndarray,
    models_dir: Path | None = None,
    limits: QualityLimits = ENROL_LIMITS,
    crop_largest: bool = False,
) -> PhotoFace:
    """The one face of an enrolment photo, refused (EnrolmentRefused) unless every gate passes."""
    face = inspect_photo(path_or_array, models_dir, limits, crop_largest)
    refused = refusal(face, limits)
    if refused is not None:
        raise refused
    return face


def check_photo_count(count: int, single_photo: bool = False) -> None:
    """Refuse (EnrolmentRefused, `ENROL_ONE_PHOTO`) fewer than `MIN_ENROL_PHOTOS` photos
    unless the desk acknowledged one photo's cost (`single_photo`). Cheap: call it first."""
    if count <= 0:
        raise FormatError("no enrolment photo given")
    if count < MIN_ENROL_PHOTOS and not single_photo:
        raise EnrolmentRefused(SINGLE_PHOTO_REFUSAL, ENROL_ONE_PHOTO)


def enrol(
    photos: Sequence[str | Path | np.ndarray],
    models_dir: Path | None = None,
    limits: QualityLimits = ENROL_LIMITS,
    crop_largest: bool = False,
    single_photo: bool = False,
) -> Enrolment:
    """The template to seal from the patient's photos, each passing the gates.

    At least `MIN_ENROL_PHOTOS` distinct photos unless `single_photo` (the desk accepts
    one photo's higher false-refusal rate). Several photos average out one photo's pose and
    light (the mean template, as the kiosk's fusion does); all must show the same person,
    which the desk vouches for. The same image twice counts once and is refused.
    """
    check_photo_count(len(photos), single_photo)
    faces = tuple(face_from_photo(p, models_dir, limits, crop_largest) for p in photos)
    ts = [f.template.astype(np.float32) for f in faces]
    for i in range(len(ts)):
        for j in range(i):
            if float(np.linalg.norm(ts[i] - ts[j])) < SAME_PHOTO_DISTANCE:
                raise EnrolmentRefused(
                    f"photos {j + 1} and {i + 1} are the same picture; take another photo of the patient",
                    ENROL_SAME_PHOTO,
                )
    mean = np.mean(ts, axis=0)
    return Enrolment(mean.astype(TEMPLATE_DTYPE), faces)


def template_from_photo(
    path_or_array: str | Path | np.ndarray,
    models_dir: Path | None = None,
    limits: QualityLimits = ENROL_LIMITS,
    crop_largest: bool = False,
) -> np.ndarray:
    """The (128,) float16 template of an enrolment photo (EnrolmentRefused if it fails a gate)."""
    return face_from_photo(path_or_array, models_dir, limits, crop_largest).template
