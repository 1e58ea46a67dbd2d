"""The photometric camera's model of a person, built from one photo: the photo placed in the
frame as albedo, per-pixel depth from its face mesh (468 points with depth) on an ellipsoid
head, a head-and-shoulders mask and the eyes shut for blinks.

The simulated camera (kiosk/hardware/camera/photometric.py) renders a `FaceModel`; building one
needs the face detector, the landmarks and the face-mesh network, so it lives here with vision
and the camera stays free of it.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from kiosk.errors import CameraError
from kiosk.hardware.camera.photometric import FaceModel, srgb_to_linear

_LEFT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
_RIGHT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)


def face_model(photo: np.ndarray, size: tuple[int, int] = (640, 480), face_px: float = 170.0,
               shift: tuple[float, float] = (0.0, 0.0), models_dir: Any = None) -> FaceModel:
    """Place `photo`'s face `face_px` wide at the frame centre (+ `shift`, fractions of the
    frame) and build its depth from the face mesh. CameraError if no face is found in it."""
    from kiosk.vision.detect import detect_faces_in_photo
    from kiosk.vision.landmarks import find_landmarks
    from kiosk.vision.liveness.mesh import FaceMeshModel

    boxes = detect_faces_in_photo(photo)
    if not boxes:
        raise CameraError("photometric camera: no face found in the photo")
    b = boxes[0]
    lm = find_landmarks(photo, b, models_dir)
    le, re = lm.left_eye, lm.right_eye
    mesh = FaceMeshModel(models_dir).run(photo, (b.left, b.top, b.right, b.bottom),
                                         float(np.arctan2(re[1] - le[1], re[0] - le[0])))
    pts = mesh.points.astype(np.float64)
    k = face_px / max(mesh.width, 1.0)
    w, h = size
    c_src = pts[:, :2].mean(axis=0)
    c_dst = np.array([w / 2 + shift[0] * w, h / 2 + shift[1] * h])
    m = np.array([[k, 0, c_dst[0] - k * c_src[0]], [0, k, c_dst[1] - k * c_src[1]]], dtype=np.float64)
    placed = cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    albedo = srgb_to_linear(placed.astype(np.float32) / 255.0)
    p2 = pts[:, :2] * k + (c_dst - k * c_src)
    z = pts[:, 2] * k
    fw = face_px
    cx, cy = float(c_dst[0]), float(c_dst[1])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    # head: an ellipsoid a little wider than the face contours, its front at the mesh's mean depth
    ax, ay = 0.62 * fw, 0.85 * fw
    cyh = cy - 0.12 * fw
    rr = ((xx - cx) / ax) ** 2 + ((yy - cyh) / ay) ** 2
    ell = -0.55 * fw * np.sqrt(np.clip(1 - rr, 0, 1)) + float(np.median(z)) + 0.55 * fw * 0.8
    # the face's own relief on top: mesh depth minus the ellipsoid, interpolated inside the mesh
    from scipy.interpolate import griddata

    iy = np.clip(p2[:, 1].round().astype(int), 0, h - 1)
    ell_at = ell[iy, np.clip(p2[:, 0].round().astype(int), 0, w - 1)]
    x0, y0 = int(max(0, p2[:, 0].min() - 4)), int(max(0, p2[:, 1].min() - 4))
    x1, y1 = int(min(w, p2[:, 0].max() + 5)), int(min(h, p2[:, 1].max() + 5))
    gy, gx = np.mgrid[y0:y1, x0:x1]
    rel = griddata(p2, z - ell_at, (gx, gy), method="linear", fill_value=0.0).astype(np.float32)
    relief = np.zeros((h, w), np.float32)
    relief[y0:y1, x0:x1] = rel
    relief = np.asarray(cv2.GaussianBlur(relief, (0, 0), 0.02 * fw), np.float32)
    depth = (ell + relief).astype(np.float32)
    # the person: head ellipse and shoulders below the chin, soft-edged
    head = (rr < 1.0).astype(np.float32)
    chin = float(p2[:, 1].max())
    shoulders = ((yy > chin + 0.1 * fw) & (np.abs(xx - cx) < 0.9 * fw + (yy - chin) * 0.9)).astype(np.float32)
    neck = ((yy > cy) & (yy <= chin + 0.1 * fw + 1) & (np.abs(xx - cx) < 0.35 * fw)).astype(np.float32)
    mask = cv2.GaussianBlur(np.clip(head + shoulders + neck, 0, 1), (0, 0), 2.0)
    depth = np.where(mask > 0.01, depth, depth.max()).astype(np.float32)
    # shut eyes: each eye polygon painted with the skin colour just above it
    closed = albedo.copy()
    eye_boxes = []
    for idx in (_LEFT_EYE, _RIGHT_EYE):
        poly = p2[list(idx)].astype(np.float32)
        ex0, ey0 = poly.min(axis=0)
        ex1, ey1 = poly.max(axis=0)
        pad = 0.25 * (ey1 - ey0) + 2
        ex0, ey0, ex1, ey1 = int(ex0 - pad), int(ey0 - pad), int(ex1 + pad), int(ey1 + pad)
        eye_boxes.append((ex0, ey0, ex1, ey1))
        lid_h = max(2, int(0.6 * (ey1 - ey0)))
        skin = albedo[max(0, ey0 - lid_h):ey0, ex0:ex1].reshape(-1, 3)
        colour = np.median(skin, axis=0) if skin.size else albedo[ey0, ex0]
        emask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(emask, [poly.round().astype(np.int32)], 255)
        emask = np.asarray(cv2.dilate(emask, np.ones((3, 3), np.uint8)), np.uint8)
        soft = cv2.GaussianBlur(emask.astype(np.float32) / 255.0, (0, 0), 1.2)[..., None]
        closed = closed * (1 - soft) + colour[None, None, :] * 0.92 * soft
    return FaceModel(albedo, closed.astype(np.float32), depth, mask.astype(np.float32), (cx, cy), fw,
                     tuple(eye_boxes), np.column_stack([p2, z]).astype(np.float32))
