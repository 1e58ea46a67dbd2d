"""Job results kept between runs, keyed by the photo's bytes, the settings and the code that makes them."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kiosk.vision.evaluation.data import LiveResult, PhotoResult, identity_of
from kiosk.vision.evaluation.jobs import live_job, photo_job
from kiosk.vision.evaluation.runner import Progress, run_jobs

# The code that makes a photo's verdict and template or a synthesised frame's: whole modules,
# or (module, names) where a module also holds code no result depends on (the wire and card
# encodings in template.py, the enrolment wrappers in enroll.py).
_PIPELINE_SOURCES: tuple[str | tuple[str, tuple[str, ...]], ...] = (
    "kiosk.vision.detect",
    "kiosk.vision.landmarks",
    "kiosk.vision.quality",
    # not combine/compute_template/FLIP_TTA: results keep both descriptors, the analysis combines them
    ("kiosk.vision.template", ("CHIP_SIZE", "PADDING", "JITTERS", "face_chip", "descriptors")),
    ("kiosk.vision.enroll", ("EnrolmentRefused", "PhotoFace", "load_photo", "inspect_photo")),
    "kiosk.vision.pipeline",
    "kiosk.vision.track",
    "kiosk.hardware.camera.synthetic",
)


def _source_of(module: str, names: tuple[str, ...] | None = None) -> str:
    import importlib
    import inspect

    mod = importlib.import_module(module)
    if names is None:
        return inspect.getsource(mod)
    parts = []
    for n in names:
        obj = getattr(mod, n)
        own = inspect.isfunction(obj) or inspect.isclass(obj)
        own = own and getattr(obj, "__module__", None) == module
        parts.append(inspect.getsource(obj) if own else f"{n} = {obj!r}")
    return "\n".join(parts)


def pipeline_fingerprint() -> str:
    """A hash of the code that makes a result and of the libraries' versions: a change to
    any of it (a gate, the template, the synthesis, the jobs) makes every cached result
    stale. Other code (the analysis, the template's wire encodings) may change without
    re-computing."""
    import inspect

    import cv2
    import dlib

    from kiosk.config import VisionTable

    h = hashlib.sha256()
    for src in _PIPELINE_SOURCES:
        module, names = (src, None) if isinstance(src, str) else src
        h.update(module.encode())
        h.update(_source_of(module, names).encode())
    for fn in (photo_job, live_job, PhotoResult, LiveResult):
        h.update(inspect.getsource(fn).encode())
    v = VisionTable()
    h.update(f"{v.detect_every} {v.detect_min_face_px} {v.min_face_px}".encode())
    h.update(f"dlib {dlib.__version__} cv2 {cv2.__version__} numpy {np.__version__}".encode())
    return h.hexdigest()[:16]


def file_sha(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _t_out(t: np.ndarray | None) -> str | None:
    return None if t is None else np.asarray(t, "<f2").tobytes().hex()


def _t_in(h: str | None) -> np.ndarray | None:
    return None if h is None else np.frombuffer(bytes.fromhex(h), "<f2").astype(np.float16)


def _photo_out(r: PhotoResult) -> dict[str, Any]:
    return {
        "faces": r.faces,
        "refused": r.refused,
        "template": _t_out(r.template),
        "raw": _t_out(r.raw),
        "mirror": _t_out(r.mirror),
        "measures": r.measures,
        "face_px": r.face_px,
        "live_ok": r.live_ok,
        "anchor": list(r.anchor),
        "face_frac": r.face_frac,
    }


def _photo_in(path: str, d: dict[str, Any]) -> PhotoResult:
    a = d["anchor"]
    return PhotoResult(
        path,
        identity_of(Path(path)),
        d["faces"],
        d["refused"],
        _t_in(d["template"]),
        _t_in(d["raw"]),
        d["measures"],
        d["face_px"],
        d["live_ok"],
        (float(a[0]), float(a[1])),
        d["face_frac"],
        _t_in(d.get("mirror")),
    )


def _live_out(r: LiveResult) -> dict[str, Any]:
    return {
        "attempts": [[_t_out(t) for t in att] for att in r.attempts],
        "mirrors": [[_t_out(t) for t in att] for att in r.mirrors],
        "frames_seen": r.frames_seen,
        "gate_failures": r.gate_failures,
    }


def _live_in(identity: str, d: dict[str, Any]) -> LiveResult:
    def templates(rows: list[list[str | None]]) -> list[list[np.ndarray]]:
        return [[t for t in (_t_in(h) for h in att) if t is not None] for att in rows]

    return LiveResult(identity, templates(d["attempts"]), d["frames_seen"], d["gate_failures"],
                      templates(d.get("mirrors", [])))


class ResultCache:
    """Job results on disk, one JSON line per result, keyed by content (not by path).

    The file name carries the stage, its parameters and `pipeline_fingerprint()`, so a
    result is only ever re-used by the code and settings that would recompute it. Lines are
    appended as results arrive, so a stopped run keeps what it finished. The file holds face
    templates of the evaluation data: it is created owner-only, and belongs in a work
    directory that is deleted with the data, never next to the kiosk's own files.
    """

    def __init__(self, directory: Path, stage: str, params: str) -> None:
        tag = hashlib.sha256(f"{params} {pipeline_fingerprint()}".encode()).hexdigest()[:16]
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{stage}-{tag}.jsonl"
        self._have: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            with self.path.open(encoding="utf-8") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue  # the last line of a run killed mid-write
                    self._have[rec["key"]] = rec["value"]
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def __len__(self) -> int:
        return len(self._have)

    def get(self, key: str) -> dict[str, Any] | None:
        return self._have.get(key)

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._have[key] = value
        os.write(self._fd, (json.dumps({"key": key, "value": value}) + "\n").encode())

    def close(self) -> None:
        os.close(self._fd)


def cached_jobs(
    fn: Callable[[Any], Any],
    items: list[Any],
    keys: list[str],
    cache: ResultCache | None,
    dump: Callable[[Any], dict[str, Any]],
    load: Callable[[Any, dict[str, Any]], Any],
    jobs: int,
    label: str,
    progress: Progress,
) -> list[Any]:
    """`run_jobs` over the items the cache lacks; the others come from the cache.

    load(item, value) rebuilds a result from its cached value; results of the workers are
    written to the cache as they arrive (keys travel with the item through the pool).
    """
    if cache is None:
        return run_jobs(fn, items, jobs, label, progress)
    out: list[Any] = []
    todo: list[tuple[str, Any]] = []
    for key, it in zip(keys, items, strict=True):
        hit = cache.get(key)
        if hit is None:
            todo.append((key, it))
        else:
            out.append(load(it, hit))
    if out:
        progress._say(f"{label}: {len(out)} from the cache {cache.path}")

    def store(result: tuple[str, Any]) -> Any:
        cache.put(result[0], dump(result[1]))
        return result[1]

    out += run_jobs(_Keyed(fn), todo, jobs, label, progress, on_result=store)
    return out


class _Keyed:
    """fn over (key, item) → (key, result), picklable for the pool."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, ki: tuple[str, Any]) -> tuple[str, Any]:
        return ki[0], self.fn(ki[1])
