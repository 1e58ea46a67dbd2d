"""What the template encodings cost the matcher: distances against float32, over real faces.

    .venv/bin/python benchmarks/template_encoding_bench.py [--images 600] [--data DIR]

Computes the float32 descriptor of each photo (the kiosk's own detector, 5-point landmarks,
chip and ResNet: `kiosk.vision.template`), then every pair's distance three ways, with the
enrolled side encoded as the pass carries it and the live side in float32:
  float32        the baseline
  float16        a phone pass (256 bytes)
  card int8      a card pass (130 bytes: float16 scale + 128 int8)
and prints, per encoding, how far distances move (max, p99, mean |d - d32|) and how many
pairs' decisions at the configured threshold change. Photos come from identities with at
least two photos (LFW layout `Name__NNNN.jpg`), in name order, so the run is reproducible.
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import numpy as np

from kiosk.config import VisionTable
from kiosk.errors import KioskError
from kiosk.vision.detect import detect_faces_in_photo, to_grey
from kiosk.vision.enroll import load_photo
from kiosk.vision.landmarks import find_landmarks
from kiosk.vision.models import load_face_net
from kiosk.vision.template import (
    JITTERS,
    face_chip,
    template_from_bytes,
    template_to_bytes,
    template_to_card_bytes,
)


def photos(root: Path, limit: int) -> list[Path]:
    by_id: dict[str, list[Path]] = collections.defaultdict(list)
    for p in sorted(root.glob("*.jpg")):
        by_id[p.stem.rsplit("__", 1)[0]].append(p)
    out: list[Path] = []
    for name in sorted(by_id):
        if len(by_id[name]) >= 2:
            out += by_id[name]
        if len(out) >= limit:
            break
    return out[:limit]


def descriptor32(path: Path) -> np.ndarray | None:
    """The float32 descriptor of the largest face, or None where no face is found."""
    try:
        image = load_photo(path)
    except KioskError:
        return None
    grey = to_grey(image)
    boxes = detect_faces_in_photo(grey)
    if not boxes:
        return None
    lm = find_landmarks(grey, boxes[0])
    return np.asarray(load_face_net().compute_face_descriptor(face_chip(image, lm), JITTERS), np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=600)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/faces-identity/lfw"))
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"{args.data}: no face photos (the shared test data)", file=sys.stderr)
        return 66
    threshold = VisionTable().match_threshold
    t0 = time.perf_counter()
    names, vecs = [], []
    for p in photos(args.data, args.images):
        d = descriptor32(p)
        if d is not None:
            names.append(p.stem.rsplit("__", 1)[0])
            vecs.append(d)
    x32 = np.stack(vecs)
    t_desc = time.perf_counter() - t0
    enc = {
        "float16 (phone pass, 256 B)": np.stack([template_from_bytes(template_to_bytes(v.astype(np.float16)))
                                                 for v in x32]).astype(np.float32),
        # the issuer encodes the float16 template it has, so the card's error includes float16's
        "card int8 (card pass, 130 B)": np.stack([template_from_bytes(template_to_card_bytes(v.astype(np.float16)))
                                                  for v in x32]).astype(np.float32),
    }
    ids = np.array(names)
    i, j = np.triu_indices(len(x32), 1)
    same = ids[i] == ids[j]

    def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.sqrt(np.sum((a - b) ** 2, axis=1, dtype=np.float32))

    d32 = dist(x32[i], x32[j])
    print(f"{len(x32)} faces of {len(set(names))} people from {args.data} "
          f"({len(d32):,} pairs: {int(same.sum()):,} genuine, {int((~same).sum()):,} impostor); "
          f"descriptors {t_desc:.0f} s")
    print(f"threshold {threshold}; float32 decisions: genuine accepted {int((d32[same] < threshold).sum())}, "
          f"impostors accepted {int((d32[~same] < threshold).sum())}")
    peak = np.abs(x32).max(axis=1)
    print(f"largest component per face: median {np.median(peak):.3f}, max {peak.max():.3f}")
    print(f"{'enrolled side':<30}{'max |dd|':>10}{'p99 |dd|':>10}{'mean |dd|':>11}{'mean dd':>11}"
          f"{'genuine lost/won':>18}{'impostor won/lost':>19}")
    for label, e in enc.items():
        # both orders: either face may be the enrolled one
        de = np.concatenate([dist(e[i], x32[j]), dist(x32[i], e[j])])
        ref, s2 = np.concatenate([d32, d32]), np.concatenate([same, same])
        dd = de - ref
        won, lost = (de < threshold) & (ref >= threshold), (de >= threshold) & (ref < threshold)
        print(f"{label:<30}{np.abs(dd).max():>10.5f}{np.percentile(np.abs(dd), 99):>10.5f}"
              f"{np.abs(dd).mean():>11.6f}{dd.mean():>+11.6f}"
              f"{int((lost & s2).sum()):>10}/{int((won & s2).sum())}{int((won & ~s2).sum()):>12}/"
              f"{int((lost & ~s2).sum())}   of {int(s2.sum()):,} / {int((~s2).sum()):,} comparisons")
    return 0


if __name__ == "__main__":
    sys.exit(main())
