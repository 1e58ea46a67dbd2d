"""Quality gates before matching: one face, big enough, frontal, lit, sharp, still.

Pure functions over plain data (a grey image, boxes, landmarks). The result is a
`QualityVerdict` carrying a guidance *message id* ("face.come_closer"), never English: the
UI translates it (docs/design-notes.md). Gates run in the order a person can act on them: first get
one face in view, then closer, then facing the camera, then light, then hold still.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from kiosk.vision.detect import Box
from kiosk.vision.landmarks import FaceLandmarks

FACE_NONE = "face.none"
FACE_TOO_MANY = "face.too_many"
FACE_COME_CLOSER = "face.come_closer"
FACE_LOOK_AT_CAMERA = "face.look_at_camera"
FACE_MORE_LIGHT = "face.more_light"
FACE_TOO_BRIGHT = "face.too_bright"
FACE_HOLD_STILL = "face.hold_still"
FACE_OK = "face.ok"
MESSAGE_IDS = (FACE_NONE, FACE_TOO_MANY, FACE_COME_CLOSER, FACE_LOOK_AT_CAMERA, FACE_MORE_LIGHT,
               FACE_TOO_BRIGHT, FACE_HOLD_STILL, FACE_OK)

SHARPNESS_SIDE = 128  # faces larger than this are shrunk to it before the Laplacian
# The Laplacian's variance of a face blurred by a given number of its own pixels grows as
# its side shrinks: side^-1.3, measured on 23 sharp full-size faces shrunk to 40–128 px and
# blurred by σ 0.7–2 px (docs/face-evaluation.md). Scaling by (side/128)^1.3 makes one
# threshold mean "blurred by more than ~1.2 of the face's own pixels" at every size.
SHARPNESS_SIZE_EXPONENT = 1.3


@dataclass(frozen=True)
class QualityLimits:
    """Where each gate draws its line. Defaults measured on the demo portraits and LFW.

    crowd_ratio: a second face at least this fraction of the largest one's width means
    "several people" (a smaller one far behind is a bystander and ignored).
    max_yaw: nose offset from the eyes' midpoint along the eye line, in eye distances.
    pitch_range: nose drop below the eye line, in eye distances (≈0.7 looking straight on).
    min_sharpness: `sharpness()`, the variance of the Laplacian at 128 px equivalent.
    max_motion: movement of the face centre between frames, in face widths.
    """

    min_face_px: int = 110
    crowd_ratio: float = 0.6
    max_yaw: float = 0.18
    max_roll_deg: float = 20.0
    pitch_range: tuple[float, float] = (0.45, 1.1)
    min_brightness: float = 60.0
    max_brightness: float = 200.0
    max_clipped: float = 0.25
    min_sharpness: float = 40.0
    max_motion: float = 0.15


@dataclass(frozen=True)
class QualityVerdict:
    """`ok` when every gate passed; `message_id` says what the person should do.

    `measures` holds the numbers behind it (sizes, angles, levels) for tuning and for
    `kiosk face` output; none of them identifies anyone.
    """

    ok: bool
    message_id: str
    measures: dict[str, float] = field(default_factory=dict)
    failed: tuple[str, ...] = ()


def pick_subject(boxes: Sequence[Box], crowd_ratio: float = 0.6) -> tuple[int | None, str | None]:
    """Index of the person to judge, or (None, message id) when there is none or a crowd.

    The largest face is the nearest; a second face of comparable size makes the frame
    ambiguous (whose face is this pass for?), a much smaller one is someone behind.
    """
    if not boxes:
        return None, FACE_NONE
    order = sorted(range(len(boxes)), key=lambda i: boxes[i].area, reverse=True)
    if len(order) > 1 and boxes[order[1]].width >= crowd_ratio * boxes[order[0]].width:
        return None, FACE_TOO_MANY
    return order[0], None


def pose(lm: FaceLandmarks) -> tuple[float, float, float]:
    """(yaw, roll in degrees, pitch) from five landmarks; (0, 0, ~0.7) looking straight on.

    yaw: the nose's offset from the eyes' midpoint along the eye line, in eye distances
    (turning the head moves the nose sideways). roll: the eye line's angle. pitch: the
    nose's distance below the eye line, in eye distances (nodding shortens it).
    """
    le, re_, nose = lm.left_eye.astype(np.float64), lm.right_eye.astype(np.float64), lm.nose.astype(np.float64)
    axis = re_ - le
    d = float(np.hypot(axis[0], axis[1]))
    if d < 1e-6:
        return math.inf, 0.0, 0.0
    u = axis / d
    rel = nose - (le + re_) / 2
    yaw = float(rel @ u) / d
    pitch = float(rel[1] * u[0] - rel[0] * u[1]) / d  # perpendicular, positive below the eye line
    roll = math.degrees(math.atan2(axis[1], axis[0]))
    return yaw, roll, pitch


def _face_crop(grey: np.ndarray, box: Box, inset: float = 0.1) -> np.ndarray:
    # an inset crop: the box edges hold hair and background, not the face
    h, w = grey.shape
    dx, dy = box.width * inset, box.height * inset
    x0, y0 = int(max(0, box.left + dx)), int(max(0, box.top + dy))
    x1, y1 = int(min(w, box.right - dx)), int(min(h, box.bottom - dy))
    return grey[y0:y1, x0:x1]


def sharpness(grey: np.ndarray, box: Box) -> float:
    """Variance of the Laplacian of the face, contrast-normalised, on the face's own pixels.

    A face larger than 128 px is shrunk to 128×128; a smaller one is measured as it is,
    never enlarged: enlarging adds no detail, so on a small photo the Laplacian would
    measure the interpolation (a sharp 60 px face enlarged to 128 reads as blurred). The
    value is scaled to the 128 px equivalent (`SHARPNESS_SIZE_EXPONENT`), so one threshold
    holds for a 60 px photo and a 200 px camera face alike. Scaling the crop to a standard
    deviation of 50 grey levels makes it independent of exposure, so a dim face is reported
    as dim (more light), not as blurred.
    """
    crop = _face_crop(grey, box)
    if crop.size == 0:
        return 0.0
    side = min(SHARPNESS_SIDE, crop.shape[0], crop.shape[1])
    if side < 3:
        return 0.0
    crop = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA).astype(np.float64)
    std = float(crop.std())
    if std < 1.0:
        return 0.0  # a flat patch has no detail to judge
    var = float(cv2.Laplacian(crop * (50.0 / std), cv2.CV_64F).var())
    return var * (side / SHARPNESS_SIDE) ** SHARPNESS_SIZE_EXPONENT


def exposure(grey: np.ndarray, box: Box) -> tuple[float, float]:
    """(mean grey level of the face, fraction of its pixels clipped at white)."""
    crop = _face_crop(grey, box)
    if crop.size == 0:
        return 0.0, 0.0
    return float(crop.mean()), float(np.count_nonzero(crop >= 250)) / crop.size


def motion(prev: Box | None, box: Box) -> float:
    """How far the face centre moved since the previous frame, in face widths (0 if unknown)."""
    if prev is None or box.width <= 0:
        return 0.0
    (px, py), (cx, cy) = prev.centre, box.centre
    return float(math.hypot(cx - px, cy - py)) / box.width


def assess(grey: np.ndarray, boxes: Sequence[Box], landmarks: FaceLandmarks | None,
           prev_box: Box | None = None, limits: QualityLimits = QualityLimits()) -> QualityVerdict:
    """Judge a frame. `landmarks` belong to the subject `pick_subject` chose (None = not found).

    Every measure is computed, but the message is the first failing gate in the order a
    person can fix it; `failed` lists all failing gates.
    """
    idx, early = pick_subject(boxes, limits.crowd_ratio)
    if idx is None:
        return QualityVerdict(False, early or FACE_NONE, {"faces": float(len(boxes))}, (early or FACE_NONE,))
    box = boxes[idx]
    m: dict[str, float] = {"faces": float(len(boxes)), "face_px": float(box.width)}
    failed: list[str] = []
    if box.width < limits.min_face_px:
        failed.append(FACE_COME_CLOSER)
    if landmarks is not None:
        yaw, roll, pitch = pose(landmarks)
        m.update(yaw=yaw, roll_deg=roll, pitch=pitch)
        lo, hi = limits.pitch_range
        if abs(yaw) > limits.max_yaw or abs(roll) > limits.max_roll_deg or not lo <= pitch <= hi:
            failed.append(FACE_LOOK_AT_CAMERA)
    else:
        failed.append(FACE_LOOK_AT_CAMERA)
    mean, clipped = exposure(grey, box)
    m.update(brightness=mean, clipped=clipped)
    if mean < limits.min_brightness:
        failed.append(FACE_MORE_LIGHT)
    elif mean > limits.max_brightness or clipped > limits.max_clipped:
        failed.append(FACE_TOO_BRIGHT)
    sharp = sharpness(grey, box)
    moved = motion(prev_box, box)
    m.update(sharpness=sharp, motion=moved)
    # blur at a kiosk is nearly always motion blur, so both ask the person to hold still
    if sharp < limits.min_sharpness or moved > limits.max_motion:
        failed.append(FACE_HOLD_STILL)
    if failed:
        return QualityVerdict(False, failed[0], m, tuple(failed))
    return QualityVerdict(True, FACE_OK, m, ())
