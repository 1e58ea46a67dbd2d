"""Per-frame cost of our face pipeline beside face_recognition's, on the same frames, same run.

    .venv/bin/python benchmarks/vision_bench.py [--frames 60] [--repeat 3]

Frames: 640×480, synthesised from the two public-domain demo portraits (a person swaying
gently in front of the kiosk, light and noise varying), rendered before timing starts.

Ours: FacePipeline.process = detect (HOG on a 0.8× grey frame) every `detect_every` frames,
ROI re-detection between, 5-point landmarks and the quality gates. Also shown with
detect_every=1 (a full detection on every frame) to separate the tracker's share.
Baseline: face_recognition.face_locations (HOG, its default upsample=1) + face_landmarks
(its default 68-point model) — the usual way people use dlib from Python.

face_recognition is a benchmark-only baseline, not a dependency. Install it with
    .venv/bin/pip install --no-deps face_recognition     (keep setuptools < 81)
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
import warnings
from typing import Callable

import numpy as np

from kiosk.config import VisionTable
from kiosk.hardware.camera.synthetic import demo_portraits, demo_scenes, render
from kiosk.vision.enroll import template_from_photo
from kiosk.vision.pipeline import FacePipeline
from kiosk.vision.template import compute_template
from kiosk.vision.verify import FaceVerifier, compare


def frames(n: int) -> list[np.ndarray]:
    p = demo_portraits()
    portraits = [p["astronaut"], p["grace_hopper"]]
    half = n // 2
    scenes = demo_scenes(0, "astronaut", frames=half) + demo_scenes(1, "grace_hopper", frames=n - half, seed=1)
    rng = np.random.default_rng(0)
    return [render(portraits, s, (640, 480), rng) for s in scenes]


def per_frame_ms(fn: Callable[[np.ndarray], object], imgs: list[np.ndarray], repeat: int,
                 before: Callable[[], None] = lambda: None) -> tuple[float, float]:
    """(median, mean) of per-frame milliseconds over `repeat` passes of the sequence."""
    times: list[float] = []
    for _ in range(repeat):
        before()
        for img in imgs:
            t = time.perf_counter()
            fn(img)
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), statistics.fmean(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    imgs = frames(args.frames)
    print(f"{platform.machine()} {platform.python_version()}, numpy {np.__version__}; "
          f"{len(imgs)} frames 640×480 × {args.repeat} passes")

    pipe = FacePipeline(VisionTable())
    ours = per_frame_ms(lambda im: pipe.process(im), imgs, args.repeat, pipe.reset)
    pipe1 = FacePipeline(VisionTable(detect_every=1))
    ours_full = per_frame_ms(lambda im: pipe1.process(im), imgs, args.repeat, pipe1.reset)
    found = sum(pipe.process(im).box is not None for im in imgs)
    print(f"ours: detect every {VisionTable().detect_every} + ROI track + 5-pt landmarks + quality: "
          f"median {ours[0]:6.1f} ms  mean {ours[1]:6.1f} ms   (face found in {found}/{len(imgs)})")
    print(f"ours: full detection every frame + landmarks + quality:        "
          f"median {ours_full[0]:6.1f} ms  mean {ours_full[1]:6.1f} ms")

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # face_recognition_models imports pkg_resources
            import face_recognition
    except ImportError:
        print("baseline: face_recognition is not installed; for the comparison run\n"
              "    .venv/bin/pip install --no-deps face_recognition   (keep setuptools < 81)")
    else:
        def baseline(im: np.ndarray) -> object:
            locs = face_recognition.face_locations(im)
            return face_recognition.face_landmarks(im, locs)

        base = per_frame_ms(baseline, imgs, args.repeat)
        bfound = sum(bool(face_recognition.face_locations(im)) for im in imgs)
        print(f"face_recognition {face_recognition.__version__}: face_locations + face_landmarks (defaults):    "
              f"median {base[0]:6.1f} ms  mean {base[1]:6.1f} ms   (face found in {bfound}/{len(imgs)})")
        print(f"ratio baseline / ours: median {base[0] / ours[0]:.1f}×, mean {base[1] / ours[1]:.1f}×"
              f"  (full-detection variant: {base[1] / ours_full[1]:.1f}× by mean)")

        # the same library tuned the way we are tuned: no upsampling, 5-point landmarks
        def tuned(im: np.ndarray) -> object:
            locs = face_recognition.face_locations(im, number_of_times_to_upsample=0)
            return face_recognition.face_landmarks(im, locs, model="small")

        tb = per_frame_ms(tuned, imgs, args.repeat)
        print(f"face_recognition tuned (upsample 0, 5-point):                    "
              f"median {tb[0]:6.1f} ms  mean {tb[1]:6.1f} ms;  ratio to ours by mean {tb[1] / ours[1]:.1f}×")

    # one template and one verification, as the kiosk does once a frame passes the gates
    enrolled = template_from_photo(demo_portraits()["astronaut"])
    pipe.reset()
    obs = pipe.process(imgs[0])
    assert obs.landmarks is not None
    reps = 10
    t = time.perf_counter()
    for _ in range(reps):
        live = compute_template(imgs[0], obs.landmarks)
    tmpl_ms = (time.perf_counter() - t) * 1000 / reps
    verifier = FaceVerifier(VisionTable().match_threshold)
    n = 10000
    t = time.perf_counter()
    for _ in range(n):
        verifier.verify(enrolled, live)
    ver_us = (time.perf_counter() - t) * 1e6 / n
    print(f"one template (chip 150, padding 0.25, no jitter): {tmpl_ms:6.1f} ms;  one verification: {ver_us:5.1f} µs")
    print(f"(same person matched: {compare(enrolled, live) < verifier.threshold})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
