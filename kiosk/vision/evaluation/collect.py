"""One evaluation run: every photo judged and templated, enrolments and live sources picked, the
kiosk's attempts run (`Run`); `with_template` re-makes its templates another way."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kiosk.errors import FormatError, NoInputError
from kiosk.vision.evaluation.cache import (
    ResultCache,
    _live_in,
    _live_out,
    _photo_in,
    _photo_out,
    cached_jobs,
    file_sha,
)
from kiosk.vision.evaluation.data import LiveResult, PhotoResult, Protocol, identity_of, list_images, subset_of
from kiosk.vision.evaluation.jobs import live_job, photo_job
from kiosk.vision.evaluation.runner import Progress


@dataclass(eq=False)
class Run:
    """Everything one evaluation computed (templates in memory only)."""

    photos: list[PhotoResult]
    enrol_ids: list[str]
    enrolled: np.ndarray
    lives: list[LiveResult]
    genuine_population: int
    fte: list[str]
    no_live_source: list[str]
    protocol: Protocol
    seconds: float = 0.0
    live_sources: dict[str, str] = field(default_factory=dict)  # identity → its live-source photo
    enrol_paths: list[str] = field(default_factory=list)  # the enrolment photo of each enrol_ids entry
    template: str = "plain"  # "plain" or "flip" (`with_template`)


TEMPLATE_KINDS = ("plain", "flip")


def with_template(run: Run, kind: str) -> Run:
    """The run with every template made the `kind` way from the descriptors it kept:
    "plain" the chip's descriptor (as collected), "flip" the chip's and its mirror's
    combined by `template.combine`, at enrolment and on every live frame alike."""
    from kiosk.vision.template import combine

    if kind not in TEMPLATE_KINDS:
        raise ValueError(f"unknown template kind {kind!r}; known: {', '.join(TEMPLATE_KINDS)}")
    if kind == "plain":
        return run

    def flip(t: np.ndarray | None, m: np.ndarray | None) -> np.ndarray | None:
        if t is None:
            return None
        if m is None:
            raise FormatError("these results kept no mirrored descriptor: flip templates cannot be made from them")
        return combine(np.stack([t, m]))

    photos = [
        PhotoResult(r.path, r.identity, r.faces, r.refused, flip(r.template, r.mirror), flip(r.raw, r.mirror),
                    r.measures, r.face_px, r.live_ok, r.anchor, r.face_frac, None)
        for r in run.photos
    ]
    lives = []
    for x in run.lives:
        atts = [[flip(t, m) for t, m in zip(a, ms, strict=True)] for a, ms in zip(x.attempts, x.mirrors, strict=True)]
        lives.append(LiveResult(x.identity, atts, x.frames_seen, x.gate_failures))  # type: ignore[arg-type]
    by_path = {r.path: r for r in photos}
    enrolled = np.stack([by_path[p].template.astype(np.float32) for p in run.enrol_paths])  # type: ignore[union-attr]
    return Run(photos, run.enrol_ids, enrolled, lives, run.genuine_population, run.fte, run.no_live_source,
               run.protocol, run.seconds, run.live_sources, run.enrol_paths, kind)


def collect(
    data: Path,
    protocol: Protocol,
    limit: int | None = None,
    jobs: int = 1,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
    live: bool = True,
    subset: int | None = None,
) -> Run:
    """Judge and template every photo, pick enrolments and live sources, run the kiosk's attempts.

    With `cache_dir`, results computed by an earlier run of the same code and settings are
    re-used (see `ResultCache`). `live=False` stops before the kiosk's attempts (no frames
    synthesised): enough for `plain_baseline`, a fraction of the time.
    """
    progress = progress or Progress(None)
    start = time.monotonic()
    files = list_images(data, limit)
    if subset is not None:
        files = [p for p in files if subset_of(identity_of(p)) == subset]
    if not files:
        raise NoInputError(f"{data}: no photos named identity__NN.ext found")
    shas = {str(p): file_sha(p) for p in files} if cache_dir else {}
    photo_cache = (
        ResultCache(cache_dir, "photos", f"min_face_px={protocol.enrol_min_face_px}") if cache_dir else None
    )
    live_cache = (
        ResultCache(
            cache_dir,
            "live",
            f"attempts={protocol.attempts} frames={protocol.frames} budget={protocol.budget} seed={protocol.seed}",
        )
        if cache_dir
        else None
    )
    try:
        return _collect(files, shas, protocol, jobs, progress, photo_cache, live_cache, start, live)
    finally:
        for c in (photo_cache, live_cache):
            if c is not None:
                c.close()


def _collect(
    files: list[Path],
    shas: dict[str, str],
    protocol: Protocol,
    jobs: int,
    progress: Progress,
    photo_cache: ResultCache | None,
    live_cache: ResultCache | None,
    start: float,
    live: bool = True,
) -> Run:
    photo_items = [(str(p), protocol.enrol_min_face_px) for p in files]
    photos = cached_jobs(
        photo_job,
        photo_items,
        [shas.get(it[0], "") for it in photo_items],
        photo_cache,
        _photo_out,
        lambda it, v: _photo_in(it[0], v),
        jobs,
        "photos",
        progress,
    )
    photos.sort(key=lambda r: r.path)
    by_id: dict[str, list[PhotoResult]] = {}
    for r in photos:
        by_id.setdefault(r.identity, []).append(r)
    enrol_ids: list[str] = []
    enrol_paths: list[str] = []
    templates: list[np.ndarray] = []
    live_args = []
    fte: list[str] = []
    no_live: list[str] = []
    live_sources: dict[str, str] = {}
    population = 0
    for name, rs in sorted(by_id.items()):
        enrol = next((r for r in rs if r.template is not None), None)
        if len(rs) >= 2:
            population += 1
        if enrol is None:
            if len(rs) >= 2:
                fte.append(name)
            continue
        enrol_ids.append(name)
        enrol_paths.append(enrol.path)
        assert enrol.template is not None
        templates.append(enrol.template.astype(np.float32))
        if len(rs) < 2:
            continue
        src = next((r for r in rs if r is not enrol and r.live_ok), None)
        if src is None:
            no_live.append(name)
            continue
        live_args.append((name, src.path, src.anchor, src.face_frac, protocol))
        live_sources[name] = src.path
    if not live:
        live_args = []
    lives = cached_jobs(
        live_job,
        live_args,
        [f"{shas.get(a[1], '')} {a[0]} {a[2]} {a[3]}" for a in live_args],
        live_cache,
        _live_out,
        lambda it, v: _live_in(it[0], v),
        jobs,
        "kiosk attempts",
        progress,
    )
    lives.sort(key=lambda x: x.identity)
    enrolled = np.stack(templates) if templates else np.zeros((0, 128), np.float32)
    return Run(
        photos,
        enrol_ids,
        enrolled,
        lives,
        population,
        fte,
        no_live,
        protocol,
        time.monotonic() - start,
        live_sources,
        enrol_paths,
    )
