"""The liveness decision from a challenge's frame samples: physics, one test at a time.

1. Light response: on full fields the skin's linear RGB must follow the screen's colour
   (correlation across fields and channels, and a minimum gain), within a frame of each change,
   and each colour field on its own must add its own colour (a replay of another challenge
   shows other colours in some fields).
2. Background: the wall beyond the head is far from the screen and hardly answers; a flat
   thing filling the view (a print, a tablet) answers everywhere alike.
3. Curvature: under the left and right half fields, each skin point's split
   (l - r) / (l + r) follows its surface normal: tan(angle) × tan(half-screen angle) for a
   curved face. A plane (a print) splits smoothly and weakly, a linear function of position;
   a screen barely answers at all. The test is the coefficient on n_x / |n_z| after the
   planar (affine) part is taken out.
4. Head turn: once the face-mesh yaw passes the threshold, points tracked on the face from
   the frontal frame must not fit one homography: a real nose leaves the plane (parallax);
   nor move like a sheet bent round a vertical axis, whose columns each move as one (relief):
   beyond what a function of the column explains, the points move by their depth in the
   frontal face mesh (the nose, the eye sockets) times sin(yaw), or leave that motion by more
   than a sheet's tracking noise.
5. Vetoes: a frame around the face (device bezel, print edge), clustered specular glare.
Blink is counted and recorded as confirmation only; it never decides.

Thresholds are fixed here (and in the README) before any evaluation run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from kiosk.vision.liveness.challenge import Challenge
from kiosk.vision.liveness.signals import EYES, FrameSample

# --- thresholds (fixed before the evaluation; docs in README "Liveness") --------------------
MIN_LIGHT_CORR = 0.85     # skin colour vs screen colour over the full fields
MIN_LIGHT_GAIN = 0.04     # a white screen adds at least 4 % to the skin's light
# the worst colour field's share of white's added light, off its own colour (field_deviation):
# calibration seeds 61 and 62 (12 photos each), genuine sessions at most 0.37 (n=57), recorded
# replays of another challenge at least 1.17 (n=11), prints and screens at most 0.56
MAX_FIELD_DEVIATION = 0.7
MAX_BACKGROUND_RATIO = 0.45  # background gain / skin gain
MIN_CURVATURE = 0.03      # split coefficient on n_x/|n_z| (≈ tan of the half-screen angle live)
# and its t statistic. The coefficient is what separates: with the exposure locked below
# clipping (a fixed 1.5x then, check.exposure_headroom now), calibration seeds 41-43 (30 of
# each species): bent prints at most 0.010, flat and cut-out prints at most 0.033 (t up to 5.2: they are refused by the
# turn), bona fide p5 0.038; t 2.5 -> 2.0 kept one genuine session (0.038, t 2.49). Seed 44
# (10 more bent prints): two passed it (0.196 t 8.5, 0.031 t 4.0), refused by the relief test
MIN_CURVATURE_T = 2.0
MIN_YAW_RATIO = 0.22      # face-mesh nose offset change ≈ yaw 12°
MIN_PARALLAX = 0.012      # 90th-percentile homography residual, in face widths
# relief (a sheet bent round a vertical axis moves each image column as one; a face does not):
# either test shows it. A sheet keeps both at the tracking-noise floor; a face passes through
# whichever its tracking favours (the depth fit needs the mesh's depth to hold; the residual
# catches what occlusion at the nose and the jaw does to a real turn). Set on calibration
# sessions (seeds 41-43, not the evaluation's), the exposure locked below clipping: bent
# prints (30) share max 0.21 (its t 1.9), t max 1.9, residual max 0.051; of the bona fide (60)
# the depth fit and the residual both missed two: share 0.16 t 2.9 (kept by 2.5 / 0.15, lost
# by round 1's 3.0 / 0.2) and 0.13 t 1.1 (lost by both). Under the clipped exposure before,
# bent prints' t reached 3.4: clipped skin has no texture to track. Seed 44: one bent print's
# residual 0.063 passed (its depth fit t 1.3), refused by the half fields
# Round 4: the depth fit runs on its own corners, all found inside the mesh's outline shrunk
# by RELIEF_MARGIN (on the face box most of the corner budget went to the outline, leaving
# 20-26 corners: t was noise-bound). With ~5x the corners a face's t grows; so may a bent
# sheet's systematic misfit. Calibration seed 61 (12 photos; not an evaluation seed): bona
# fide (35) share min 0.30, t min 5.4; bent prints (11) share max 0.35 with t 2.5, t max 2.5.
MIN_RELIEF_T = 4.0        # t of the tracked motion's coefficient on the mesh's depth (0 for a sheet)
MIN_RELIEF = 0.2          # and that coefficient as a share of sin(yaw): 0.93 for a head on exact
                          # geometry, <= 0.005 for a bent sheet (its misfit), noise σ ≈ 0.065
RELIEF_MARGIN = 0.1       # corners this far (face widths) inside the mesh's outline carry its depth
MIN_BEND = 0.06           # or: 90th-percentile residual of the bent-sheet motion, in face widths
EYE_HALF_AXES = (0.15, 0.10)  # face widths: the eyes left out of the relief test's corners
# near-white cluster that comes with the white field, share of the face box. A mirror image of
# the screen: in flat glass (a phone, a tablet, glossy paper) it is the screen itself seen at twice
# the distance, S / 2F of the face's width (S the screen's width 0.15-0.25 m, F a face's 0.14 m):
# 0.5-0.9 face widths, >= 15 % of the box where the glass is; a convex surface (a cheek, a
# spectacle lens, radius R <= 0.13 m, at d >= 0.4 m) shrinks it to S·R / 2dF <= 0.29 face
# widths, <= 4.4 % of the box at a 16:10 screen. The veto sits between the two.
MAX_GLARE = 0.06
FRAME_SIDES = 3           # this many sides of a frame around the face is a device or a print


@dataclass
class Evidence:
    """The PHI-free numbers behind a decision (recorded in the check-in's liveness detail)."""

    frames: int = 0
    light_corr: float = float("nan")
    light_gain: float = float("nan")
    field_deviation: float = float("nan")
    background_ratio: float = float("nan")
    curvature: float = float("nan")
    curvature_t: float = float("nan")
    yaw: float = float("nan")
    parallax: float = float("nan")
    relief: float = float("nan")
    relief_t: float = float("nan")
    bend: float = float("nan")
    glare: float = 0.0
    sides: int = 0
    blinks: int = 0
    reasons: list[str] = field(default_factory=list)

    def as_detail(self) -> dict[str, Any]:
        def r(x: float) -> float | None:
            return None if x != x else round(float(x), 4)

        return {"frames": self.frames, "light_corr": r(self.light_corr), "light_gain": r(self.light_gain),
                "field_deviation": r(self.field_deviation),
                "background_ratio": r(self.background_ratio), "curvature": r(self.curvature),
                "curvature_t": r(self.curvature_t), "yaw": r(self.yaw), "parallax": r(self.parallax),
                "relief": r(self.relief), "relief_t": r(self.relief_t), "bend": r(self.bend),
                "glare": r(self.glare), "frame_sides": self.sides, "blinks": self.blinks,
                "reasons": list(self.reasons)}


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.2126, 0.7152, 0.0722], np.float32)


