"""How the sharpness measure depends on the face's size: the calibration of the blur gate.

    .venv/bin/python benchmarks/sharpness_scale.py [--data ../shared/data/faces-identity]

Takes the sharp, large faces (≥ 160 px) of the full-size photo sets, shrinks each face to
40–128 px (as a small photo holds it), blurs it by σ of its own pixels and prints the median
variance of the Laplacian (contrast-normalised as in kiosk.vision.quality) per size and blur,
with the exponent k of value ∝ side^-k between 40 and 128 px. The gate measures a face on its
own pixels and multiplies by (side / 128)^SHARPNESS_SIZE_EXPONENT, so that one threshold
means the same blur, in the face's own pixels, at every size.
"""

from __future__ import annotations

import argparse
import math
import statistics
from pathlib import Path

import cv2
import numpy as np

from kiosk.vision.detect import detect_faces_in_photo, to_grey
from kiosk.vision.enroll import load_photo
from kiosk.vision.evaluation import list_images
from kiosk.vision.quality import SHARPNESS_SIZE_EXPONENT, _face_crop

SIDES = (40, 48, 64, 96, 128)
SIGMAS = (0.0, 0.7, 1.0, 1.5, 2.0)


def laplacian_variance(crop: np.ndarray) -> float:
    x = crop.astype(np.float64)
    return float(cv2.Laplacian(x * (50.0 / max(x.std(), 1e-6)), cv2.CV_64F).var())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/faces-identity"))
    ap.add_argument("--min-face-px", type=int, default=160)
    args = ap.parse_args()
    values: dict[tuple[int, float], list[float]] = {}
    faces = 0
    for path in list_images(args.data):
        if "lfw" in path.parts:
            continue  # the 150 px copies hold no large faces
        grey = to_grey(load_photo(path))
        boxes = detect_faces_in_photo(grey)
        if len(boxes) != 1 or boxes[0].width < args.min_face_px:
            continue
        faces += 1
        crop = _face_crop(grey, boxes[0])
        for side in SIDES:
            small = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
            for sigma in SIGMAS:
                img = cv2.GaussianBlur(small, (0, 0), sigma) if sigma else small
                values.setdefault((side, sigma), []).append(laplacian_variance(img))
    if not faces:
        raise SystemExit(f"no single face of >= {args.min_face_px} px under {args.data}")
    print(f"{faces} faces of >= {args.min_face_px} px; median Laplacian variance by side (rows) and blur σ in "
          "the face's own pixels (columns)")
    print("side  " + "  ".join(f"σ {s:<4}" for s in SIGMAS))
    for side in SIDES:
        print(f"{side:4d}  " + "  ".join(f"{statistics.median(values[(side, s)]):6.0f}" for s in SIGMAS))
    ks = []
    for s in SIGMAS:
        lo, hi = statistics.median(values[(SIDES[0], s)]), statistics.median(values[(SIDES[-1], s)])
        ks.append(math.log(lo / hi) / math.log(SIDES[-1] / SIDES[0]))
    print("exponent k (value ∝ side^-k, 40 → 128 px) per σ: " + ", ".join(f"{k:.2f}" for k in ks))
    print(f"the gate uses k = {SHARPNESS_SIZE_EXPONENT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
