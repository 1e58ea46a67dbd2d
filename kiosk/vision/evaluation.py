"""Measure the matcher: genuine and impostor distances, FMR/FNMR, and the threshold.

Data: a folder tree of photos named `identity__NN.ext` (identities in file names), e.g.
../shared/data/faces-identity/. Two views are reported:
- every same-identity pair (genuine) and every cross-identity pair (impostor): LFW's own
  protocol has only a few thousand impostor pairs, far too few to show an FMR of 0.1 %
  (DESIGN §7), while all cross pairs of ~4,000 photos are millions;
- LFW's pairs protocol (lfw/_meta/pairs.txt), for comparison with published numbers.

Templates are computed with the one shared `compute_template` and kept in memory only.
"""
from __future__ import annotations

import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from kiosk.errors import FormatError, KioskError, NoInputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
PERCENTILES = (0.1, 1, 5, 25, 50, 75, 95, 99, 99.9)


@dataclass
class Evaluation:
    """Summary numbers of one run (no templates, no per-person distances)."""

    images: int = 0
    faces_found: int = 0
    not_found: int = 0
    several_faces: int = 0
    identities: int = 0
    genuine: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    impostor_count: int = 0
    impostor_sorted_head: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    impostor_percentiles: dict[float, float] = field(default_factory=dict)
    lfw_pairs: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def identity_of(path: Path) -> str:
    """`Aaron_Sorkin__0002.jpg` → `Aaron_Sorkin`."""
    return path.stem.split("__")[0]


def list_images(data: Path, limit: int | None = None) -> list[Path]:
    """Photos under `data` (sorted; `_meta` folders skipped), the first `limit` of them."""
    files = sorted(p for p in data.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                   and "_meta" not in p.parts and "__" in p.stem)
    return files[:limit] if limit else files


def _template_of(path: str) -> tuple[str, np.ndarray | None, int]:
    """(path, template or None, faces seen). The subject is the face nearest the centre."""
    from kiosk.vision.detect import detect_faces_in_photo, to_grey
    from kiosk.vision.enroll import load_photo
    from kiosk.vision.landmarks import find_landmarks
    from kiosk.vision.template import compute_template

    try:
        image = load_photo(path)
    except KioskError:
        return path, None, 0
    grey = to_grey(image)
    boxes = detect_faces_in_photo(grey)
    if not boxes:
        return path, None, 0
    # photo collections (LFW) are cropped around their subject; bystanders sit off-centre
    h, w = grey.shape
    big = [b for b in boxes if b.width >= 0.5 * boxes[0].width]
    box = min(big, key=lambda b: (b.centre[0] - w / 2) ** 2 + (b.centre[1] - h / 2) ** 2)
    lm = find_landmarks(grey, box)
    return path, compute_template(image, lm), len(boxes)


def compute_templates(files: list[Path], jobs: int = 1) -> dict[str, tuple[np.ndarray | None, int]]:
    """Templates of `files` in memory, with `jobs` worker processes."""
    paths = [str(p) for p in files]
    if jobs <= 1:
        results: Iterable[tuple[str, np.ndarray | None, int]] = map(_template_of, paths)
        return {p: (t, n) for p, t, n in results}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return {p: (t, n) for p, t, n in pool.map(_template_of, paths, chunksize=16)}


def _pairwise(t: np.ndarray) -> np.ndarray:
    # ‖a−b‖² = ‖a‖² + ‖b‖² − 2a·b in float32; clamped, as rounding can dip below 0
    sq = np.einsum("ij,ij->i", t, t)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (t @ t.T)
    return np.sqrt(np.maximum(d2, 0.0)).astype(np.float32)