def _srgb_lin(c: tuple[int, int, int]) -> np.ndarray:
    v = np.asarray(c, np.float32) / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def plateaus(samples: list[FrameSample], marks: list[int], guard_ns: int) -> list[list[FrameSample]]:
    """The samples of each field's steady part: from `guard_ns` after it went on screen until
    the next field went on (`marks` has one more entry than there are fields: the end)."""
    out: list[list[FrameSample]] = []
    for k in range(len(marks) - 1):
        lo, hi = marks[k] + guard_ns, marks[k + 1]
        out.append([s for s in samples if lo <= s.t_ns <= hi])
    return out


def _mean(group: list[FrameSample], attr: str) -> np.ndarray:
    return np.nanmean(np.stack([getattr(s, attr) for s in group]), axis=0)


def light_response(challenge: Challenge, groups: list[list[FrameSample]], attr: str) -> tuple[float, float]:
    """(correlation, gain) of a region's light with the screen's colour over the full fields."""
    xs, ys = [], []
    for f, g in zip(challenge.fields, groups, strict=True):
        if f.region != "full" or not g:
            continue
        v = _mean(g, attr)
        if v.size == 0 or not np.all(np.isfinite(v)):
            continue
        xs.append(_srgb_lin(f.color))
        ys.append(np.nanmean(v, axis=0))
    if len(xs) < 4:
        return float("nan"), float("nan")
    x, y = np.array(xs), np.array(ys)  # fields × channels
    gains, res_x, res_y = [], [], []
    for ch in range(3):
        a = np.vstack([np.ones(len(x)), x[:, ch]]).T
        (c0, c1), *_ = np.linalg.lstsq(a, y[:, ch], rcond=None)
        gains.append(c1 / max(c0 + c1, 1e-6))
        res_x.append(x[:, ch] - x[:, ch].mean())
        res_y.append(y[:, ch] / max(y[:, ch].mean(), 1e-6) - 1.0)
    xx, yy = np.concatenate(res_x), np.concatenate(res_y)
    corr = float(np.corrcoef(xx, yy)[0, 1]) if np.std(yy) > 0 and np.std(xx) > 0 else 0.0
    return corr, float(np.median(gains))


