"""The work done per photo (the enrolment gates, both descriptors) and per live source (the
kiosk's attempts on synthesised frames), in worker processes."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import math
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np

from kiosk.errors import KioskError
from kiosk.vision.evaluation.data import LiveResult, PhotoResult, Protocol, identity_of


def _worker_init() -> None:
    # Ctrl-C reaches the whole process group: the parent handles it and terminates us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        # die with the parent even if it is killed outright (PR_SET_PDEATHSIG = 1)
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def photo_job(args: tuple[str, int]) -> PhotoResult:
    """Judge one photo with the enrolment gates (size gate at `min_face_px`) and template it."""
    from kiosk.vision.enroll import EnrolmentRefused, inspect_photo, load_photo
    from kiosk.vision.quality import FACE_COME_CLOSER, QualityLimits

    path, min_face_px = args
    out = PhotoResult(path, identity_of(Path(path)))
    try:
        image = load_photo(path)
        face = inspect_photo(image, limits=QualityLimits(min_face_px=min_face_px), crop_largest=True, mirror=True)
    except EnrolmentRefused as e:
        out.refused = e.message_id
        return out
    except KioskError:
        out.refused = "unreadable"
        return out
    img_h, img_w = image.shape[:2]
    assert face.descriptors is not None and len(face.descriptors) == 2
    # the plain descriptor and the mirror's, whatever FLIP_TTA says: the analysis combines them
    out.raw, out.mirror = face.descriptors[0].astype(np.float16), face.descriptors[1].astype(np.float16)
    out.measures = dict(face.quality.measures)
    out.faces, out.face_px = face.faces, face.box.width
    out.anchor = (face.box.centre[0] / img_w, face.box.centre[1] / img_h)
    out.face_frac = face.box.height / img_h
    if face.quality.ok:
        out.template = out.raw
    else:
        out.refused = face.quality.message_id
    # a live source passes every kiosk gate but size (its frames are rendered at kiosk size)
    # and shows no second face the kiosk would call a crowd
    out.live_ok = not face.cropped and all(g == FACE_COME_CLOSER for g in face.quality.failed)
    return out


_PIPELINE: Any = None


def live_job(args: tuple[str, str, tuple[float, float], float, Protocol]) -> LiveResult:
    """The kiosk's attempts for one person, frames synthesised from their live-source photo.

    Per attempt (a retry: new distance, light and head roll) the frames sway gently, as a
    person standing in front of the kiosk does; the kiosk's FacePipeline tracks, gates and
    templates them exactly as at a check-in, and frames collect as the engine collects them
    (a lost face or a crowd starts over).
    """
    global _PIPELINE
    from kiosk.config import VisionTable
    from kiosk.hardware.camera.synthetic import Scene, render
    from kiosk.vision.enroll import load_photo
    from kiosk.vision.quality import FACE_TOO_MANY
    from kiosk.vision.template import descriptors

    identity, path, anchor, face_frac, proto = args
    if _PIPELINE is None:
        from kiosk.vision.pipeline import FacePipeline

        _PIPELINE = FacePipeline(VisionTable())
    pipe = _PIPELINE
    portraits = [load_photo(path)]
    out = LiveResult(identity)
    name_seed = int.from_bytes(hashlib.sha256(identity.encode()).digest()[:4], "big")
    for a in range(proto.attempts):
        rng = np.random.default_rng([proto.seed, name_seed, a])
        face_px = rng.uniform(125.0, 175.0)
        light = rng.uniform(0.8, 1.15)
        roll = rng.uniform(-8.0, 8.0)
        blur = rng.uniform(0.0, 0.8)
        noise = rng.uniform(1.5, 4.0)
        phase = rng.uniform(0.0, 2 * math.pi)
        pipe.reset()
        got: list[np.ndarray] = []
        got_mirror: list[np.ndarray] = []
        for k in range(proto.budget):
            ph = phase + 0.35 * k
            scene = Scene(
                faces=(0,),
                anchors=(anchor,),
                scale=face_px * (1 + 0.04 * math.sin(ph)) / (face_frac * 480),
                shift=(0.02 * math.sin(ph), 0.015 * math.cos(1.3 * ph)),
                brightness=light * (1 + 0.02 * math.sin(2.1 * ph)),
                blur=blur,
                noise=noise,
                rotate=roll + 1.5 * math.sin(0.7 * ph),
            )
            image = render(portraits, scene, (640, 480), rng)
            obs = pipe.process(image, want_template=False)
            out.frames_seen += 1
            if not obs.ok:
                out.gate_failures[obs.message_id] = out.gate_failures.get(obs.message_id, 0) + 1
            if obs.faces == 0 or obs.message_id == FACE_TOO_MANY:
                got.clear()
                got_mirror.clear()
            if obs.ok and obs.landmarks is not None:
                # what the pipeline's want_template computes, plus the mirror (the analysis combines)
                d = descriptors(image, obs.landmarks, mirror=True)
                got.append(d[0].astype(np.float16))
                got_mirror.append(d[1].astype(np.float16))
                if len(got) >= proto.frames:
                    break
        out.attempts.append(got)
        out.mirrors.append(got_mirror)
    return out
