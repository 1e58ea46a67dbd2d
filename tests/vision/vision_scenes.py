"""Scene helpers for the vision tests (imported by name: pytest puts this folder on sys.path)."""
from __future__ import annotations

import numpy as np

from kiosk.hardware.camera.synthetic import DEMO_FACE_CENTRES, Scene, render, scale_for_face

NAMES = ("astronaut", "grace_hopper")


def scene(i: int, face_px: float = 160, **kw: object) -> Scene:
    """A scene of demo portrait `i` with its face about `face_px` tall at the frame centre."""
    name = NAMES[i]
    return Scene(faces=(i,), anchors=(DEMO_FACE_CENTRES[name],), scale=scale_for_face(name, face_px), **kw)


def frame_of(portraits: list[np.ndarray], i: int, face_px: float = 160, **kw: object) -> np.ndarray:
    return render(portraits, scene(i, face_px, **kw))