def _lfw_pairs(data: Path, by_path: dict[str, np.ndarray]) -> dict[str, Any]:
    pairs_file = data / "lfw" / "_meta" / "pairs.txt"
    if not pairs_file.is_file():
        return {}

    def path(name: str, n: str) -> str:
        return str(data / "lfw" / f"{name}__{int(n):04d}.jpg")

    same: list[float] = []
    diff: list[float] = []
    missing = 0
    for line in pairs_file.read_text().splitlines()[1:]:
        f = line.split()
        if len(f) == 3:
            a, b, out = path(f[0], f[1]), path(f[0], f[2]), same
        elif len(f) == 4:
            a, b, out = path(f[0], f[1]), path(f[2], f[3]), diff
        else:
            continue
        if a in by_path and b in by_path:
            out.append(float(np.linalg.norm(by_path[a].astype(np.float32) - by_path[b].astype(np.float32))))
        else:
            missing += 1
    return {"genuine": np.array(same, np.float32), "impostor": np.array(diff, np.float32), "missing": missing}


def evaluate(data: Path, limit: int | None = None, jobs: int = 1) -> Evaluation:
    """Compute templates for every photo under `data` and the distance distributions."""
    start = time.monotonic()
    files = list_images(data, limit)
    if not files:
        raise NoInputError(f"{data}: no photos named identity__NN.ext found")
    found = compute_templates(files, jobs)
    ev = Evaluation(images=len(files))
    keep = [(p, t) for p, (t, _) in found.items() if t is not None]
    ev.faces_found = len(keep)
    ev.not_found = ev.images - ev.faces_found
    ev.several_faces = sum(1 for _, n in found.values() if n > 1)
    ids = np.array([identity_of(Path(p)) for p, _ in keep])
    ev.identities = len(set(ids.tolist()))
    t = np.stack([x.astype(np.float32) for _, x in keep]) if keep else np.zeros((0, 128), np.float32)
    d = _pairwise(t)
    iu = np.triu_indices(len(keep), k=1)
    same = ids[iu[0]] == ids[iu[1]]
    dist = d[iu]
    ev.genuine = np.sort(dist[same])
    impostor = dist[~same]
    ev.impostor_count = int(impostor.size)
    if impostor.size:
        ev.impostor_percentiles = {p: float(np.percentile(impostor, p)) for p in PERCENTILES}
        # only the low tail matters for FMR at any sane threshold: keep the smallest 1 %
        k = max(1, min(impostor.size, impostor.size // 100 + 1))
        ev.impostor_sorted_head = np.sort(np.partition(impostor, k - 1)[:k])
    ev.lfw_pairs = _lfw_pairs(data, dict(keep))
    ev.seconds = time.monotonic() - start
    return ev


def fmr(ev: Evaluation, threshold: float) -> float:
    """False-match rate over all cross-identity pairs: impostor distance below the threshold."""
    if not ev.impostor_count:
        return math.nan
    head = ev.impostor_sorted_head
    n = int(np.searchsorted(head, threshold, side="left"))
    if n == head.size and head.size < ev.impostor_count:
        return math.nan  # beyond the stored tail (> 1 % FMR): not a threshold anyone would use
    return n / ev.impostor_count


def fnmr(ev: Evaluation, threshold: float) -> float:
    """False non-match rate over all same-identity pairs: genuine distance at or above it."""
    if not ev.genuine.size:
        return math.nan
    return float(np.count_nonzero(ev.genuine >= threshold)) / ev.genuine.size


def choose_threshold(ev: Evaluation, target_fmr: float = 0.001, step: float = 0.01) -> float:
    """The largest threshold on a `step` grid whose FMR over all cross pairs is ≤ `target_fmr`.

    The largest such threshold has the lowest FNMR (FNMR falls as the threshold rises).
    """
    if not ev.impostor_count:
        raise FormatError("no impostor pairs: need photos of at least two identities")
    allowed = int(math.floor(target_fmr * ev.impostor_count))
    head = ev.impostor_sorted_head
    # a threshold t matches the impostors strictly below it, so t may sit at the (allowed+1)-th one
    limit = float(head[allowed]) if allowed < head.size else float(head[-1])
    return math.floor(limit / step) * step


def pair_rates(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> tuple[float, float]:
    """(FMR, FNMR) of explicit pair lists at `threshold`."""
    f = float(np.count_nonzero(impostor < threshold)) / impostor.size if impostor.size else math.nan
    n = float(np.count_nonzero(genuine >= threshold)) / genuine.size if genuine.size else math.nan
    return f, n