def field_deviation(challenge: Challenge, groups: list[list[FrameSample]]) -> float:
    """How far the skin's answer to one colour field strays from that field's colour, the worst
    field and channel: the light a field adds over the dim one, as a share of what white adds,
    is for skin (any albedo, the exposure and white balance locked) the field's own linear colour
    in each channel. The pooled correlation lets a replay whose fields partly match another
    challenge's pass; a single field showing another colour does not pass this. NaN: no dim,
    white or colour field measured."""
    by: dict[str, np.ndarray] = {}
    colours: list[tuple[np.ndarray, np.ndarray]] = []
    dim_rgb = white_rgb = None
    for f, g in zip(challenge.fields, groups, strict=True):
        if f.region != "full" or not g:
            continue
        v = np.nanmean(_mean(g, "skin"), axis=0)
        if not np.all(np.isfinite(v)):
            continue
        if f.color == (255, 255, 255):
            by["white"], white_rgb = v, _srgb_lin(f.color)
        elif max(f.color) <= 40:
            by["dim"], dim_rgb = v, _srgb_lin(f.color)
        else:
            colours.append((v, _srgb_lin(f.color)))
    if "white" not in by or "dim" not in by or not colours or white_rgb is None or dim_rgb is None:
        return float("nan")
    span = by["white"] - by["dim"]
    if np.any(span <= 0):
        return 10.0  # white adds nothing in a channel: nothing here answers the screen
    worst = 0.0
    for v, lin in colours:
        got = (v - by["dim"]) / span
        want = (lin - dim_rgb) / (white_rgb - dim_rgb)
        worst = max(worst, float(np.max(np.abs(got - want))))
    return worst


