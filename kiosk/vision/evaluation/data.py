"""The evaluation's data: photos named identity__NN.ext, the two fixed splits of the people, and the
results a photo or a live source yields."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def identity_of(path: Path) -> str:
    """`Aaron_Sorkin__0002.jpg` → `Aaron_Sorkin`."""
    return path.stem.split("__")[0]


def list_images(data: Path, limit: int | None = None) -> list[Path]:
    """Photos under `data` (sorted; `_meta` folders skipped), the first `limit` of them."""
    files = sorted(
        p
        for p in data.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and "_meta" not in p.parts and "__" in p.stem
    )
    return files[:limit] if limit else files


def fold_of(identity: str) -> int:
    """0 or 1: which half an identity belongs to (a hash of the name, stable across runs)."""
    return hashlib.sha256(identity.encode()).digest()[0] & 1


def subset_of(identity: str) -> int:
    """0 or 1: a second split, independent of `fold_of`, for trying a change on half the
    people first (`--subset`); within it the folds still split it in two."""
    return hashlib.sha256(identity.encode()).digest()[1] & 1


@dataclass(frozen=True)
class Protocol:
    """How transactions are made. attempts: the kiosk's max_face_attempts; frames: good frames
    per decision (vision.session_frames); budget: frames an attempt may take to find them."""

    attempts: int = 3
    frames: int = 5
    budget: int = 15
    enrol_min_face_px: int = 110
    seed: int = 0


@dataclass(eq=False)
class PhotoResult:
    """One photo seen as an enrolment photo. `refused` is the gate's message id (or None)."""

    path: str
    identity: str
    faces: int = 0
    refused: str | None = None
    template: np.ndarray | None = None  # only when every enrolment gate passed
    raw: np.ndarray | None = None  # the template whatever the gates said (the no-gate baseline)
    measures: dict[str, float] = field(default_factory=dict)  # the gates' numbers (tuning)
    face_px: int = 0
    live_ok: bool = False  # passes the kiosk's gates (but size) as it is: usable as a live source
    anchor: tuple[float, float] = (0.5, 0.5)  # face centre, fractions of width and height
    face_frac: float = 0.0  # face box height / photo height
    mirror: np.ndarray | None = None  # the mirrored chip's descriptor (flip test-time augmentation)


@dataclass(eq=False)
class LiveResult:
    """One identity's attempts at the kiosk: per attempt the good frames' templates."""

    identity: str
    attempts: list[list[np.ndarray]] = field(default_factory=list)
    frames_seen: int = 0
    gate_failures: dict[str, int] = field(default_factory=dict)
    mirrors: list[list[np.ndarray]] = field(default_factory=list)  # the same frames' mirrored descriptors
