"""A simulated camera that sees what the kiosk's own screen lights: for liveness tests, the demo
and the liveness evaluation.

Physics, kept simple but honest:
- the screen is two area lights (its left and right halves, as the patient sees them: the left
  half lies on the patient's left, which an unmirrored camera shows on the image's right), a
  little below the camera, `screen_offset` face-widths out to each side and `screen_distance`
  face-widths in front; irradiance from each is n·l / r² per surface point (Lambert);
- the room adds ambient light from above; the photo of a person stands in for albedo × the
  light it was taken in, so rendered radiance = photo × (ambient + screen light) / ambient;
- a live face is curved: its depth comes from the face-mesh network run on the photo (468
  points with depth), filled in with an ellipsoid head (a `FaceModel`, built from a photo by
  kiosk/vision/liveness/face_model.py), and turns in 3-D when asked to;
- spectacles (`Glasses`, a live face's option): each lens a convex mirror that shows a small
  image of the screen at the screen's own radiance (it can clip), following the field;
- a print is a plane (it turns as one homography); a phone or tablet emits its own picture and
  only reflects the kiosk's light as glare off its glass, inside a bezel, with moiré;
- the sensor: auto exposure and auto white balance that drift towards a target unless locked
  (`lock_exposure` / `lock_white_balance`), shot and read noise, sRGB encoding, and one frame
  of latency between the screen and what the frame shows.

A `Subject` renders linear radiance for a frame time given the screen's light; the
`PhotometricCamera` adds the sensor. Frames and photos stay in memory.
"""
from __future__ import annotations

import functools
import threading
import time
import weakref
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np

from kiosk.errors import CameraError
from kiosk.hardware.camera.base import Camera, Frame

RGB = tuple[int, int, int]
IDLE_FIELD: tuple[RGB, str] = ((70, 70, 70), "full")  # the UI's ordinary dim screen


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] to linear light."""
    v = np.asarray(v, dtype=np.float32)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    """Linear light in [0, 1] to sRGB-encoded values."""
    v = np.clip(v, 0.0, 1.0)
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1 / 2.4) - 0.055).astype(np.float32)


_LUT_N = 4096


@functools.lru_cache(maxsize=1)
def _srgb_lut8() -> np.ndarray:
    return (linear_to_srgb(np.linspace(0, 1, _LUT_N, dtype=np.float32)) * 255.0 + 0.5).astype(np.uint8)


class ScreenLog:
    """What the kiosk's screen showed when: fed by the UI's `show_field` calls.

    `field_at(t_ns)` answers the field on screen at that time; `IDLE_FIELD` before the first
    and after `clear()`. Thread-safe (the demo's UI and camera run in one thread, a real UI
    would not)."""

    def __init__(self, idle: tuple[RGB, str] = IDLE_FIELD) -> None:
        self.idle = idle
        self._t: list[int] = []
        self._f: list[tuple[RGB, str]] = []
        self._lock = threading.Lock()

    def show(self, color: RGB, region: str, t_ns: int) -> None:
        with self._lock:
            self._t.append(int(t_ns))
            self._f.append(((int(color[0]), int(color[1]), int(color[2])), region))

    def field_at(self, t_ns: int) -> tuple[RGB, str]:
        with self._lock:
            i = bisect_right(self._t, int(t_ns)) - 1
            return self._f[i] if i >= 0 else self.idle


@dataclass(frozen=True)
class Light:
    """The screen's light at one instant: linear RGB of its left and right halves in [0, 1]."""

    left: np.ndarray
    right: np.ndarray

    @classmethod
    def of(cls, color: RGB, region: str) -> Light:
        c = srgb_to_linear(np.asarray(color, dtype=np.float32) / 255.0)
        off = np.zeros(3, np.float32)
        if region == "left":
            return cls(c, off)
        if region == "right":
            return cls(off, c)
        return cls(c, c)

    @staticmethod
    def mix(a: Light, b: Light, w: float) -> Light:
        return Light(a.left * (1 - w) + b.left * w, a.right * (1 - w) + b.right * w)


@dataclass
class Room:
    """The lighting of one session: ambient level and colour, and how strong the screen is.

    screen_gain: linear irradiance of a full white screen at the face relative to the ambient
    (0.3 = the screen adds 30 %). screen_offset / screen_distance: half-screen centres' lateral
    offset and the screen's distance, in face widths. screen_drop: the screen lies this far
    below the camera (face widths)."""

    ambient: float = 0.22
    ambient_rgb: tuple[float, float, float] = (1.0, 0.97, 0.9)
    screen_gain: float = 0.35
    screen_offset: float = 0.55
    screen_distance: float = 2.6
    screen_drop: float = 0.6


class Subject(Protocol):
    """What stands in front of the camera."""

    def render(self, t_ns: int, light: Light, room: Room) -> np.ndarray:
        """Linear radiance H×W×3 float32 (about 0..1) at frame time `t_ns`."""
        ...

    def prompt(self, kind: str, t_ns: int) -> None:
        """The kiosk asked for something ("turn-left", "turn-right"); a subject may comply."""
        ...


# --- geometry of a person from one photo --------------------------------------------------
@dataclass(frozen=True, eq=False)
class FaceModel:
    """A photo placed in the frame, with per-pixel depth and a head mask, from its face mesh.

    All arrays are frame-sized (H×W): `albedo` linear RGB, `depth` in pixels (towards the
    camera negative), `mask` 1 on the person (head and shoulders), 0 on the wall. `closed` is
    the albedo with the eyes shut (lids painted with the skin above them)."""

    albedo: np.ndarray
    closed: np.ndarray
    depth: np.ndarray
    mask: np.ndarray
    centre: tuple[float, float]
    face_width: float
    eye_boxes: tuple[tuple[int, int, int, int], ...]
    points: np.ndarray | None = None  # the photo's 468 face-mesh points as placed (x, y, z)