def half_field_split(challenge: Challenge, groups: list[list[FrameSample]]) -> tuple[np.ndarray, np.ndarray] | None:
    """(split, ok): each skin point's (l - r) / (l + r) under the left and right half fields
    (the dim field's light taken out), and where it is measured (lit enough); None: a field is
    missing."""
    by: dict[str, list[np.ndarray]] = {"dim": [], "left": [], "right": [], "white": []}
    for f, g in zip(challenge.fields, groups, strict=True):
        if not g:
            continue
        v = _luma(_mean(g, "skin"))
        if f.region in ("left", "right"):
            by[f.region].append(v)
        elif f.color == (255, 255, 255):
            by["white"].append(v)
        elif max(f.color) <= 40:
            by["dim"].append(v)
    if not (by["dim"] and by["left"] and by["right"] and by["white"]):
        return None
    d = np.mean(by["dim"], axis=0)
    lft = np.mean(by["left"], axis=0) - d
    rgt = np.mean(by["right"], axis=0) - d
    wht = np.mean(by["white"], axis=0) - d
    tot = lft + rgt
    ok = np.isfinite(tot) & np.isfinite(wht) & (tot > 0.3 * np.nanmedian(wht)) & (np.nanmedian(wht) > 0)
    split = np.where(ok, (lft - rgt) / np.where(ok, tot, 1.0), np.nan)
    return split, ok


