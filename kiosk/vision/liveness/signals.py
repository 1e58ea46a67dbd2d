"""Per-frame measurements for liveness: skin and background light, pose, eyelids, glare.

Everything is measured in linear light (the camera's sRGB undone), because the tests compare
ratios of light. Skin is sampled in small patches around face-mesh points away from the eyes,
brows, lips and the face's outline; the background in patches well clear of the head. Only
these numbers (and small grey crops for the head-turn test) outlive the frame.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from kiosk.vision.liveness.mesh import CONTOUR_LEFT, CONTOUR_RIGHT, Mesh

# MediaPipe face-mesh index sets: the outline, the lips, and the eye/brow regions
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409, 78, 95,
        88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415)
EYES = ((33, 133), (362, 263))


@functools.lru_cache(maxsize=1)
def _srgb_lut() -> np.ndarray:
    v = np.arange(256, dtype=np.float32) / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear(image: np.ndarray) -> np.ndarray:
    """An sRGB uint8 image as linear light (float32)."""
    return _srgb_lut()[image]


def skin_points(mesh: Mesh) -> np.ndarray:
    """Indices of mesh points on plain skin: cheeks, forehead, nose, chin."""
    p = mesh.points[:, :2]
    w = mesh.width
    keep = np.ones(len(p), bool)
    keep[list(FACE_OVAL)] = False
    keep[list(LIPS)] = False
    for a, b in EYES:
        c = (p[a] + p[b]) / 2
        d = (p[:, 0] - c[0]) ** 2 / (0.2 * w) ** 2 + (p[:, 1] - c[1] + 0.04 * w) ** 2 / (0.16 * w) ** 2
        keep &= d > 1.0
    mouth = p[list(LIPS)].mean(axis=0)
    keep &= ((p[:, 0] - mouth[0]) ** 2 / (0.26 * w) ** 2 + (p[:, 1] - mouth[1]) ** 2 / (0.12 * w) ** 2) > 1.0
    centre_x = (p[CONTOUR_LEFT, 0] + p[CONTOUR_RIGHT, 0]) / 2
    keep &= np.abs(p[:, 0] - centre_x) < 0.4 * w
    return np.flatnonzero(keep)


def point_normals(points: np.ndarray, k: int = 10) -> np.ndarray:
    """Unit normals (x right, y down, z away from the camera, pointing at it) of the mesh's
    points by a local plane fit over each point's `k` nearest neighbours."""
    p = points.astype(np.float64)
    d2 = ((p[:, None, :2] - p[None, :, :2]) ** 2).sum(-1)
    nbr = np.argsort(d2, axis=1)[:, :k]
    out = np.zeros_like(p)
    for i in range(len(p)):
        q = p[nbr[i]] - p[nbr[i]].mean(axis=0)
        _, _, vt = np.linalg.svd(q, full_matrices=False)
        n = vt[-1]
        out[i] = n if n[2] < 0 else -n
    return out


def background_points(width: int, height: int, mesh: Mesh) -> np.ndarray:
    """Frame points well clear of the head (beside it and above it), at most 48."""
    p = mesh.points[:, :2]
    w = mesh.width
    cx, cy = float(p[:, 0].mean()), float(p[:, 1].mean())
    gx, gy = np.meshgrid(np.linspace(0.04 * width, 0.96 * width, 12),
                         np.linspace(0.04 * height, 0.96 * height, 9))
    xs, ys = gx.ravel(), gy.ravel()
    beside = (np.abs(xs - cx) > 1.3 * w) & (ys < cy + 0.3 * w)
    above = ys < cy - 1.45 * w
    sel = beside | above
    return np.column_stack([xs[sel], ys[sel]])[:48]


def integral(image: np.ndarray) -> np.ndarray:
    """The summed-area table of an sRGB uint8 image in linear light, for `sample`."""
    return np.asarray(cv2.integral(linear(image)))


def sample(ii: np.ndarray, xy: np.ndarray, radius: int) -> np.ndarray:
    """Mean linear RGB in a (2r+1)² box around each point, from the summed-area table `ii` of
    `integral` (points too near the edge: NaN)."""
    h, w = ii.shape[0] - 1, ii.shape[1] - 1
    out = np.full((len(xy), 3), np.nan, np.float32)
    if len(xy) == 0:
        return out
    x = np.round(xy[:, 0]).astype(int)
    y = np.round(xy[:, 1]).astype(int)
    ok = (x >= radius) & (x < w - radius) & (y >= radius) & (y < h - radius)
    xa, xb, ya, yb = x[ok] - radius, x[ok] + radius + 1, y[ok] - radius, y[ok] + radius + 1
    s = ii[yb, xb] - ii[ya, xb] - ii[yb, xa] + ii[ya, xa]
    out[ok] = (s / float((2 * radius + 1) ** 2)).astype(np.float32)
    return out


