"""Measure what a clinic needs: per-check-in error rates with the kiosk's attempt budget.

Data: photos named `identity__NN.ext` (identity in the file name), e.g.
../shared/data/faces-identity/. Per identity:
- enrolment: the first photo (sorted) that passes the enrolment gates (kiosk.vision.enroll,
  several faces: the largest, as the desk would crop after confirming); none = a failure to
  enrol, counted;
- live side: another photo of the same person that passes the kiosk's own gates at its
  native resolution stands in for the person at the kiosk; the kiosk's camera frames are
  *synthesised* from it (kiosk.hardware.camera.synthetic: size, sway, light, sensor noise,
  blur, head roll) and run through the kiosk's FacePipeline (tracking, quality gates, the
  shared template function). One attempt is `frames` good frames of one track within a
  budget of frames; fewer is a refusal, and a refusal counts as a rejection.
A check-in (a transaction) is up to `attempts` decisions (the kiosk's `max_face_attempts`,
which belongs to the pass per lockout window); it is accepted when any decision matches.
Genuine transactions: each identity's live frames against its own enrolment. Impostor
transactions: each identity's live frames against every other identity's enrolment.
The threshold is chosen on one half of the identities and reported on the other half
(2-fold, identities split by a hash of the name), so the figures are for people the
choice never saw. Templates and frames stay in memory unless a cache directory is given
(`ResultCache`): then each photo's and each live source's results are kept there between
runs, keyed by the photo's bytes and everything that shapes the result, so threshold and
rule experiments re-use them instead of recomputing an hour of templates.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import math
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from kiosk.errors import FormatError, KioskError, NoInputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
GRID = np.round(np.arange(0.300, 0.800, 0.0025), 4)
FUSION_RULE_NAME = "mean-template"  # one frame: every rule gives the same distance
FRAME_COUNTS = (1, 3, 5)


# --- statistics ---------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    # continued fraction of the incomplete beta function (modified Lentz)
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-13:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln) * _betacf(a, b, x) / a
    return 1.0 - math.exp(ln) * _betacf(b, a, 1.0 - x) / b


def _beta_ppf(q: float, a: float, b: float) -> float:
    lo, hi = 0.0, 1.0
    for _ in range(200):  # bisection: slow but sure, and these are a handful of calls
        mid = (lo + hi) / 2
        if betainc(a, b, mid) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    return (lo + hi) / 2


def clopper_pearson(x: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper–Pearson) two-sided interval of a binomial rate x/n."""
    if n <= 0:
        return math.nan, math.nan
    if not 0 <= x <= n:
        raise ValueError("need 0 <= x <= n")
    alpha = 1.0 - confidence
    lo = 0.0 if x == 0 else _beta_ppf(alpha / 2, x, n - x + 1)
    hi = 1.0 if x == n else _beta_ppf(1 - alpha / 2, x + 1, n - x)
    return lo, hi


@dataclass(frozen=True)
class Rate:
    """x events in n trials, with the Clopper–Pearson 95 % interval."""

    x: int
    n: int

    @property
    def rate(self) -> float:
        return self.x / self.n if self.n else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        return clopper_pearson(self.x, self.n)

    def as_dict(self) -> dict[str, Any]:
        lo, hi = self.interval
        return {"x": self.x, "n": self.n, "rate": self.rate, "ci95": [lo, hi]}

    def __str__(self) -> str:
        if not self.n:
            return "n/a (0 trials)"
        lo, hi = self.interval
        return f"{100 * self.rate:.3f} % ({self.x:,}/{self.n:,}; 95 % CI {100 * lo:.3f}–{100 * hi:.3f} %)"


# --- data -------------------------------------------------------------------------------


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


# --- workers ------------------------------------------------------------------------------


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


# --- running many jobs: progress on stderr, a clean stop ---------------------------------