def _robust_last(a: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(coefficient, t) of the last column of `a` in a least-squares fit of y, after three
    rounds of outlier rejection (points on texture edges: brows, glasses, hair)."""
    keep = np.ones(len(y), bool)
    coef = np.zeros(a.shape[1])
    for _ in range(3):
        coef, *_ = np.linalg.lstsq(a[keep], y[keep], rcond=None)
        resid_all = y - a @ coef
        mad = float(np.median(np.abs(resid_all[keep]))) or 1e-6
        keep = np.abs(resid_all) < 3.0 * 1.4826 * mad
    ak, yk = a[keep], y[keep]
    resid = yk - ak @ coef
    dof = max(1, len(yk) - a.shape[1])
    cov = float(resid @ resid) / dof * np.linalg.pinv(ak.T @ ak)
    se = float(np.sqrt(max(cov[-1, -1], 1e-12)))
    return float(coef[-1]), float(coef[-1] / se)


def _normal_slope(normals: np.ndarray) -> np.ndarray:
    return np.clip(normals[:, 0] / np.maximum(np.abs(normals[:, 2]), 0.2), -4, 4)


def curvature(challenge: Challenge, groups: list[list[FrameSample]], xy: np.ndarray,
              normals: np.ndarray) -> tuple[float, float]:
    """(coefficient, t) of the half-field split on n_x/|n_z| beyond an affine function of position."""
    got = half_field_split(challenge, groups)
    if got is None or got[1].sum() < 30:
        return float("nan"), float("nan")
    split, ok = got
    a = np.column_stack([np.ones(ok.sum()), xy[ok, 0], xy[ok, 1], _normal_slope(normals[ok])])
    return _robust_last(a, split[ok])


@dataclass
class TrackState:
    """Corners tracked from the frontal frame (kept: start, current, alive)."""

    start: np.ndarray
    cur: np.ndarray
    alive: np.ndarray
    prev: np.ndarray
    box: tuple[int, int, int, int]
    level: float


def _face_level(grey: np.ndarray, box: tuple[int, int, int, int]) -> float:
    x0, y0, x1, y1 = box
    crop = grey[max(0, y0):y1, max(0, x0):x1]
    return float(crop.mean()) if crop.size else 1.0


def parallax_start(frontal: np.ndarray, face_box: tuple[int, int, int, int], width: float,
                   mask: np.ndarray | None = None) -> TrackState | None:
    """Corners on the face in the frontal grey frame, to be tracked through the turn (None: too
    few corners). `mask`: where to look (default: the face box)."""
    x0, y0, x1, y1 = face_box
    if mask is None:
        mask = np.zeros_like(frontal)
        mask[max(0, y0):y1, max(0, x0):x1] = 255
    pts = cv2.goodFeaturesToTrack(frontal, maxCorners=150, qualityLevel=0.01,
                                  minDistance=max(3, int(width / 30)),
                                  mask=mask)
    if pts is None or len(pts) < 12:
        return None
    return TrackState(pts.copy(), pts, np.ones(len(pts), bool), frontal, face_box,
                      max(_face_level(frontal, face_box), 1.0))


def parallax_step(state: TrackState, grey: np.ndarray) -> TrackState:
    """Track the corners into the next turn frame. The turn overlaps colour fields, so each
    frame is first scaled to the frontal frame's brightness on the face (the screen's light
    is a gain on the face, and pyramidal Lucas-Kanade assumes constant brightness)."""
    gain = state.level / max(_face_level(grey, state.box), 1.0)
    img = grey if abs(gain - 1.0) < 0.01 else np.asarray(cv2.convertScaleAbs(grey, alpha=gain))
    nxt, st, _ = cv2.calcOpticalFlowPyrLK(state.prev, img, state.cur, None, winSize=(21, 21),  # type: ignore[call-overload]
                                          maxLevel=3)
    back, st2, _ = cv2.calcOpticalFlowPyrLK(img, state.prev, nxt, None, winSize=(21, 21),  # type: ignore[call-overload]
                                            maxLevel=3)
    fb = np.linalg.norm((back - state.cur).reshape(-1, 2), axis=1)
    alive = state.alive & (st.ravel() == 1) & (st2.ravel() == 1) & (fb < 1.0)
    return TrackState(state.start, nxt, alive, img, state.box, state.level)


def parallax_residual(state: TrackState, width: float) -> float:
    """The 90th-percentile residual of the best homography from the frontal corners to where
    they were tracked, in face widths (NaN: too few survived)."""
    if state.alive.sum() < 12:
        return float("nan")
    a, b = state.start[state.alive].reshape(-1, 2), state.cur[state.alive].reshape(-1, 2)
    h, _ = cv2.findHomography(a, b, cv2.RANSAC, 0.01 * width)
    if h is None:
        return float("nan")
    proj = cv2.perspectiveTransform(a.reshape(-1, 1, 2), h).reshape(-1, 2)
    res = np.linalg.norm(proj - b, axis=1)
    return float(np.percentile(res, 90) / width)


def bend_residual(state: TrackState, width: float) -> float:
    """How far the tracked motion leaves the best "bent sheet" motion, in face widths (90th
    percentile; NaN: too few points).

    A sheet bent round a vertical axis (a print wrapped round the attacker's head, any curve)
    and turned about a vertical axis moves each image column as one: its points share a depth,
    so x moves by a function of x alone and y scales by a factor of x alone (perspective). Here
    dx = quintic(x) + shear·y, dy = cubic(x) + y·cubic(x), fitted by least squares. A real
    face breaks it: the nose and the forehead above it share a column, not a depth."""
    if state.alive.sum() < 16:
        return float("nan")
    a, b = state.start[state.alive].reshape(-1, 2), state.cur[state.alive].reshape(-1, 2)
    c = a.mean(axis=0)
    x, y = (a[:, 0] - c[0]) / width, (a[:, 1] - c[1]) / width
    d = (b - a) / width
    one = np.ones_like(x)
    px = [one, x, x * x, x ** 3, x ** 4, x ** 5]
    mx = np.column_stack(px + [y, x * y])
    my = np.column_stack(px[:4] + [y * p for p in px[:4]])
    rx = d[:, 0] - mx @ np.linalg.lstsq(mx, d[:, 0], rcond=None)[0]
    ry = d[:, 1] - my @ np.linalg.lstsq(my, d[:, 1], rcond=None)[0]
    return float(np.percentile(np.hypot(rx, ry), 90))


def inner_mask(shape: tuple[int, ...], mesh_points: np.ndarray, margin: float) -> np.ndarray:
    """The face mesh's outline filled and shrunk by `margin` pixels, without the eyes: where the
    relief test's corners are looked for. On the face box, most of a corner budget goes to the
    outline (the jaw against the neck, the hairline, the wall), which the relief test must leave
    out. Corners on an eye do not stay on one surface point either: the eyes move on their own
    during a turn, and on spectacles the screen's mirror image slides across the lens as the head
    turns (calibration seed 61, the same sessions: with glasses, relief t p5 4.1 -> 8.3; without,
    7.2 -> 7.5; bent prints at most 1.9 -> 2.8)."""
    mask = np.zeros(shape[:2], np.uint8)
    pts = np.asarray(mesh_points, np.float32)[:, :2]
    hull = cv2.convexHull(np.ascontiguousarray(pts)).astype(np.int32)
    cv2.fillConvexPoly(mask, hull, 255)
    k = max(1, int(round(margin)))
    mask = np.asarray(cv2.erode(mask, np.ones((2 * k + 1, 2 * k + 1), np.uint8)))
    w = float(np.ptp(pts[:, 0]))
    for a, b in EYES:  # an ellipse over each eye and the middle of a lens
        c = (pts[a] + pts[b]) / 2
        cv2.ellipse(mask, (int(round(c[0])), int(round(c[1] - 0.02 * w))),
                    (int(round(EYE_HALF_AXES[0] * w)), int(round(EYE_HALF_AXES[1] * w))), 0, 0, 360, 0, -1)
    return mask


def mesh_depth_at(points: np.ndarray, mesh_points: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """The face mesh's depth (pixels, towards the camera negative) at image points, by inverse-
    distance weights over the 4 nearest mesh points; NaN outside the mesh's outline or within
    `margin` pixels of it. Near the outline a corner sits on the occluding contour, the jaw
    against the neck, the hairline: its image point does not stay on one surface point as the
    head turns, and its depth is not the mesh's (hair, the wall, a print's margin)."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    mp = np.asarray(mesh_points, np.float64)
    hull = cv2.convexHull(mp[:, :2].astype(np.float32))
    inside = np.array([cv2.pointPolygonTest(hull, (float(x), float(y)), True) > margin for x, y in pts], bool)
    d2 = ((pts[:, None, :] - mp[None, :, :2]) ** 2).sum(-1)
    nn = np.argsort(d2, axis=1)[:, :4]
    w = 1.0 / (np.take_along_axis(d2, nn, axis=1) + 1.0)
    z = (mp[nn, 2] * w).sum(axis=1) / w.sum(axis=1)
    return np.where(inside, z, np.nan)


