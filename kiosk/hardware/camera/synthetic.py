"""Frames synthesised from still portraits: for tests, the demo and benchmarks.

A `Scene` says what the camera "sees": which portraits (none = nobody there, two = two
people side by side), where, how big, how lit, how blurred and how noisy. `render()` is a
pure function of portraits + scene; `SyntheticCamera` plays a list of scenes as a camera.

The demo portraits are public domain and ship inside PyPI packages (docs/design-notes.md):
NASA's astronaut in scikit-image and the US Navy's Grace Hopper in matplotlib.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from kiosk.errors import CameraError
from kiosk.hardware.camera.base import Camera, EndOfStream, Frame

# where each demo portrait's face centre lies, as fractions of width and height, so scenes
# can put the face (not the picture) at the frame centre
DEMO_FACE_CENTRES = {"astronaut": (0.435, 0.25), "grace_hopper": (0.52, 0.41)}
# each demo portrait's face box height (HOG detector) as a fraction of the portrait height
DEMO_FACE_HEIGHTS = {"astronaut": 0.17, "grace_hopper": 0.36}


def scale_for_face(name: str, face_px: float, frame_height: int = 480) -> float:
    """The `Scene.scale` that makes demo portrait `name`'s face about `face_px` tall."""
    return face_px / (DEMO_FACE_HEIGHTS[name] * frame_height)


def demo_portraits() -> dict[str, np.ndarray]:
    """The two public-domain portraits as RGB uint8 arrays: {"astronaut", "grace_hopper"}."""
    return {"astronaut": astronaut(), "grace_hopper": grace_hopper()}


@functools.lru_cache(maxsize=1)
def astronaut() -> np.ndarray:
    """NASA's portrait of Eileen Collins (public domain), from scikit-image."""
    import skimage.data

    img = np.ascontiguousarray(skimage.data.astronaut()[..., :3])
    img.setflags(write=False)
    return img


@functools.lru_cache(maxsize=1)
def grace_hopper() -> np.ndarray:
    """The US Navy's portrait of Grace Hopper (public domain), from matplotlib."""
    from matplotlib import cbook
    from PIL import Image

    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as f:
        img = np.asarray(f.convert("RGB"))
    img = np.ascontiguousarray(img)
    img.setflags(write=False)
    return img


@dataclass(frozen=True)
class Scene:
    """What one synthetic frame shows.

    faces: indices into the portrait list, placed side by side; () means nobody there.
    scale: portrait height as a fraction of the frame height.
    shift: offset of the face centre from the frame centre, as fractions of (width, height).
    anchors: per face, the point of the portrait (fractions) that lands on the slot centre.
    brightness: multiplier on pixel values (0.2 = a dark room). blur: Gaussian sigma in px.
    noise: Gaussian sensor noise sigma in grey levels.
    scales: per-face scale overriding `scale` (two people of different portrait framing).
    rotate: in-plane rotation of each portrait in degrees (a tilted head), anticlockwise.
    """

    faces: tuple[int, ...] = (0,)
    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)
    anchors: tuple[tuple[float, float], ...] = ()
    brightness: float = 1.0
    blur: float = 0.0
    noise: float = 0.0
    scales: tuple[float, ...] = ()
    rotate: float = 0.0


NOBODY = Scene(faces=())


@functools.lru_cache(maxsize=8)
def _background(width: int, height: int) -> np.ndarray:
    # a soft wall-like gradient: flat enough to hold no face, textured enough to look real
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    base = 150.0 + 40.0 * x - 30.0 * y
    bg = np.stack([base, base * 0.97, base * 0.9], axis=-1)
    out = np.clip(bg, 0, 255).astype(np.uint8)
    out.setflags(write=False)
    return out


def render(portraits: Sequence[np.ndarray], scene: Scene, size: tuple[int, int] = (640, 480),
           rng: np.random.Generator | None = None) -> np.ndarray:
    """Render `scene` from `portraits` into an RGB uint8 image of `size` = (width, height)."""
    width, height = size
    canvas: np.ndarray = _background(width, height).astype(np.float32)
    n = len(scene.faces)
    for k, idx in enumerate(scene.faces):
        img = portraits[idx]
        s = (scene.scales[k] if k < len(scene.scales) else scene.scale) * height / img.shape[0]
        rw, rh = max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(np.ascontiguousarray(img), (rw, rh), interpolation=interp)
        ax, ay = scene.anchors[k] if k < len(scene.anchors) else (0.5, 0.5)
        if scene.rotate:
            # rotate about the anchor (the face), filling the corners by edge replication
            rot = cv2.getRotationMatrix2D((ax * rw, ay * rh), scene.rotate, 1.0)
            resized = cv2.warpAffine(resized, rot, (rw, rh), borderMode=cv2.BORDER_REPLICATE)
        slot_x0, slot_x1 = round(width * k / n), round(width * (k + 1) / n)
        cx = (slot_x0 + slot_x1) / 2 + scene.shift[0] * width
        cy = height / 2 + scene.shift[1] * height
        left, top = round(cx - ax * rw), round(cy - ay * rh)
        # clip the pasted portrait to its slot so two people never overlap
        x0, x1 = max(left, slot_x0), min(left + rw, slot_x1)
        y0, y1 = max(top, 0), min(top + rh, height)
        if x1 > x0 and y1 > y0:
            canvas[y0:y1, x0:x1] = resized[y0 - top:y1 - top, x0 - left:x1 - left]
    if scene.brightness != 1.0:
        canvas *= scene.brightness
    if scene.blur > 0:
        canvas = cv2.GaussianBlur(canvas, (0, 0), scene.blur)
    if scene.noise > 0:
        rng = rng if rng is not None else np.random.default_rng(0)
        canvas += rng.normal(0.0, scene.noise, canvas.shape).astype(np.float32)
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)