def _wall(size: tuple[int, int]) -> np.ndarray:
    w, h = size
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
    base = 0.55 + 0.12 * x - 0.1 * y
    return srgb_to_linear(np.clip(np.stack([base, base * 0.97, base * 0.92], -1), 0, 1))


def _normals(depth: np.ndarray) -> np.ndarray:
    """Unit surface normals (x right, y down, z away from the camera) of a depth map."""
    dzdx = cv2.Sobel(depth, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    dzdy = cv2.Sobel(depth, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    n = np.stack([dzdx, dzdy, -np.ones_like(depth)], -1)
    return n / np.linalg.norm(n, axis=-1, keepdims=True)


_CAMERA_FW = 3.5  # the camera's distance from the head's turning axis, in face widths


def _turned(fm: FaceModel, yaw_deg: float, axis_depth: float, planar: bool) -> dict[Any, Any]:
    """The model turned by `yaw_deg` about a vertical axis `axis_depth` px behind its centre, seen
    by a camera about 3.5 face widths away (perspective). A plane (`planar`) keeps depth 0."""
    h, w = fm.depth.shape
    cx = fm.centre[0]
    th = np.deg2rad(yaw_deg)
    f = _CAMERA_FW * fm.face_width  # camera distance in pixels at the face
    depth = np.zeros_like(fm.depth) if planar else fm.depth
    zc = depth - axis_depth
    xs = np.tile(np.arange(w, dtype=np.float32), (h, 1))
    ys = np.tile(np.arange(h, dtype=np.float32)[:, None], (1, w))
    # backward map: for each output pixel, find the source x whose turned projection lands there
    src_x = xs.copy()
    for _ in range(4):
        zs = cv2.remap(zc, src_x, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        x_rot_target = (xs - cx)  # projected x, to be matched by X' * f / (f + Z')
        # X' = X cos + Z sin, Z' = -X sin + Z cos; x = cx + X' f/(f+Z'), solve for X
        a = x_rot_target / f
        # X' - a Z' = a f  →  X (cos + a sin) + Z (sin - a cos) = a f
        src_X = (a * f - zs * (np.sin(th) - a * np.cos(th))) / (np.cos(th) + a * np.sin(th))
        src_x = (cx + src_X).astype(np.float32)
    zs = cv2.remap(zc, src_x, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    zrot = (-(src_x - cx) * np.sin(th) + zs * np.cos(th))
    scale_y = f / (f + zrot)
    cy = fm.centre[1]
    src_y = (cy + (ys - cy) / scale_y).astype(np.float32)

    def warp(a: np.ndarray) -> np.ndarray:
        return cv2.remap(a, src_x, src_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    n = _normals(depth)
    rot = np.array([[np.cos(th), 0, np.sin(th)], [0, 1, 0], [-np.sin(th), 0, np.cos(th)]], dtype=np.float32)
    n = n @ rot.T
    out = {"albedo": warp(fm.albedo), "closed": warp(fm.closed), "mask": warp(fm.mask),
           "n": np.stack([warp(n[..., i]) for i in range(3)], -1)}
    zz = warp(zrot + axis_depth)
    out["depth"] = zz
    return out


def _half_irradiance(n: np.ndarray, depth: np.ndarray, fm_centre: tuple[float, float], fw: float,
                     room: Room) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel irradiance from the left and the right half screen (white), relative to a
    frontal point at the face centre under the full screen, times the screen's gain."""
    h, w = depth.shape
    cx, cy = fm_centre
    d = room.screen_distance * fw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ref = 0.0
    for sx in (-1.0, 1.0):
        v = np.array([sx * room.screen_offset * fw, room.screen_drop * fw, -d])
        ref += float(-v[2] / np.linalg.norm(v) / np.dot(v, v))
    out = []
    # the patient's left half lights the image's right side (unmirrored camera)
    for sx in (1.0, -1.0):
        lx = cx + sx * room.screen_offset * fw
        vx, vy, vz = lx - xx, cy + room.screen_drop * fw - yy, -d - depth
        r2 = vx * vx + vy * vy + vz * vz
        cos = (n[..., 0] * vx + n[..., 1] * vy + n[..., 2] * vz) / np.sqrt(r2)
        out.append((np.clip(cos, 0, None) / r2 / ref * room.screen_gain).astype(np.float32))
    return out[0], out[1]


@dataclass
class Behaviour:
    """How a subject moves: sway, blinks, and a head turn after a prompt."""

    seed: int = 0
    turn_delay_s: float = 0.45
    turn_speed_dps: float = 45.0
    turn_peak_deg: float = 22.0
    blink_every_s: float = 3.5
    sway_px: float = 1.5
    turn_dir: float = 0.0
    turn_t0: int | None = None
    epoch_ns: int = 0  # sway and blink phases count from here (`restart`: a session's start)

    def restart(self, t_ns: int) -> None:
        """A new session starts at `t_ns`: its sway and blinks start from the same phase and no
        turn is pending, whatever happened before (a demo's sessions are then reproducible)."""
        self.epoch_ns, self.turn_t0, self.turn_dir = int(t_ns), None, 0.0

    def yaw(self, t_ns: int) -> float:
        if self.turn_t0 is None:
            return 0.0
        dt = (t_ns - self.turn_t0) / 1e9 - self.turn_delay_s
        if dt <= 0:
            return 0.0
        rise = self.turn_peak_deg / self.turn_speed_dps
        if dt < rise:
            return self.turn_dir * self.turn_speed_dps * dt
        if dt < rise + 0.6:
            return self.turn_dir * self.turn_peak_deg
        back = dt - rise - 0.6
        return self.turn_dir * max(0.0, self.turn_peak_deg - self.turn_speed_dps * back)

    def eye_closure(self, t_ns: int) -> float:
        if self.blink_every_s <= 0:
            return 0.0
        rng = np.random.default_rng(self.seed)
        phase = rng.random() * self.blink_every_s
        t = ((t_ns - self.epoch_ns) / 1e9 + phase) % self.blink_every_s
        return float(max(0.0, 1.0 - abs(t - 0.12) / 0.09))  # ~180 ms blink

    def offset(self, t_ns: int) -> tuple[float, float]:
        t = (t_ns - self.epoch_ns) / 1e9
        s = self.sway_px
        return (s * np.sin(1.3 * t + self.seed), 0.6 * s * np.sin(0.9 * t + 2 * self.seed))

    def prompt(self, kind: str, t_ns: int) -> None:
        if kind in ("turn-left", "turn-right"):
            # "turn left" (the patient's left) brings the nose towards the image's right,
            # which is a negative yaw in `_turned`'s convention
            self.turn_dir = -1.0 if kind == "turn-left" else 1.0
            self.turn_t0 = t_ns


class _Posed:
    """A face model at quantised yaw angles (turning re-warps the whole picture), kept for the
    model's lifetime so later sessions of the same photo reuse the warps (at most `keep`).

    It holds its model weakly: `_POSED` maps each model to its `_Posed`, and a value that
    held its key strongly would keep every model (and its warps) alive for the process."""

    STEP_DEG = 2

    def __init__(self, fm: FaceModel, planar: bool, keep: int = 12) -> None:
        self._fm, self.planar, self.keep = weakref.ref(fm), planar, keep
        self.axis = 0.0 if planar else float(np.median(fm.depth[fm.mask > 0.5])) + 0.55 * fm.face_width
        self._cache: dict[int, dict] = {}

    @classmethod
    def of(cls, fm: FaceModel, planar: bool) -> _Posed:
        key = "planar" if planar else "curved"
        cached = _POSED.setdefault(fm, {})
        if key not in cached:
            cached[key] = cls(fm, planar)
        return cached[key]

    @classmethod
    def quantised(cls, yaw: float) -> int:
        """The yaw whose warp stands for `yaw`."""
        return int(round(yaw / cls.STEP_DEG)) * cls.STEP_DEG

    def at(self, yaw: float) -> dict:
        key = self.quantised(yaw)
        got = self._cache.pop(key, None)
        if got is None:
            fm = self._fm()
            assert fm is not None, "a model's warps are asked for only while it is in use"
            got = _turned(fm, float(key), self.axis, self.planar)
            if len(self._cache) >= self.keep:
                self._cache.pop(next(k for k in self._cache if k != 0))
        self._cache[key] = got  # most recently used last
        return got


_POSED: weakref.WeakKeyDictionary[FaceModel, dict[str, _Posed]] = weakref.WeakKeyDictionary()


def _shift(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    if abs(dx) < 0.05 and abs(dy) < 0.05:
        return img
    m = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def _scaled(a: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """a × a per-channel scalar (OpenCV: much faster than numpy broadcasting here)."""
    scalar = (float(rgb[0]), float(rgb[1]), float(rgb[2]), 0.0)  # an OpenCV Scalar, per channel
    return np.asarray(cv2.multiply(a, scalar))  # type: ignore[call-overload]


def _screen_key(room: Room) -> tuple[float, float, float, float]:
    """What the cached screen-light terms depend on. By value, not id(room): a room freed after
    its session leaves its id to the next Room allocated, and turned warps a session did not
    visit kept the terms of the room with that id (the next session's light then depended on
    the heap's history)."""
    return (room.screen_gain, room.screen_offset, room.screen_distance, room.screen_drop)


def _compose(posed: dict[Any, Any], closure: float, light: Light, room: Room, fm: FaceModel,
             wall: np.ndarray, specular: float) -> np.ndarray:
    """Radiance of a (possibly turned) face model under room + screen light, on the wall.

    The photo stands for albedo × a nominal room (ambient 0.22); the screen adds its own light:
    radiance = albedo × (ambient + E_left × colour_left + E_right × colour_right)."""
    screen = _screen_key(room)
    key = ("terms", screen, round(closure, 2))
    if key not in posed:
        for k in [k for k in posed if isinstance(k, tuple) and k[1] != screen]:
            del posed[k]  # another session's room
        if ("e", screen) not in posed:
            posed[("e", screen)] = _half_irradiance(posed["n"], posed["depth"], fm.centre, fm.face_width, room)
        e_left, e_right = posed[("e", screen)]
        alb = posed["albedo"] if closure <= 0 else posed["albedo"] * (1 - closure) + posed["closed"] * closure
        m = posed["mask"][..., None]
        spec = (np.clip(-posed["n"][..., 2], 0, 1) ** 40 * specular * 0.5 * room.screen_gain)[..., None]
        base = np.ascontiguousarray((alb * m + wall * (1 - m)).astype(np.float32))
        left = np.ascontiguousarray((alb * (e_left[..., None] * m) + spec * m).astype(np.float32))
        right = np.ascontiguousarray((alb * (e_right[..., None] * m) + spec * m).astype(np.float32))
        if len(posed) > 40:  # many blink states: start again
            for k in [k for k in posed if isinstance(k, tuple) and k[0] == "terms"]:
                del posed[k]
        posed[key] = (base, left, right)
    base, left, right = posed[key]
    amb = np.asarray(room.ambient_rgb, np.float32) * (room.ambient / 0.22)
    rad = _scaled(base, amb)
    if np.any(light.left > 0):
        rad = cv2.add(rad, _scaled(left, light.left))
    if np.any(light.right > 0):
        rad = cv2.add(rad, _scaled(right, light.right))
    return rad


# --- spectacles --------------------------------------------------------------------------
FACE_WIDTH_M = 0.14       # a face's width, to put a lens's radius in the model's units
SCREEN_ASPECT = 10 / 16   # the screen's height / width (16:10, as decide.py's glare bound assumes)
# the screen seen directly (mirrored in a lens) against a white diffuser lit by it: an emitter
# of radiance L gives irradiance E = L·Ω (Ω its solid angle from the face), a white diffuser
# under E has radiance E/π, so the screen is π/Ω ≈ 30 times brighter (Ω ≈ 0.1 sr at the
# nominal room). In the renderer's units a white diffuser under the full white screen has
# radiance screen_gain, so the screen's own is 30 × screen_gain: a lens's reflection of it can clip
SCREEN_RADIANCE = 30.0


@dataclass(frozen=True)
class Glasses:
    """Spectacles: each lens's front surface a convex mirror that shows a small, bright image
    of the kiosk's screen (it follows the field: a half field only from the lit half, a colour
    field coloured).

    radius_m: the front surface's radius of curvature (0.08-0.13 m in common lenses);
    reflectance: of both surfaces, of the screen's light (~4 % each uncoated, 0.5-1 % with an
    anti-reflective coating); lens_width: in face widths (or the eye's box, if wider);
    tilt_deg: pantoscopic tilt (the lower edge leans towards the cheek, which turns the lens's
    mirror image up towards its centre)."""

    radius_m: float = 0.10
    reflectance: float = 0.04
    lens_width: float = 0.22
    tilt_deg: float = 8.0

    @classmethod
    def random(cls, rng: np.random.Generator) -> Glasses:
        return cls(radius_m=float(rng.uniform(0.08, 0.13)), reflectance=float(rng.uniform(0.005, 0.08)),
                   tilt_deg=float(rng.uniform(4.0, 12.0)))


_LensLayer = tuple[tuple[int, int, int, int], np.ndarray, np.ndarray, np.ndarray]


class _Lenses:
    """The two lenses of `Glasses` on a face model, per (quantised) yaw and room: for each, its
    crop of the frame, the transmission there (1 - reflectance on the lens) and the mirror
    images of the left and the right half screen at unit radiance, clipped to the lens.

    Geometry in the model's pixels (x right, y down, z away from the camera), in the frame of
    `_turned`: the head turns about a vertical axis `axis` px deep at the face's centre, the
    camera sits `_CAMERA_FW` face widths in front of that axis, the screen where
    `_half_irradiance` puts it. Each lens's front surface is a sphere of radius R, its vertex
    VERTEX_FW in front of the eye and its centre R behind that; a screen point's image lies
    where the sphere's normal halves the angle between the camera and that point. The sphere
    turns with the head, the camera and the screen do not: turned, the image slides across the
    lens and leaves it, as a real lens's reflection does."""

    VERTEX_FW = 0.1   # the lens's front surface ~14 mm in front of the eye
    DROP_FW = 0.02    # a lens's centre a little below the eye's

    def __init__(self, fm: FaceModel, glasses: Glasses, axis: float) -> None:
        self.fm, self.g, self.axis = fm, glasses, axis
        fw = fm.face_width
        self.r_px = glasses.radius_m / FACE_WIDTH_M * fw
        self.lenses = []
        for x0, y0, x1, y1 in fm.eye_boxes:
            ex, ey = 0.5 * (x0 + x1), 0.5 * (y0 + y1) + self.DROP_FW * fw
            h, w = fm.depth.shape
            z = float(fm.depth[int(np.clip(ey, 0, h - 1)), int(np.clip(ex, 0, w - 1))]) - self.VERTEX_FW * fw
            half_w = 0.5 * max(glasses.lens_width * fw, float(x1 - x0))
            self.lenses.append((np.array([ex, ey, z]), half_w, 0.7 * half_w))
        self._cache: dict[tuple[int, tuple[float, ...]], list[_LensLayer]] = {}

    def _world(self, p: np.ndarray, th: float) -> np.ndarray:
        """Head-frame points (..., 3) turned by `th` about the axis (as `_turned` turns them)."""
        cx = self.fm.centre[0]
        x, z = p[..., 0] - cx, p[..., 2] - self.axis
        return np.stack([cx + x * np.cos(th) + z * np.sin(th), p[..., 1],
                         self.axis - x * np.sin(th) + z * np.cos(th)], -1)

    def _project(self, q: np.ndarray) -> np.ndarray:
        """World points (..., 3) to frame pixels (..., 2), `_turned`'s perspective."""
        cx, cy = self.fm.centre
        f = _CAMERA_FW * self.fm.face_width
        s = f / (f + q[..., 2] - self.axis)
        return np.stack([cx + (q[..., 0] - cx) * s, cy + (q[..., 1] - cy) * s], -1)

    def layers(self, yaw_deg: float, room: Room) -> list[_LensLayer]:
        key = (int(round(yaw_deg * 10)), _screen_key(room))
        got = self._cache.get(key)
        if got is None:
            if len(self._cache) > 24:
                self._cache.clear()
            got = self._cache[key] = [self._layer(*lens, np.deg2rad(yaw_deg), room) for lens in self.lenses]
        return got

    def _layer(self, p0: np.ndarray, half_w: float, half_h: float, th: float, room: Room) -> _LensLayer:
        fm, g = self.fm, self.g
        fw = fm.face_width
        cx, cy = fm.centre
        h, w = fm.depth.shape
        tilt = np.deg2rad(g.tilt_deg)
        n0 = np.array([0.0, np.sin(tilt), -np.cos(tilt)])  # the lens's outward normal, head frame
        centre = self._world(p0 - self.r_px * n0, th)
        normal = self._world(p0 + n0, th) - self._world(p0, th)
        vertex = centre + self.r_px * normal
        # the lens's outline: its centre and two edge points, turned and projected
        ex = self._world(p0 + np.array([half_w, 0.0, 0.0]), th) - self._world(p0, th)
        pc, px, py = (self._project(v) for v in (vertex, vertex + ex, vertex + np.array([0.0, half_h, 0.0])))
        ax, ay = max(1.0, abs(float(px[0] - pc[0]))), max(1.0, abs(float(py[1] - pc[1])))
        x0, x1 = int(max(0, np.floor(pc[0] - ax - 2))), int(min(w, np.ceil(pc[0] + ax + 3)))
        y0, y1 = int(max(0, np.floor(pc[1] - ay - 2))), int(min(h, np.ceil(pc[1] + ay + 3)))
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        rr = np.sqrt(((xx - pc[0]) / ax) ** 2 + ((yy - pc[1]) / ay) ** 2)
        mask = np.clip((1.0 - rr) * min(ax, ay) + 0.5, 0.0, 1.0)  # about a pixel of soft edge
        # the screen: S = 2 × screen_offset face widths wide, its centre screen_drop below the camera
        cam = np.array([cx, cy, self.axis - _CAMERA_FW * fw])
        half_s, half_h_s = room.screen_offset * fw, room.screen_offset * fw * SCREEN_ASPECT
        sy, sz = cy + room.screen_drop * fw, -room.screen_distance * fw
        images = []
        # the patient's left half lies on the image's right (as in `_half_irradiance`)
        for xa, xb in ((cx, cx + half_s), (cx - half_s, cx)):
            corners = np.array([[x, y, sz] for x in (xa, xb) for y in (sy - half_h_s, sy + half_h_s)])
            q = np.repeat(vertex[None, :], 4, axis=0)
            for _ in range(3):  # the point whose normal halves camera and screen point, refined
                u = cam - q
                v = corners - q
                m = u / np.linalg.norm(u, axis=1, keepdims=True) + v / np.linalg.norm(v, axis=1, keepdims=True)
                q = centre + self.r_px * m / np.linalg.norm(m, axis=1, keepdims=True)
            img = self._project(q)
            # its sides at the mean of each edge's ends: the two halves' images meet at the
            # screen's middle without overlapping
            qx0, qx1 = sorted((float(img[:2, 0].mean()), float(img[2:, 0].mean())))
            qy0, qy1 = float(img[:, 1].min()), float(img[:, 1].max())
            cov_x = np.clip(np.minimum(xx[0] + 0.5, qx1) - np.maximum(xx[0] - 0.5, qx0), 0.0, 1.0)
            cov_y = np.clip(np.minimum(yy[:, 0] + 0.5, qy1) - np.maximum(yy[:, 0] - 0.5, qy0), 0.0, 1.0)
            images.append(np.ascontiguousarray((cov_y[:, None] * cov_x[None, :] * mask)[..., None],
                                               dtype=np.float32))
        trans = np.ascontiguousarray((1.0 - g.reflectance * mask)[..., None], dtype=np.float32)
        return (y0, y1, x0, x1), trans, images[0], images[1]

    def apply(self, rad: np.ndarray, yaw_deg: float, light: Light, room: Room) -> None:
        """Through the lenses, in place: the eyes seen through them, and the screen mirrored."""
        k = self.g.reflectance * SCREEN_RADIANCE * room.screen_gain
        for (y0, y1, x0, x1), trans, left, right in self.layers(yaw_deg, room):
            sub = rad[y0:y1, x0:x1]
            sub *= trans
            if np.any(light.left > 0):
                sub += left * (k * light.left)[None, None, :]
            if np.any(light.right > 0):
                sub += right * (k * light.right)[None, None, :]


class LiveFace:
    """A real person: curved, lit by the screen, blinking, turning when asked; `glasses`: wearing
    spectacles, whose lenses mirror the screen."""

    species = "bona-fide"

    def __init__(self, fm: FaceModel, behaviour: Behaviour | None = None, specular: float = 0.15,
                 glasses: Glasses | None = None) -> None:
        self.fm, self.b = fm, behaviour or Behaviour()
        self._posed = _Posed.of(fm, planar=False)
        self._wall = _wall((fm.depth.shape[1], fm.depth.shape[0]))
        self.specular = specular
        self.glasses = glasses
        self._lenses = _Lenses(fm, glasses, self._posed.axis) if glasses is not None else None

    def prompt(self, kind: str, t_ns: int) -> None:
        self.b.prompt(kind, t_ns)

    def render(self, t_ns: int, light: Light, room: Room) -> np.ndarray:
        yaw = self.b.yaw(t_ns)
        posed = self._posed.at(yaw)
        rad = _compose(posed, self.b.eye_closure(t_ns), light, room, self.fm, self._wall, self.specular)
        if self._lenses is not None:
            self._lenses.apply(rad, _Posed.quantised(yaw), light, room)
        return _shift(rad, *self.b.offset(t_ns))


class FlatPrint:
    """A photo printed on paper and held up: flat, matte or glossy, turned as a plane.

    `eye_holes`: a cut-out print with the attacker's own eyes behind (they blink)."""

    def __init__(self, fm: FaceModel, behaviour: Behaviour | None = None, glossy: float = 0.0,
                 margin: float = 1.35, eye_holes: bool = False, bend: float = 0.0) -> None:
        self.species = "cut-out-print" if eye_holes else "curved-print" if bend > 0 else "print"
        self.b = behaviour or Behaviour(blink_every_s=0.0)
        flat_depth = np.full_like(fm.depth, float(np.median(fm.depth[fm.mask > 0.5])))
        if bend > 0:
            # the paper bent round a vertical cylinder of radius fw / bend (a curved-print attack)
            r = fm.face_width / bend
            dx = np.clip(np.arange(flat_depth.shape[1], dtype=np.float32) - fm.centre[0], -0.99 * r, 0.99 * r)
            flat_depth = flat_depth + (r - np.sqrt(r * r - dx * dx))[None, :]
        h, w = fm.depth.shape
        cx, cy = fm.centre
        # the paper: the whole photo inside a rectangle around the face, white paper beyond it
        x0, x1 = int(cx - margin * fm.face_width), int(cx + margin * fm.face_width)
        y0, y1 = int(cy - 1.5 * margin * fm.face_width), int(cy + 1.5 * margin * fm.face_width)
        paper = np.zeros((h, w), np.float32)
        paper[max(0, y0):min(h, y1), max(0, x0):min(w, x1)] = 1.0
        # printing compresses the photo's range (paper white, ink black)
        albedo = 0.03 + 0.8 * fm.albedo
        closed = 0.03 + 0.8 * fm.closed
        self.fm = FaceModel(albedo, closed if eye_holes else albedo, flat_depth, paper, fm.centre,
                            fm.face_width,
                            fm.eye_boxes)
        self.eye_holes = eye_holes
        self._posed = _Posed.of(self.fm, planar=bend <= 0)
        self._wall = _wall((w, h))
        self.glossy = glossy
        self._glare_spot = (cx + 0.25 * fm.face_width, cy - 0.35 * fm.face_width)

    def prompt(self, kind: str, t_ns: int) -> None:
        self.b.prompt(kind, t_ns)

    def render(self, t_ns: int, light: Light, room: Room) -> np.ndarray:
        posed = self._posed.at(self.b.yaw(t_ns))
        closure = self.b.eye_closure(t_ns) if self.eye_holes else 0.0
        rad = _compose(posed, closure, light, room, self.fm, self._wall, 0.0)
        if self.glossy > 0:
            rad = rad + _glare(rad.shape[:2], self._glare_spot, 0.35 * self.fm.face_width, light, self.glossy)
        return _shift(rad, *self.b.offset(t_ns))


def _glare(shape: tuple[int, int], centre: tuple[float, float], radius: float, light: Light,
           strength: float) -> np.ndarray:
    """The kiosk screen mirrored in glass or gloss: a bright clustered blob of the screen's colour."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((xx - centre[0]) / (1.4 * radius)) ** 2 + ((yy - centre[1]) / radius) ** 2)
    blob = np.clip(1.5 - 1.5 * r, 0, 1) ** 0.5
    c = 0.5 * (light.left + light.right) + 0.08
    return blob[..., None] * c[None, None, :] * strength


class ScreenReplay:
    """A phone or tablet held up, playing a video of the person: it emits its own light.

    `content(t_ns)` gives the displayed picture (linear RGB, frame-sized); the device shows it
    at its own brightness, reflects the kiosk's screen off its glass as glare, has a bezel
    (unless the tablet is held so close that its edges leave the frame) and a moiré pattern."""

    def __init__(self, content: Callable[[int], np.ndarray], size: tuple[int, int],
                 centre: tuple[float, float],
                 face_width: float, *, species: str = "screen-replay", bezel: bool = True,
                 glare: float = 0.6, moire: float = 0.06, brightness: float = 1.0, diffuse: float = 0.02,
                 extent: float = 1.6, seed: int = 0) -> None:
        self.species = species
        self.content, self.size = content, size
        w, h = size
        cx, cy = centre
        self.face_width = face_width
        rng = np.random.default_rng(seed)
        hw, hh = extent * face_width, extent * 1.35 * face_width
        self.rect = (int(cx - hw), int(cy - hh), int(cx + hw), int(cy + hh))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        x0, y0, x1, y1 = self.rect
        inside = (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
        b = 0.09 * face_width
        body = (xx >= x0 - b) & (xx < x1 + b) & (yy >= y0 - 1.6 * b) & (yy < y1 + 1.6 * b)
        self.inside = inside.astype(np.float32)
        self.bezel = (body & ~inside).astype(np.float32) if bezel else np.zeros((h, w), np.float32)
        ang = rng.uniform(0, np.pi)
        freq = rng.uniform(0.15, 0.3)
        self.moire = (1.0 + moire * np.sin(freq * (xx * np.cos(ang) + yy * np.sin(ang)))).astype(np.float32)
        self.glare_strength, self.brightness, self.diffuse = glare, brightness, diffuse
        self.glare_spot = (cx + rng.uniform(-0.4, 0.4) * face_width, cy + rng.uniform(-0.5, 0.1) * face_width)
        self._wall = _wall(size)
        self.b = Behaviour(blink_every_s=0.0, sway_px=1.0, seed=seed)

    def prompt(self, kind: str, t_ns: int) -> None:
        self.b.prompt(kind, t_ns)

    def render(self, t_ns: int, light: Light, room: Room) -> np.ndarray:
        amb = np.asarray(room.ambient_rgb, np.float32) * room.ambient
        shown = self.content(t_ns) * self.brightness * self.moire[..., None]
        # the glass reflects a little of everything diffusely, and the kiosk's screen specularly
        kiosk_light = 0.5 * (light.left + light.right) * room.screen_gain * 0.22
        refl = self.diffuse * (amb + kiosk_light)[None, None, :]
        screen = shown + refl
        if self.glare_strength > 0:
            screen = screen + _glare(shown.shape[:2], self.glare_spot, 0.3 * self.face_width, light,
                                     self.glare_strength)
        wall = self._wall * amb[None, None, :] / 0.22
        ins = self.inside[..., None]
        bez = self.bezel[..., None]
        rad = screen * ins + (0.015 * amb[None, None, :] / 0.22) * bez + wall * (1 - ins - bez)
        return _shift(rad, *self.b.offset(t_ns))


class StillImage:
    """A still picture filling the view (a photo of an attack, as a camera would pass it on)."""

    species = "still"

    def __init__(self, image: np.ndarray, size: tuple[int, int]) -> None:
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        self.image = srgb_to_linear(small.astype(np.float32) / 255.0)

    def prompt(self, kind: str, t_ns: int) -> None:
        pass

    def render(self, t_ns: int, light: Light, room: Room) -> np.ndarray:
        return self.image * (room.ambient / 0.22)


@dataclass
class _Sensor:
    exposure: float = 1.0
    wb: np.ndarray = field(default_factory=lambda: np.ones(3, np.float32))
    exposure_locked: bool = False
    wb_locked: bool = False


class VirtualClock:
    """A clock that only moves when told to: a simulated camera session runs faster than real time.

    It satisfies the engine's Clock port; `sleep` advances it."""

    def __init__(self, start_ns: int = 1_000_000_000) -> None:
        self._ns = int(start_ns)
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self.monotonic_ns() / 1e9

    def monotonic_ns(self) -> int:
        with self._lock:
            return self._ns

    def time(self) -> float:
        return 1.7e9 + self.monotonic()

    def sleep(self, seconds: float) -> None:
        self.advance(int(max(0.0, seconds) * 1e9))

    def advance(self, ns: int) -> None:
        with self._lock:
            self._ns += int(ns)


class PhotometricCamera(Camera):
    """Frames of `subject` lit by the room and by what `screen` shows, through a simple sensor.

    `clock`: frames are stamped on it; a `VirtualClock` is advanced one frame period per read
    (fast simulation), any other clock is waited on to pace `fps` in real time.
    `latency_frames`: the frame shows the screen as it was this many frame periods earlier."""

    name = "photometric"

    def __init__(self, subject: Subject, screen: ScreenLog, room: Room | None = None,
                 size: tuple[int, int] = (640, 480), fps: float = 15.0, clock: Any = None,
                 latency_frames: float = 1.0, noise: float = 0.006, seed: int = 0) -> None:
        self.subject, self.screen = subject, screen
        self.room = room or Room()
        self._size = size
        self.period_ns = int(1e9 / fps)
        self.clock = clock
        self.latency_ns = int(latency_frames * self.period_ns)
        self.noise = noise
        self._rng = np.random.default_rng(seed)
        self._seed = seed
        self._s = _Sensor()
        self._settled = False  # auto exposure has seen the scene (a frame, or `_settle`)
        self._headroom = 1.0
        self._index = 0
        self._closed = False
        self._last_ns = 0
        self._bank: list[np.ndarray] | None = None
        self._lock = threading.Lock()

    def _now(self) -> int:
        if self.clock is None:
            return time.monotonic_ns()
        return int(self.clock.monotonic_ns())

    def read(self) -> Frame:
        with self._lock:
            if self._closed:
                raise CameraError("photometric camera is closed")
            if isinstance(self.clock, VirtualClock):
                self.clock.advance(self.period_ns)
            elif self._last_ns:
                wait = self._last_ns + self.period_ns - self._now()
                if wait > 0:
                    time.sleep(wait / 1e9)
            t = self._now()
            self._last_ns = t
            if not self._settled and not self._s.exposure_locked:
                self._settle()  # a fresh camera starts settled, as a kiosk's running one is
            # the exposure integrates over the frame period, one period of latency behind
            a = Light.of(*self.screen.field_at(t - self.latency_ns - self.period_ns // 2))
            b = Light.of(*self.screen.field_at(t - self.latency_ns))
            light = Light.mix(a, b, 0.5)
            rad = self.subject.render(t, light, self.room)
            img = self._sense(rad)
            frame = Frame(img, t, self._index)
            self._index += 1
            return frame

    def _sense(self, rad: np.ndarray) -> np.ndarray:
        s = self._s
        x = rad * (s.exposure * s.wb)[None, None, :]
        if self._bank is None:
            shape = x.shape
            self._bank = [self._rng.standard_normal(shape, dtype=np.float32) for _ in range(3)]
        # read noise plus shot noise growing with the signal; a bank of noise fields, shifted
        k = int(self._rng.integers(len(self._bank)))
        noise = np.roll(self._bank[k], int(self._rng.integers(x.shape[1])), axis=1)
        x = x + noise * (self.noise * (1.0 + 2.0 * np.clip(x, 0, 1)))
        idx = np.clip(x * (_LUT_N - 1) + 0.5, 0, _LUT_N - 1).astype(np.int32)
        out = _srgb_lut8()[idx]
        self._auto(rad[::8, ::8].reshape(-1, 3).mean(axis=0))
        self._settled = True
        return out

    def _auto(self, mean_rad: np.ndarray) -> None:
        """Auto exposure and white balance drift towards their targets for the next frame."""
        s = self._s
        mean = mean_rad * s.exposure * s.wb
        if not s.exposure_locked:
            luma = float(mean @ np.array([0.2126, 0.7152, 0.0722], np.float32))
            s.exposure *= float(np.clip((0.18 / max(luma, 1e-4)) ** 0.5, 0.7, 1.4))
        if not s.wb_locked:
            grey = float(mean.mean())
            s.wb = (s.wb * np.clip((grey / np.maximum(mean, 1e-4)) ** 0.5, 0.8, 1.25)).astype(np.float32)

    def close(self) -> None:
        self._closed = True

    def restart(self) -> None:
        """Start a session afresh: the sensor as built (auto exposure and white balance unlocked
        at their initial gains), the noise sequence from its seed, the subject's behaviour from
        now. Two sessions started so see the same frames, however many frames were read before."""
        with self._lock:
            self._s = _Sensor()
            self._settled = False
            self._headroom = 1.0
            self._rng = np.random.default_rng(self._seed)
            self._bank = None  # drawn again from the seed at the next frame, as at the first
            self._last_ns = 0
        b = getattr(self.subject, "b", None)
        if isinstance(b, Behaviour):
            b.restart(self._now())

    def lock_exposure(self, locked: bool, headroom: float = 1.0) -> None:
        """Freeze (or release) the exposure at its automatic value divided by `headroom`.

        A kiosk's camera runs all day, its auto exposure and white balance long settled on the
        idle screen when a check locks them; a fresh (or restarted) simulated camera, at its
        first frame or a lock before it, first settles them on a noise-free render of the scene
        under the field on screen, as that many frames of the auto loop would."""
        if locked:
            if not headroom >= 1.0:
                raise CameraError(f"photometric camera: exposure headroom must be >= 1, got {headroom}")
            with self._lock:
                if not self._s.exposure_locked:
                    if not self._settled:
                        self._settle()
                    self._s.exposure /= float(headroom)
                    self._headroom = float(headroom)
        elif self._s.exposure_locked:
            self._s.exposure *= self._headroom  # auto exposure resumes where it was
            self._headroom = 1.0
        self._s.exposure_locked = bool(locked)

    def _settle(self) -> None:
        rad = self.subject.render(self._now(), Light.of(*self.screen.field_at(self._now())), self.room)
        mean = rad[::8, ::8].reshape(-1, 3).mean(axis=0)
        for _ in range(40):  # the auto loop of `_sense`, without noise, on a still scene
            self._auto(mean)
        self._settled = True

    def lock_white_balance(self, locked: bool) -> None:
        """Freeze (or release) the white-balance gains at their current values."""
        self._s.wb_locked = bool(locked)

    def controls(self) -> dict[str, Any]:
        return {"backend": self.name, "exposure_locked": self._s.exposure_locked,
                "white_balance_locked": self._s.wb_locked, "exposure": self._s.exposure,
                "colour_gains": (float(self._s.wb[0]), float(self._s.wb[2])),
                "width": self._size[0], "height": self._size[1]}

    def prompt(self, kind: str) -> None:
        """Tell the subject what the kiosk asked (the headless UI forwards its prompts here)."""
        self.subject.prompt(kind, self._now())


def recorded_session(fm: FaceModel, room: Room, size: tuple[int, int],
                     fields: Sequence[tuple[RGB, str, float]],
                     turn: str, seed: int, turn_at_s: float | None = None) -> Callable[[int], np.ndarray]:
    """A video of a genuine session recorded during another challenge, to be replayed.

    `fields`: (colour, region, seconds) the other kiosk showed; the person was asked to turn
    `turn` at `turn_at_s` (default: after the fields). Returns the frame content (linear RGB)
    as a function of time since playback start."""
    face = LiveFace(fm, Behaviour(seed=seed))
    t_end = sum(d for *_, d in fields) if turn_at_s is None else turn_at_s
    times = np.cumsum([0.0] + [d for *_, d in fields])
    start: list[int] = []
    prompted: list[bool] = [False]

    @functools.lru_cache(maxsize=128)
    def frame_at(t_rel_ms: int) -> np.ndarray:
        t_rel = t_rel_ms / 1000.0
        k = int(np.searchsorted(times, t_rel, side="right") - 1)
        if 0 <= k < len(fields):
            colour, region, _ = fields[k]
            light = Light.of(colour, region)
        else:
            light = Light.of(*IDLE_FIELD)
        return face.render(int(t_rel * 1e9) + 10**9, light, room)

    def content(t_ns: int) -> np.ndarray:
        if not start:
            start.append(t_ns)
        t_rel = (t_ns - start[0]) / 1e9
        if not prompted[0] and t_rel >= t_end:
            face.prompt(turn, int(t_rel * 1e9) + 10**9)
            prompted[0] = True
        return frame_at(int(t_rel * 1000) // 33 * 33)

    return content