def relief(state: TrackState, width: float, depth: np.ndarray, yaw_ratio: float,
           sign: float) -> tuple[float, float]:
    """(share, t): how much of the frontal face mesh's relief the tracked turn moved as depth.

    Turned by θ about a vertical axis, a point at depth z moves sideways by z·sin θ beyond a
    function of its column (every bent sheet: its depth is a function of the column, so its
    motion is too). Fitting dx = quintic(x) + shear·y + x·y + k·z over the tracked corners
    (z: the frontal mesh's depth at each corner, `depth`), the relief enters only through k,
    which is sin θ for a face and 0 for a sheet whatever its bend; tracking noise averages out
    over the corners instead of setting a percentile. k is returned as a share of the sin θ the
    mesh's yaw ratio implies (≈ 1.2 sin θ for a head, mesh.Mesh.yaw_ratio), signed so that the
    asked-for turn direction (`sign`: +1 nose towards the image's right) is positive, with its
    t statistic after three rounds of outlier rejection (corners lost to occlusion, texture
    edges). NaN: too few corners inside the face."""
    ok = state.alive & np.isfinite(depth)
    if ok.sum() < 20 or not yaw_ratio > 0:
        return float("nan"), float("nan")
    a, b = state.start[ok].reshape(-1, 2), state.cur[ok].reshape(-1, 2)
    c = a.mean(axis=0)
    x, y = (a[:, 0] - c[0]) / width, (a[:, 1] - c[1]) / width
    z = depth[ok] / width
    dx = (b[:, 0] - a[:, 0]) / width
    one = np.ones_like(x)
    m = np.column_stack([one, x, x * x, x ** 3, x ** 4, x ** 5, y, x * y, z])
    keep = np.ones(len(dx), bool)
    coef = np.zeros(m.shape[1])
    for _ in range(3):
        if keep.sum() <= m.shape[1] + 5:
            return float("nan"), float("nan")
        coef, *_ = np.linalg.lstsq(m[keep], dx[keep], rcond=None)
        res = dx - m @ coef
        mad = float(np.median(np.abs(res[keep]))) or 1e-9
        keep = np.abs(res) < 3.0 * 1.4826 * mad
    mk, res = m[keep], (dx - m @ coef)[keep]
    dof = max(1, len(res) - m.shape[1])
    cov = float(res @ res) / dof * np.linalg.pinv(mk.T @ mk)
    se = float(np.sqrt(max(cov[-1, -1], 1e-18)))
    k = -float(coef[-1]) * sign  # z towards the camera is negative: a nose moves the way it turns
    sin_yaw = yaw_ratio / 1.2
    return k / sin_yaw, k / se


