"""Does dlib's jitter at enrolment (`num_jitters`) or the mirror (flip) help, at the kiosk, held out?

    PYTHONPATH=. .venv/bin/python benchmarks/enrol_jitter.py --data ../shared/data/faces-identity \
        --cache DIR --subset 0 [--jitters 10]

Reads an evaluation run from its cache (`kiosk face evaluate --enrol-min-face-px 40 --cache DIR
--subset 0` first, or the whole data set), so the kiosk's attempts are the evaluation's own. Only
the people with a live source are kept (jitter costs `--jitters` descriptor passes per photo, so
it is computed only for their enrolment photos; the impostors are the same people's check-ins
against each other's passes). Per enrolment (one photo; up to 3 photos, the mean) and per kind
of template on each side, the threshold is chosen with the evaluation's margin on one half of
these people and counted on the other, both ways (`folds.cross_validate`): the figures are held
out, as in docs/face-evaluation.md.

Jitter is enrolment-only (its cost is at the desk): dlib averages the descriptors of
`--jitters` randomly perturbed copies of the chip (shifted, rotated, scaled, mirrored at random).
Templates are kept in memory only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from kiosk.vision.enroll import inspect_photo, load_photo
from kiosk.vision.evaluation import (
    MULTI_ENROL_PHOTOS,
    Progress,
    Protocol,
    Rate,
    collect,
    cross_validate,
    held_out_subset_fnmr,
    transaction_scores,
    with_template,
)
from kiosk.vision.models import load_face_net
from kiosk.vision.quality import QualityLimits
from kiosk.vision.template import JITTERS, TEMPLATE_DTYPE, face_chip
from kiosk.vision.verify import FUSION_RULE


def enrol_photos(run, name: str) -> list[str]:
    """The photos the evaluation enrols `name` from (the first is the one-photo enrolment)."""
    live = run.live_sources[name]
    return [r.path for r in run.photos if r.identity == name and r.template is not None and r.path != live][
        :MULTI_ENROL_PHOTOS
    ]


def jittered(path: str, min_face_px: int, jitters: int) -> np.ndarray:
    image = load_photo(path)
    face = inspect_photo(image, limits=QualityLimits(min_face_px=min_face_px), crop_largest=True)
    chip = face_chip(image, face.landmarks)
    d = np.asarray(load_face_net().compute_face_descriptor(chip, jitters), np.float32)
    return d.astype(TEMPLATE_DTYPE)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--subset", type=int, choices=(0, 1))
    ap.add_argument("--jitters", type=int, default=10)
    ap.add_argument("--enrol-min-face-px", type=int, default=40)
    ap.add_argument("--margin", type=float, default=0.5)
    ap.add_argument("--target-fmr", type=float, default=0.001)
    args = ap.parse_args()

    proto = Protocol(attempts=3, frames=3, budget=15, enrol_min_face_px=args.enrol_min_face_px)
    run = collect(args.data, proto, jobs=1, progress=Progress(sys.stderr), cache_dir=args.cache, subset=args.subset)
    flip_run = with_template(run, "flip")
    ids = [x.identity for x in run.lives]
    paths = {n: enrol_photos(run, n) for n in ids}
    several = np.array([len(paths[n]) >= 2 for n in ids])
    by_path = {r.path: r for r in run.photos}
    by_path_flip = {r.path: r for r in flip_run.photos}

    print(f"{len(ids)} people with a live source ({int(several.sum())} with >= 2 enrolment photos), "
          f"{sum(len(p) for p in paths.values())} enrolment photos; jitter {args.jitters} (the kiosk's: {JITTERS})",
          file=sys.stderr)
    t0 = time.process_time()
    jit: dict[str, np.ndarray] = {}
    for k, p in enumerate(sorted({p for ps in paths.values() for p in ps})):
        jit[p] = jittered(p, args.enrol_min_face_px, args.jitters)
        if k % 50 == 0:
            print(f"  jittered {k} photos, {time.process_time() - t0:.0f} s CPU", file=sys.stderr)
    per_photo = (time.process_time() - t0) / max(len(jit), 1)

    def enrolled(source: dict[str, np.ndarray], most: int) -> np.ndarray:
        return np.stack([
            np.mean([source[p].astype(np.float32) for p in paths[n][:most]], axis=0)
            .astype(np.float16).astype(np.float32)
            for n in ids
        ])

    kinds = {
        "plain": {p: by_path[p].template for p in jit},
        "flip": {p: by_path_flip[p].template for p in jit},
        f"jitter {args.jitters}": jit,
    }
    lives = {"plain": run.lives, "flip": flip_run.lives}
    print(f"CPU per jittered template: {per_photo:.2f} s ({args.jitters} passes); "
          f"rule {FUSION_RULE}, 3 decisions x 3 frames, margin {args.margin}")
    print("| enrolment template | live template | photos | thresholds | FNMR (all) | FNMR (>= 2 photos) | FMR |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for ek, src in kinds.items():
        for lk, lv in lives.items():
            for most in (1, MULTI_ENROL_PHOTOS):
                sc = transaction_scores(enrolled(src, most), ids, lv, FUSION_RULE, 3, 3)  # type: ignore[arg-type]
                cv = cross_validate(sc, ids, ids, args.target_fmr, args.margin)
                sub: Rate = held_out_subset_fnmr(sc.genuine, ids, cv, several)
                ts = " / ".join(f"{f['threshold']:.4f}" for f in cv["folds"])
                print(f"| {ek} | {lk} | {'1' if most == 1 else f'up to {most}'} | {ts} | {cv['held_out_fnmr']} "
                      f"| {sub} | {cv['held_out_fmr']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