class Registration:
    """Where the face has moved since the first frame, to a tenth of a pixel: phase correlation
    of its grey crop for a start, refined by ECC (enhanced correlation coefficient, translation
    only), both on a band of the crop's texture.

    The half-field test subtracts the dim field's light from each half field's, a difference
    of a few per cent of the room's light: a patch that slides half a pixel over the skin's
    texture between two fields (a person sways) changes it by as much as the screen does. The
    mesh's own points jitter by one to several pixels from frame to frame and shift with the
    light that falls on the face; the face's features (eyes, brows, nostrils, lips) do not, once
    the light's smooth part (a field's gain, a half field's gradient) and the sensor's noise
    are filtered out, and ECC is blind to what is left of a gain and an offset. A match that
    is weak or jumps further than a sway moves in a frame is not taken: the face is where it was
    last registered."""

    MIN_RESPONSE = 0.05  # phase correlation's peak: below it, start from the last offset
    MIN_CC = 0.2  # ECC's correlation coefficient: below it, a false match

    def __init__(self, grey: np.ndarray, box: tuple[int, int, int, int]) -> None:
        """`box`: the face (left, top, right, bottom) in the reference frame `grey`."""
        x0, y0, x1, y1 = box
        self.box = (max(0, x0), max(0, y0), min(x1, grey.shape[1]), min(y1, grey.shape[0]))
        width = self.box[2] - self.box[0]
        # a band of the texture: finer than the sensor's noise is left out, coarser than a
        # twentieth of the face is the light's smooth part
        self.fine, self.coarse = 1.0, max(4.0, 0.05 * width)
        self.max_jump = max(1.5, 0.01 * width)  # pixels a face can sway between two frames
        self.window = cv2.createHanningWindow((self.box[2] - self.box[0], self.box[3] - self.box[1]), cv2.CV_32F)
        self.ref = self._texture(grey)
        self.last = (0.0, 0.0)  # the last offset registered

    def _texture(self, grey: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = self.box
        crop = np.asarray(grey[y0:y1, x0:x1], np.float32)
        band = cv2.GaussianBlur(crop, (0, 0), self.fine) - cv2.GaussianBlur(crop, (0, 0), self.coarse)
        return np.ascontiguousarray(band)

    def offset(self, grey: np.ndarray) -> tuple[float, float] | None:
        """(dx, dy) of the face since the reference frame, pixels; None: the crop left the frame.
        Where a frame's texture is too faint to register (a dim field lifts the noise), the face
        is where it was last registered: a sway moves it a fraction of a pixel per frame, the
        mesh's own points jitter by several."""
        crop = self._texture(grey)
        if crop.shape != self.ref.shape or crop.shape[0] < 16 or crop.shape[1] < 16:
            return None
        (dx, dy), response = cv2.phaseCorrelate(self.ref, crop, self.window)
        if response < self.MIN_RESPONSE or abs(dx) > 0.25 * crop.shape[1] or abs(dy) > 0.25 * crop.shape[0]:
            dx, dy = self.last
        warp = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
        try:
            self.cc, warp = cv2.findTransformECC(self.ref, crop, warp, cv2.MOTION_TRANSLATION,  # type: ignore[call-overload]
                                           (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 1e-3), None, 1)
        except cv2.error:  # did not converge: the face is where it was last registered
            return self.last
        got = (float(warp[0, 2]), float(warp[1, 2]))
        if self.cc < self.MIN_CC or max(abs(got[0] - self.last[0]), abs(got[1] - self.last[1])) > self.max_jump:
            return self.last  # a false match (a faint texture, another field's colour): not a sway
        self.last = got
        return got


def glare_fraction(image: np.ndarray, mesh: Mesh) -> float:
    """The largest cluster of near-white, colourless pixels on the face, as a share of the face.

    Skin has small specular points; the glass of a phone or glossy paper mirrors the kiosk's
    screen as one big blob."""
    p = mesh.points[:, :2]
    x0, y0 = np.maximum(p.min(axis=0).astype(int), 0)
    x1, y1 = p.max(axis=0).astype(int) + 1
    crop = image[y0:y1, x0:x1]
    if crop.size == 0:
        return 0.0
    mx = crop.max(axis=2).astype(np.int16)
    mn = crop.min(axis=2).astype(np.int16)
    bright = ((mn >= 225) & (mx - mn <= 40)).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=8)
    if n <= 1:
        return 0.0
    return float(stats[1:, cv2.CC_STAT_AREA].max()) / float(crop.shape[0] * crop.shape[1])


def frame_lines(grey: np.ndarray, mesh: Mesh) -> int:
    """How many sides of a frame (a device bezel, a print's edge) enclose the face: 0..4.

    Long straight edges, parallel to the frame axes, in a ring around the face: left and
    right of it (vertical, at least one face tall), above and below (horizontal)."""
    p = mesh.points[:, :2]
    w = mesh.width
    x0, y0 = p.min(axis=0)
    x1, y1 = p.max(axis=0)
    edges = cv2.Canny(cv2.GaussianBlur(grey, (5, 5), 1.2), 40, 110)
    lines = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=60, minLineLength=int(0.9 * w), maxLineGap=6)
    if lines is None:
        return 0
    sides = set()
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    for xa, ya, xb, yb in lines.reshape(-1, 4):
        dx, dy = xb - xa, yb - ya
        if abs(dx) < 0.08 * abs(dy):  # vertical
            xm, lo, hi = (xa + xb) / 2, min(ya, yb), max(ya, yb)
            if lo < cy < hi or (hi - lo) > 1.2 * w:
                if x0 - 2.2 * w < xm < x0 - 0.05 * w:
                    sides.add("left")
                elif x1 + 0.05 * w < xm < x1 + 2.2 * w:
                    sides.add("right")
        elif abs(dy) < 0.08 * abs(dx):  # horizontal
            ym, lo, hi = (ya + yb) / 2, min(xa, xb), max(xa, xb)
            if lo < cx < hi:
                if y0 - 2.2 * w < ym < y0 - 0.15 * w:
                    sides.add("top")
                elif y1 + 0.1 * w < ym < y1 + 2.2 * w:
                    sides.add("bottom")
    return len(sides)


@dataclass(frozen=True, eq=False)
class FrameSample:
    """What one challenge frame contributes (no image, except a small grey face crop)."""

    t_ns: int
    skin: np.ndarray        # (N, 3) linear RGB per skin point
    background: np.ndarray  # (M, 3)
    width: float
    centre: tuple[float, float]
    yaw: float
    eyes: float
    glare: float
    sides: int