def screen_glare(challenge: Challenge, groups: list[list[FrameSample]]) -> float:
    """How much bigger the largest near-white cluster on the face is under the full white field
    than under the dim one: a mirror image of the kiosk's screen (phone glass, glossy paper)
    comes and goes with it, a skin highlight from the room's lamps does not."""
    pairs = list(zip(challenge.fields, groups, strict=True))
    white = [s.glare for f, g in pairs if f.color == (255, 255, 255) for s in g]
    dim = [s.glare for f, g in pairs if f.region == "full" and max(f.color) <= 40 for s in g]
    if not white or not dim:
        return 0.0
    return max(0.0, float(np.median(white)) - float(np.median(dim)))


def count_blinks(eyes: list[float]) -> int:
    """Dips of the eyelid opening below half its median, each at least one frame long."""
    v = np.asarray([e for e in eyes if e == e])
    if len(v) < 5:
        return 0
    med = float(np.median(v))
    if med < 0.12:
        return 0
    closed = v < 0.5 * med
    return int(np.sum(closed[1:] & ~closed[:-1]) + (1 if closed[0] else 0))


def decide(ev: Evidence) -> tuple[str, list[str]]:
    """(status, reasons) from the evidence: "live", "attack" or "inconclusive"."""
    attack: list[str] = []
    unsure: list[str] = []
    if ev.sides >= FRAME_SIDES:
        attack.append("frame-around-face")
    if ev.glare >= MAX_GLARE:
        attack.append("specular-glare")
    if ev.light_gain != ev.light_gain or ev.light_corr != ev.light_corr:
        unsure.append("face-not-held")
    elif ev.light_gain < MIN_LIGHT_GAIN:
        attack.append("no-light-response")
    else:
        if ev.light_corr < MIN_LIGHT_CORR:
            attack.append("light-mismatch")
        if ev.field_deviation == ev.field_deviation and ev.field_deviation > MAX_FIELD_DEVIATION:
            attack.append("field-mismatch")
        if ev.background_ratio == ev.background_ratio and ev.background_ratio > MAX_BACKGROUND_RATIO:
            attack.append("background-follows")
        if ev.curvature != ev.curvature:
            unsure.append("no-half-field-response")
        elif ev.curvature < MIN_CURVATURE or ev.curvature_t < MIN_CURVATURE_T:
            attack.append("flat-response")
    if ev.yaw != ev.yaw or abs(ev.yaw) < MIN_YAW_RATIO:
        unsure.append("no-turn")
    elif ev.parallax != ev.parallax:
        unsure.append("turn-not-tracked")
    elif ev.parallax < MIN_PARALLAX:
        attack.append("planar")
    elif ev.bend != ev.bend and ev.relief_t != ev.relief_t:
        unsure.append("turn-not-tracked")
    elif not ((ev.relief_t >= MIN_RELIEF_T and ev.relief >= MIN_RELIEF) or ev.bend >= MIN_BEND):
        attack.append("bent-sheet")
    if attack:
        return "attack", attack + unsure
    if unsure:
        return "inconclusive", unsure
    return "live", []
