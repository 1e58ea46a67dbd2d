"""THE template function: the only place a face template is computed (docs/design-notes.md Templates).

Enrolment (the issuer, from a photo) and the kiosk (from a camera frame) both call
`compute_template`, so the encoding the threshold was measured on is the encoding used.

Fixed parameters — changing any of them invalidates the measured threshold
(docs/face-evaluation.md) and every template already sealed in a pass:
- alignment: dlib's 5-point landmarks → `dlib.get_face_chip`, chip 150×150 px (the size
  the ResNet was trained on), padding 0.25 (dlib's default, which the network expects);
- mirror (FLIP_TTA): the template is the mean of the chip's descriptor and its horizontal
  mirror's, scaled back to their mean length (`combine`), at enrolment and on live frames
  alike. It cost one more descriptor pass per template and cut the one-photo check-in FNMR
  on held-out people (docs/face-evaluation.md). A pass sealed before it (chip alone) still
  matches: mixing the two kinds measured about as well as the chip alone on both sides;
- jitter: none (JITTERS = 0). dlib's jitter averages the descriptor of N randomly
  perturbed copies of the chip; it costs N descriptor passes and was measured at enrolment
  (docs/face-evaluation.md): it is not taken;
- encoding: 128 × float16, little-endian on the wire (256 bytes). float16 keeps ~3
  significant digits; descriptor components are within ±0.5, so the rounding error on a
  distance is below 1e-3, far under the threshold margin.
- card encoding (card passes only, so the pass fits an NTAG215; docs/design-notes.md "Card
  passes"): 130 bytes, a little-endian float16 scale s then 128 int8 values q with
  template = q * s, s = max|x| / 127 (one step is under 0.4 % of the largest component).
  Measured against the float32 descriptors of real faces: `benchmarks/template_encoding_bench.py`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kiosk.errors import FormatError
from kiosk.vision.landmarks import FaceLandmarks
from kiosk.vision.models import load_face_net

CHIP_SIZE = 150
PADDING = 0.25
JITTERS = 0
# test-time augmentation: the template averages the chip's and its mirror's descriptors
# (the evaluation keeps both and measures either way: `kiosk face evaluate --template`)
FLIP_TTA = True
TEMPLATE_DIM = 128
TEMPLATE_DTYPE = np.float16
TEMPLATE_BYTES = TEMPLATE_DIM * 2
CARD_TEMPLATE_BYTES = 2 + TEMPLATE_DIM
_WIRE_DTYPE = np.dtype("<f2")
_CARD_LEVELS = 127


def face_chip(image_rgb: np.ndarray, face_landmarks: FaceLandmarks) -> np.ndarray:
    """The aligned 150×150 RGB face chip the descriptor is computed on (kept in memory only)."""
    import dlib

    if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise FormatError("compute_template needs an RGB uint8 H×W×3 image")
    return dlib.get_face_chip(np.ascontiguousarray(image_rgb), face_landmarks.to_dlib(),
                              size=CHIP_SIZE, padding=PADDING)


def descriptors(image_rgb: np.ndarray, face_landmarks: FaceLandmarks, models_dir: Path | None = None,
                mirror: bool = FLIP_TTA) -> np.ndarray:
    """The ResNet's float32 descriptors of the aligned chip, shape (1, 128), and with `mirror`
    also of its horizontal mirror, shape (2, 128): the mirror in one batch with the chip."""
    chip = face_chip(image_rgb, face_landmarks)
    net = load_face_net(models_dir)
    chips = [chip, np.ascontiguousarray(chip[:, ::-1])] if mirror else [chip]
    return np.asarray(net.compute_face_descriptor(chips, JITTERS), dtype=np.float32).reshape(len(chips), -1)


def combine(descs: np.ndarray) -> np.ndarray:
    """The template from `descriptors`' rows: one row as it is; a chip and its mirror by
    their mean, scaled back to the mean of their lengths (averaging two unit-ish vectors
    shortens them, and a shorter template sits nearer to everyone, strangers included)."""
    d = np.asarray(descs, dtype=np.float32).reshape(-1, TEMPLATE_DIM)
    if d.shape[0] == 1:
        return d[0].astype(TEMPLATE_DTYPE)
    mean = d.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm > 0:
        mean *= float(np.linalg.norm(d, axis=1).mean()) / norm
    return mean.astype(TEMPLATE_DTYPE)


def compute_template(image_rgb: np.ndarray, face_landmarks: FaceLandmarks,
                     models_dir: Path | None = None) -> np.ndarray:
    """The face template: shape (128,), dtype float16, from an RGB image and its 5 landmarks."""
    return combine(descriptors(image_rgb, face_landmarks, models_dir))


def _check(t: np.ndarray) -> np.ndarray:
    arr = np.asarray(t)
    if arr.shape != (TEMPLATE_DIM,):
        raise FormatError(f"a template has {TEMPLATE_DIM} values, got shape {arr.shape}")
    if not np.all(np.isfinite(arr.astype(np.float32))):
        raise FormatError("template holds NaN or infinite values")
    return arr


def template_to_bytes(t: np.ndarray) -> bytes:
    """The 256-byte wire form: 128 little-endian float16 values."""
    return _check(t).astype(_WIRE_DTYPE).tobytes()


def template_to_card_bytes(t: np.ndarray) -> bytes:
    """The 130-byte card encoding: float16 scale, then 128 int8 steps of it."""
    x = _check(t).astype(np.float32)
    peak = float(np.max(np.abs(x)))
    scale = np.float16(peak / _CARD_LEVELS) if peak > 0 else np.float16(1.0)
    if not np.isfinite(scale) or scale == 0:
        raise FormatError("template values are out of the card encoding's range")
    q = np.clip(np.rint(x / np.float32(scale)), -_CARD_LEVELS, _CARD_LEVELS).astype(np.int8)
    return scale.astype(_WIRE_DTYPE).tobytes() + q.tobytes()


def template_from_bytes(b: bytes) -> np.ndarray:
    """Decode a template, 256 bytes (float16) or 130 (the card encoding), into (128,)
    float16; FormatError on any other length, a bad scale or NaN."""
    if not isinstance(b, (bytes, bytearray, memoryview)):
        raise FormatError("template must be bytes")
    b = bytes(b)
    if len(b) == CARD_TEMPLATE_BYTES:
        scale = np.frombuffer(b[:2], dtype=_WIRE_DTYPE)[0].astype(np.float32)
        q = np.frombuffer(b[2:], dtype=np.int8)
        if not np.isfinite(scale) or scale <= 0 or np.any(q == -128):
            raise FormatError("card template has a bad scale or step")
        return _check((q.astype(np.float32) * scale).astype(TEMPLATE_DTYPE))
    if len(b) != TEMPLATE_BYTES:
        raise FormatError(f"template must be {TEMPLATE_BYTES} bytes (or {CARD_TEMPLATE_BYTES} on a card), "
                          f"got {len(b)}")
    t = np.frombuffer(b, dtype=_WIRE_DTYPE).astype(TEMPLATE_DTYPE)
    return _check(t)