class Progress:
    """One line on `stream` every `every_s` seconds: done/total, elapsed, time left."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 5.0) -> None:
        self.stream, self.every_s = stream, every_s
        self._last = -math.inf
        self._start = time.monotonic()

    def start(self, label: str, total: int, jobs: int) -> None:
        self._start, self._last = time.monotonic(), time.monotonic()
        self._say(f"{label}: {total} to do with {jobs} worker(s)")

    def tick(self, label: str, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < self.every_s and done < total:
            return
        self._last = now
        spent = now - self._start
        left = spent / done * (total - done) if done else math.nan
        self._say(
            f"{label}: {done}/{total} ({100 * done / max(total, 1):.0f} %), {spent:.0f} s, ~{left:.0f} s left"
        )

    def _say(self, line: str) -> None:
        if self.stream is not None:
            print(f"evaluate: {line}", file=self.stream, flush=True)


def run_jobs(
    fn: Callable[[Any], Any],
    items: list[Any],
    jobs: int,
    label: str,
    progress: Progress,
    on_result: Callable[[Any], Any] | None = None,
) -> list[Any]:
    """fn over items in `jobs` worker processes (order not kept), reporting progress.

    On KeyboardInterrupt (Ctrl-C, or SIGTERM turned into it by the CLI) the workers are
    terminated and reaped before the exception goes on: no orphans. Workers also die with
    the parent if it is killed outright (Linux PR_SET_PDEATHSIG). `on_result` maps each
    result as it arrives (the cache stores it there).
    """
    keep = on_result or (lambda r: r)
    progress.start(label, len(items), jobs)
    results: list[Any] = []
    if jobs <= 1 or len(items) <= 1:
        for it in items:
            results.append(keep(fn(it)))
            progress.tick(label, len(results), len(items))
        return results
    pool = mp.get_context("fork").Pool(jobs, initializer=_worker_init)
    try:
        for r in pool.imap_unordered(fn, items, chunksize=4):
            results.append(keep(r))
            progress.tick(label, len(results), len(items))
    finally:
        pool.terminate()
        pool.join()
    return results


# --- results kept between runs ------------------------------------------------------------

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


# --- transactions ---------------------------------------------------------------------------


@dataclass(eq=False)
class Scores:
    """Per-transaction scores (the smallest fused distance over the attempts; inf = refused).

    genuine[i]: live identity i against its own enrolment. impostor[i, j]: live identity i
    against enrolment j (nan where they are the same person).
    """

    genuine: np.ndarray
    impostor: np.ndarray


def attempt_scores(sealed: np.ndarray, live: LiveResult, rule: str, frames: int, attempts: int) -> np.ndarray:
    """(m,) per-transaction scores of one live identity against m sealed templates."""
    from kiosk.vision.verify import FUSION_RULES

    best = np.full(sealed.shape[0], np.inf, np.float32)
    for att in live.attempts[:attempts]:
        if len(att) < frames:
            continue  # refused: no decision, which for a genuine person is a rejection
        lives = np.stack([t.astype(np.float32) for t in att[:frames]])
        best = np.minimum(best, FUSION_RULES[rule](sealed, lives))
    return best


def transaction_scores(
    enrolled: np.ndarray, enrol_ids: list[str], lives: list[LiveResult], rule: str, frames: int, attempts: int
) -> Scores:
    """Scores of every live identity against its own and every other enrolment."""
    index = {name: j for j, name in enumerate(enrol_ids)}
    gen = np.empty(len(lives), np.float32)
    imp = np.empty((len(lives), len(enrol_ids)), np.float32)
    for i, live in enumerate(lives):
        row = attempt_scores(enrolled, live, rule, frames, attempts)
        j = index[live.identity]
        gen[i] = row[j]
        row[j] = np.nan
        imp[i] = row
    return Scores(gen, imp)


def fnmr_at(genuine: np.ndarray, t: float) -> Rate:
    """Genuine transactions not accepted at t (refusals included: their score is inf)."""
    return Rate(int(np.count_nonzero(~(genuine < t))), int(genuine.size))


def fmr_at(impostor_sorted: np.ndarray, t: float) -> Rate:
    """Impostor transactions accepted at t, from the sorted finite impostor scores."""
    return Rate(int(np.searchsorted(impostor_sorted, t, side="left")), int(impostor_sorted.size))


def choose_threshold(impostor_sorted: np.ndarray, target_fmr: float, margin: float) -> float:
    """The largest grid threshold whose FMR's 95 % upper bound is ≤ target × margin.

    The upper bound (not the point estimate) guards against the luck of one sample; the
    margin leaves room for people the choice never saw. FNMR falls as the threshold rises,
    so the largest admissible threshold is the best one.
    """
    if not impostor_sorted.size:
        raise FormatError("no impostor transactions: need photos of at least two identities")
    limit = target_fmr * margin
    lo, hi = 0, len(GRID) - 1
    if fmr_at(impostor_sorted, float(GRID[0])).interval[1] > limit:
        return float(GRID[0])
    while lo < hi:  # FMR's upper bound grows with t: bisect for the last grid point under the limit
        mid = (lo + hi + 1) // 2
        if fmr_at(impostor_sorted, float(GRID[mid])).interval[1] <= limit:
            lo = mid
        else:
            hi = mid - 1
    return float(GRID[lo])


def _fold_masks(names: list[str]) -> np.ndarray:
    return np.array([fold_of(n) for n in names], dtype=np.int8)


def cross_validate(
    scores: Scores, live_ids: list[str], enrol_ids: list[str], target_fmr: float, margin: float
) -> dict[str, Any]:
    """Choose on one half of the identities, report on the other; both ways, pooled."""
    lf, ef = _fold_masks(live_ids), _fold_masks(enrol_ids)
    folds: list[dict[str, Any]] = []
    pooled_fn = [0, 0]
    pooled_fm = [0, 0]
    for half in (0, 1):
        if not (np.any(lf == half) and np.count_nonzero(ef == half) >= 2):
            raise FormatError(
                "too few identities to choose on one half and test on the other: "
                "need live photos and at least two enrolled identities in each half"
            )
    for tune in (0, 1):
        test = 1 - tune
        tune_imp = scores.impostor[np.ix_(lf == tune, ef == tune)]
        test_imp = scores.impostor[np.ix_(lf == test, ef == test)]
        tune_sorted = np.sort(tune_imp[np.isfinite(tune_imp)])
        test_sorted = np.sort(test_imp[np.isfinite(test_imp)])
        t = choose_threshold(tune_sorted, target_fmr, margin)
        fn = fnmr_at(scores.genuine[lf == test], t)
        fm = fmr_at(test_sorted, t)
        pooled_fn = [pooled_fn[0] + fn.x, pooled_fn[1] + fn.n]
        pooled_fm = [pooled_fm[0] + fm.x, pooled_fm[1] + fm.n]
        folds.append(
            {
                "tuned_on": tune,
                "threshold": t,
                "tune_fnmr": fnmr_at(scores.genuine[lf == tune], t),
                "tune_fmr": fmr_at(tune_sorted, t),
                "held_out_fnmr": fn,
                "held_out_fmr": fm,
            }
        )
    return {
        "folds": folds,
        "threshold": min(f["threshold"] for f in folds),
        "held_out_fnmr": Rate(*pooled_fn),
        "held_out_fmr": Rate(*pooled_fm),
    }


def held_out_at(
    scores: Scores, live_ids: list[str], enrol_ids: list[str], thresholds: tuple[float, float]
) -> dict[str, Any]:
    """`cross_validate`'s held-out counts at given thresholds: thresholds[h] is the one chosen
    on half h, counted on the other half (the kiosk policy's joint choice)."""
    lf, ef = _fold_masks(live_ids), _fold_masks(enrol_ids)
    folds, fn_x, fn_n, fm_x, fm_n = [], 0, 0, 0, 0
    for tune in (0, 1):
        test, t = 1 - tune, thresholds[tune]
        test_imp = scores.impostor[np.ix_(lf == test, ef == test)]
        fn = fnmr_at(scores.genuine[lf == test], t)
        fm = fmr_at(np.sort(test_imp[np.isfinite(test_imp)]), t)
        fn_x, fn_n, fm_x, fm_n = fn_x + fn.x, fn_n + fn.n, fm_x + fm.x, fm_n + fm.n
        folds.append({"tuned_on": tune, "threshold": t, "held_out_fnmr": fn, "held_out_fmr": fm})
    return {"folds": folds, "threshold": min(thresholds), "held_out_fnmr": Rate(fn_x, fn_n),
            "held_out_fmr": Rate(fm_x, fm_n)}


def joint_policy(
    single: dict[str, Any], multi: dict[str, Any], scores: dict[str, Scores], live_ids: list[str],
    enrol_ids: list[str], several: np.ndarray,
) -> dict[str, Any]:
    """One threshold for a kiosk whose passes were enrolled from one photo or from several.

    A mean template sits nearer to everyone, strangers included, so the two kinds of
    enrolment choose different thresholds; the kiosk has one. Per tuning half it takes the
    lower choice, which keeps each kind's FMR under its own bound; the held-out halves are
    then counted at it, each kind on its own and the multi-photo kind on the people who
    really had several photos.
    """
    joint = (
        min(single["folds"][0]["threshold"], multi["folds"][0]["threshold"]),
        min(single["folds"][1]["threshold"], multi["folds"][1]["threshold"]),
    )
    out: dict[str, Any] = {"thresholds": list(joint), "threshold": min(joint)}
    for kind, sc in scores.items():
        res = held_out_at(sc, live_ids, enrol_ids, joint)
        res["subset_with_several"] = held_out_subset_fnmr(sc.genuine, live_ids, res, several)
        out[kind] = res
    return out


def per_identity(
    scores: Scores, live_ids: list[str], enrol_ids: list[str], t: float, worst: int = 10
) -> dict[str, Any]:
    """How false matches spread over people: per enrolled identity, the share of strangers
    whose check-in it accepts; the worst identities and the spread."""
    imp = scores.impostor
    valid = np.isfinite(imp) | np.isnan(imp)
    trials = np.count_nonzero(valid & ~np.isnan(imp), axis=0)
    hits = np.count_nonzero(np.nan_to_num(imp, nan=np.inf) < t, axis=0)
    keep = trials > 0
    rates = np.where(keep, hits / np.maximum(trials, 1), 0.0)
    order = np.argsort(-rates, kind="stable")
    total = int(hits.sum())
    top = max(1, int(math.ceil(0.01 * keep.sum())))
    spread = (
        {f"p{p:g}": float(np.percentile(rates[keep], p)) for p in (50, 90, 99, 99.9)} if keep.any() else {}
    )
    spread["max"] = float(rates[keep].max()) if keep.any() else math.nan
    live_hits = np.count_nonzero(np.nan_to_num(imp, nan=np.inf) < t, axis=1)
    return {
        "threshold": t,
        "enrolled_identities": int(keep.sum()),
        "identities_with_a_false_match": int(np.count_nonzero(hits[keep])),
        "false_matches": total,
        "share_from_worst_1pct": (float(np.sort(hits[keep])[::-1][:top].sum()) / total) if total else 0.0,
        "spread": spread,
        "worst_enrolled": [
            {"identity": enrol_ids[j], "false_matches": int(hits[j]), "strangers": int(trials[j])}
            for j in order[:worst]
            if hits[j] > 0
        ],
        "worst_live": [
            {"identity": live_ids[i], "false_matches": int(live_hits[i])}
            for i in np.argsort(-live_hits, kind="stable")[:worst]
            if live_hits[i] > 0
        ],
        "rejected_genuine": [live_ids[i] for i in np.flatnonzero(~(scores.genuine < t))[:worst]],
    }


def per_group(
    scores: Scores, live_ids: list[str], enrol_ids: list[str], t: float, groups: dict[str, str]
) -> dict[str, Any]:
    """FNMR by the live person's group and FMR by the enrolled person's group."""
    out: dict[str, Any] = {}
    lg = np.array([groups.get(n, "") for n in live_ids])
    eg = np.array([groups.get(n, "") for n in enrol_ids])
    for g in sorted(set(groups.values())):
        col = scores.impostor[:, eg == g]
        fin = col[~np.isnan(col)]
        out[g] = {
            "fnmr": fnmr_at(scores.genuine[lg == g], t),
            "fmr": Rate(int(np.count_nonzero(fin < t)), int(fin.size)),
        }
    return out


# --- other enrolments and the no-gate baseline ------------------------------------------------

MULTI_ENROL_PHOTOS = 3  # photos the desk takes when it has the patient in front of its camera


def multi_photo_enrolment(run: Run, most: int = MULTI_ENROL_PHOTOS) -> tuple[np.ndarray, np.ndarray]:
    """Sealed templates when the desk enrols from up to `most` photos, as `kiosk face enroll`
    does with several photos: the mean of the gate-passing photos of each enrolled identity
    other than its live source (the first of them is the single-photo enrolment). Returns
    the (m, 128) templates, rounded to float16 as sealed, and which identities had ≥ 2."""
    by_id: dict[str, list[PhotoResult]] = {}
    for r in run.photos:
        by_id.setdefault(r.identity, []).append(r)
    out = np.empty_like(run.enrolled)
    multi = np.zeros(len(run.enrol_ids), bool)
    for j, name in enumerate(run.enrol_ids):
        live = run.live_sources.get(name)
        ok = [r.template for r in by_id[name] if r.template is not None and r.path != live][:most]
        mean = np.mean([t.astype(np.float32) for t in ok if t is not None], axis=0)
        out[j] = mean.astype(np.float16).astype(np.float32)
        multi[j] = len(ok) >= 2
    return out, multi


def held_out_subset_fnmr(genuine: np.ndarray, live_ids: list[str], cv: dict[str, Any], keep: np.ndarray) -> Rate:
    """FNMR of the genuine transactions in `keep`, each counted at the threshold its other half chose."""
    lf = _fold_masks(live_ids)
    x = n = 0
    for f in cv["folds"]:
        r = fnmr_at(genuine[(lf == 1 - f["tuned_on"]) & keep], f["threshold"])
        x, n = x + r.x, n + r.n
    return Rate(x, n)


def _one_frame_lives(pairs: list[tuple[str, np.ndarray]]) -> list[LiveResult]:
    return [LiveResult(name, [[t]], 1) for name, t in pairs]


def plain_baseline(run: Run, target_fmr: float, margin: float) -> dict[str, Any]:
    """dlib's descriptor photo against photo, no synthesis, one comparison each.

    single / multi_photo: the kiosk's own people, enrolled from one photo or from up to
    `MULTI_ENROL_PHOTOS` (`multi_photo_enrolment`), against their live-source photo as it
    is; impostors: every live-source photo against the other enrolments. Beside the
    kiosk's rows this says what the pipeline (synthesis, tracking, gates, retries) adds or
    loses on the same people; it needs no live frames (`collect(..., live=False)`).
    no_gates: every identity whose photos show a face, first photo against second, as if
    no gate refused anything: the ceiling of the descriptor on this data.
    """
    by_id: dict[str, list[PhotoResult]] = {}
    for r in run.photos:
        by_id.setdefault(r.identity, []).append(r)
    path_of = {r.path: r for r in run.photos}
    probes = [(n, path_of[p].raw) for n, p in sorted(run.live_sources.items())]
    lives = _one_frame_lives([(n, t) for n, t in probes if t is not None])
    live_ids = [x.identity for x in lives]
    multi_enrolled, several = multi_photo_enrolment(run)
    index = {n: j for j, n in enumerate(run.enrol_ids)}
    has_several = np.array([bool(several[index[n]]) for n in live_ids], bool)
    rows: dict[str, Any] = {"genuine_pairs": len(lives), "genuine_with_several": int(has_several.sum())}
    kinds: dict[str, Scores] = {}
    for label, enrolled in (("single", run.enrolled), ("multi_photo", multi_enrolled)):
        sc = transaction_scores(enrolled, run.enrol_ids, lives, FUSION_RULE_NAME, 1, 1)
        cv = cross_validate(sc, live_ids, run.enrol_ids, target_fmr, margin)
        cv["subset_with_several"] = held_out_subset_fnmr(sc.genuine, live_ids, cv, has_several)
        rows[label], kinds[label] = cv, sc
    rows["joint"] = joint_policy(rows["single"], rows["multi_photo"], kinds, live_ids, run.enrol_ids, has_several)
    ids, first_t, pairs = [], [], []
    for name, rs in sorted(by_id.items()):
        faces = [r.raw for r in rs if r.raw is not None]
        if not faces:
            continue
        ids.append(name)
        first_t.append(np.asarray(faces[0], np.float32))
        if len(faces) >= 2:
            pairs.append((name, faces[1]))
    lives2 = _one_frame_lives(pairs)
    sc2 = transaction_scores(np.stack(first_t), ids, lives2, FUSION_RULE_NAME, 1, 1)
    rows["no_gates"] = cross_validate(sc2, [x.identity for x in lives2], ids, target_fmr, margin)
    rows["no_gates_identities"] = len(ids)
    rows["no_gates_genuine_pairs"] = len(lives2)
    return rows


def photo_counts(run: Run) -> dict[str, Any]:
    """What the enrolment gates did to the photos, and who is left to score."""
    refused: dict[str, int] = {}
    for p in run.photos:
        if p.refused:
            refused[p.refused] = refused.get(p.refused, 0) + 1
    return {
        "photos": len(run.photos),
        "photos_product_size_gate_ok": sum(1 for p in run.photos if p.face_px >= 110),
        "enrolment_refusals": refused,
        "identities": len({p.identity for p in run.photos}),
        "identities_enrolled": len(run.enrol_ids),
        "genuine_population": run.genuine_population,
        "failure_to_enrol": len(run.fte),
        "no_live_source": len(run.no_live_source),
        "live_sources": len(run.live_sources),
    }


# --- the whole run ---------------------------------------------------------------------------


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
            raise FormatError("the cached results have no mirrored descriptors: re-run without --cache")
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


def analyse(
    run: Run,
    target_fmr: float = 0.001,
    margin: float = 0.5,
    rule: str | None = None,
    groups: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Every rule × frame count cross-validated; the chosen rule's figures in detail."""
    from kiosk.vision.verify import FUSION_RULE, FUSION_RULES

    proto = run.protocol
    live_ids = [x.identity for x in run.lives]
    table: dict[str, dict[int, dict[str, Any]]] = {}
    cached: dict[tuple[str, int], Scores] = {}
    for r in FUSION_RULES:
        for n in sorted(set(FRAME_COUNTS) | {proto.frames}):
            if n > proto.frames or (n == 1 and r != FUSION_RULE):
                continue  # one frame: every rule is the same
            sc = transaction_scores(run.enrolled, run.enrol_ids, run.lives, r, n, proto.attempts)
            cached[(r, n)] = sc
            table.setdefault(r, {})[n] = cross_validate(sc, live_ids, run.enrol_ids, target_fmr, margin)
    chosen_rule = rule or FUSION_RULE
    main = table[chosen_rule][proto.frames]
    sc = cached[(chosen_rule, proto.frames)]
    multi_enrolled, multi = multi_photo_enrolment(run)
    msc = transaction_scores(multi_enrolled, run.enrol_ids, run.lives, chosen_rule, proto.frames, proto.attempts)
    mcv = cross_validate(msc, live_ids, run.enrol_ids, target_fmr, margin)
    index = {n: j for j, n in enumerate(run.enrol_ids)}
    has_multi = np.array([bool(multi[index[n]]) for n in live_ids], bool)
    policy = joint_policy(main, mcv, {"single": sc, "multi_photo": msc}, live_ids, run.enrol_ids, has_multi)
    # the kiosk's threshold: the lowest any half chose for either kind of enrolment
    t = policy["threshold"]
    imp_all = np.sort(sc.impostor[np.isfinite(sc.impostor)])
    # one frame, one comparison, no retries: the old per-comparison view, same protocol otherwise
    single = transaction_scores(run.enrolled, run.enrol_ids, run.lives, FUSION_RULE, 1, 1)
    gate: dict[str, int] = {}
    for x in run.lives:
        for k, v in x.gate_failures.items():
            gate[k] = gate.get(k, 0) + v
    refused_tx = sum(1 for x in run.lives if all(len(a) < proto.frames for a in x.attempts[: proto.attempts]))
    strict_fn = fnmr_at(sc.genuine, t)
    # one decision alone: the attempts of one check-in here come from one photo, so they are
    # more alike than a real person's retries; attempts × one decision's bound covers that
    one = transaction_scores(run.enrolled, run.enrol_ids, run.lives, chosen_rule, proto.frames, 1)
    one_fmr = fmr_at(np.sort(one.impostor[np.isfinite(one.impostor)]), t)
    out = {
        "protocol": {
            "attempts": proto.attempts,
            "frames": proto.frames,
            "frame_budget": proto.budget,
            "enrol_min_face_px": proto.enrol_min_face_px,
            "target_fmr": target_fmr,
            "margin": margin,
            "seed": proto.seed,
        },
        **photo_counts(run),
        "genuine_transactions": len(run.lives),
        "transactions_refused_every_attempt": refused_tx,
        "live_frames": sum(x.frames_seen for x in run.lives),
        "live_gate_failures": gate,
        "rule": chosen_rule,
        "template": run.template,
        "threshold": t,
        "cross_validated": table,
        "single_frame": {
            "per_transaction": table[FUSION_RULE][1],
            "per_comparison": cross_validate(single, live_ids, run.enrol_ids, target_fmr, margin),
        },
        "all_data_at_threshold": {
            "fnmr": strict_fn,
            "fmr": fmr_at(imp_all, t),
            "fnmr_counting_failure_to_enrol": Rate(strict_fn.x + len(run.fte), strict_fn.n + len(run.fte)),
            "fmr_one_decision": one_fmr,
            "fmr_bound_attempts_x_one_decision": min(1.0, proto.attempts * one_fmr.interval[1]),
        },
        "per_identity": per_identity(sc, live_ids, run.enrol_ids, t),
        "seconds": round(run.seconds, 1),
    }
    m_imp = np.sort(msc.impostor[np.isfinite(msc.impostor)])
    out["kiosk_policy"] = policy
    out["multi_photo_enrolment"] = {
        "photos_at_most": MULTI_ENROL_PHOTOS,
        "identities_with_several": int(multi.sum()),
        "genuine_with_several": int(has_multi.sum()),
        "cross_validated": mcv,
        "subset_held_out_fnmr": held_out_subset_fnmr(msc.genuine, live_ids, mcv, has_multi),
        "subset_held_out_fnmr_single_photo": held_out_subset_fnmr(sc.genuine, live_ids, main, has_multi),
        "at_kiosk_threshold": {"fnmr": fnmr_at(msc.genuine, t), "fmr": fmr_at(m_imp, t)},
    }
    out["plain_photo_to_photo"] = plain_baseline(run, target_fmr, margin)
    if groups:
        out["per_group"] = per_group(sc, live_ids, run.enrol_ids, t, groups)
        out["per_group_multi_photo"] = per_group(msc, live_ids, run.enrol_ids, t, groups)
    return out


def to_jsonable(x: Any) -> Any:
    """Rates as {x, n, rate, ci95}; numpy scalars as Python numbers."""
    if isinstance(x, Rate):
        return x.as_dict()
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def iter_rows(report: dict[str, Any]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(rule, frames, cross-validated result) rows of the comparison table."""
    for r, by_n in report["cross_validated"].items():
        for n, res in sorted(by_n.items()):
            yield r, n, res


def read_groups(path: Path) -> dict[str, str]:
    """identity,group lines (a header line starting with 'identity' is skipped)."""
    out: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise NoInputError(f"{path}: cannot read the groups file ({e.strerror})") from None
    for line in text.splitlines():
        f = [c.strip() for c in line.split(",")]
        if len(f) >= 2 and f[0] and f[0] != "identity":
            out[f[0]] = f[1]
    return out