@dataclass
class _Controls:
    exposure_locked: bool = False
    white_balance_locked: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class SyntheticCamera(Camera):
    """A camera that plays `scenes` rendered from `portraits`.

    `loop` replays the scenes forever (else EndOfStream after the last). `fps` > 0 paces
    reads in real time (the demo); 0 returns frames as fast as asked (tests, benchmarks).
    Exposure and white-balance locks are recorded, so the engine's liveness sequencing
    can be tested against this camera.
    """

    name = "synthetic"

    def __init__(self, portraits: Sequence[np.ndarray] | None = None, scenes: Iterable[Scene] | None = None,
                 size: tuple[int, int] = (640, 480), loop: bool = True, fps: float = 0.0,
                 seed: int = 0) -> None:
        if portraits is None:
            demo = demo_portraits()
            portraits = [demo["astronaut"], demo["grace_hopper"]]
            default_scenes = demo_scenes(0, "astronaut")
        else:
            default_scenes = [Scene()]
        self._portraits = list(portraits)
        self._scenes = list(scenes) if scenes is not None else default_scenes
        if not self._scenes:
            raise CameraError("synthetic camera needs at least one scene")
        for sc in self._scenes:
            if any(i < 0 or i >= len(self._portraits) for i in sc.faces):
                raise CameraError("scene names a portrait that was not given")
        self._size = size
        self._loop = loop
        self._period_ns = int(1e9 / fps) if fps > 0 else 0
        self._rng = np.random.default_rng(seed)
        self._index = 0
        self._last_ns = 0
        self._closed = False
        self._controls = _Controls()

    def read(self) -> Frame:
        """Render the next scene."""
        if self._closed:
            raise CameraError("synthetic camera is closed")
        if self._index >= len(self._scenes) and not self._loop:
            raise EndOfStream("synthetic camera: no more scenes")
        if self._period_ns and self._last_ns:
            wait = self._last_ns + self._period_ns - time.monotonic_ns()
            if wait > 0:
                time.sleep(wait / 1e9)
        scene = self._scenes[self._index % len(self._scenes)]
        image = render(self._portraits, scene, self._size, self._rng)
        self._last_ns = time.monotonic_ns()
        frame = Frame(image, self._last_ns, self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        """Nothing to release; further reads fail."""
        self._closed = True

    def lock_exposure(self, locked: bool, headroom: float = 1.0) -> None:
        """Record the lock (synthetic frames have no auto exposure to freeze or lower)."""
        self._controls.exposure_locked = bool(locked)

    def lock_white_balance(self, locked: bool) -> None:
        """Record the lock."""
        self._controls.white_balance_locked = bool(locked)

    def controls(self) -> dict[str, Any]:
        """Lock state and frame size."""
        return {"backend": self.name, "exposure_locked": self._controls.exposure_locked,
                "white_balance_locked": self._controls.white_balance_locked,
                "width": self._size[0], "height": self._size[1]}


def demo_scenes(portrait: int = 0, name: str = "astronaut", face_px: float = 160.0,
                frames: int = 30, seed: int = 0) -> list[Scene]:
    """A gentle sequence of one person in front of the kiosk: small sways, light changes, noise.

    `portrait` is the index in the camera's portrait list, `name` the demo portrait it holds.
    """
    rng = np.random.default_rng(seed)
    anchor = DEMO_FACE_CENTRES[name]
    base = scale_for_face(name, face_px)
    out = []
    for i in range(frames):
        phase = 2 * np.pi * i / max(frames, 1)
        out.append(Scene(faces=(portrait,), anchors=(anchor,), scale=float(base * (1 + 0.05 * np.sin(phase))),
                         shift=(0.03 * np.sin(phase), 0.02 * np.cos(phase)),
                         brightness=float(0.95 + 0.1 * rng.random()), noise=2.0))
    return out
