"""THE template function: the only place a face template is computed (docs/design-notes.md Templates).

Enrolment (the issuer, from a photo) and the kiosk (from a camera frame) both call
`compute_template`, so the encoding the threshold was measured on is the encoding used.

Fixed parameters — changing any of them invalidates the measured threshold
(docs/face-evaluation.md) and every template already sealed in a pass:
- alignment: dlib's 5-point landmarks → `dlib.get_face_chip`, chip 150×150 px (the size
  the ResNet was trained on), padding 0.25 (dlib's default, which the network expects);
- jitter: none (JITTERS = 0). dlib's jitter averages the descriptor of N randomly
  perturbed copies of the chip; it costs N descriptor passes (~N × 0.3 s on a Pi 4) for a
  small gain in accuracy, and a kiosk can get the same robustness by averaging over frames;
- encoding: 128 × float16, little-endian on the wire (256 bytes). float16 keeps ~3
  significant digits; descriptor components are within ±0.5, so the rounding error on a
  distance is below 1e-3, far under the threshold margin.
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
TEMPLATE_DIM = 128
TEMPLATE_DTYPE = np.float16
TEMPLATE_BYTES = TEMPLATE_DIM * 2
_WIRE_DTYPE = np.dtype("<f2")


def face_chip(image_rgb: np.ndarray, face_landmarks: FaceLandmarks) -> np.ndarray:
    """The aligned 150×150 RGB face chip the descriptor is computed on (kept in memory only)."""
    import dlib

    if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise FormatError("compute_template needs an RGB uint8 H×W×3 image")
    return dlib.get_face_chip(np.ascontiguousarray(image_rgb), face_landmarks.to_dlib(),
                              size=CHIP_SIZE, padding=PADDING)


def compute_template(image_rgb: np.ndarray, face_landmarks: FaceLandmarks,
                     models_dir: Path | None = None) -> np.ndarray:
    """The face template: shape (128,), dtype float16, from an RGB image and its 5 landmarks."""
    chip = face_chip(image_rgb, face_landmarks)
    net = load_face_net(models_dir)
    descriptor = np.asarray(net.compute_face_descriptor(chip, JITTERS), dtype=np.float32)
    return descriptor.astype(TEMPLATE_DTYPE)


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


def template_from_bytes(b: bytes) -> np.ndarray:
    """Decode 256 bytes into a (128,) float16 template; FormatError on a wrong length or NaN."""
    if not isinstance(b, (bytes, bytearray, memoryview)):
        raise FormatError("template must be bytes")
    if len(b) != TEMPLATE_BYTES:
        raise FormatError(f"template must be {TEMPLATE_BYTES} bytes, got {len(b)}")
    t = np.frombuffer(bytes(b), dtype=_WIRE_DTYPE).astype(TEMPLATE_DTYPE)
    return _check(t)
