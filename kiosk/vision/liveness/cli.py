"""`kiosk liveness eval`: APCER per attack species, BPCER, non-response and time to decision.

    kiosk liveness eval [--data DIR] [--photos N] [--bona-fide K] [--attacks K] [--seed S] [--jobs J]
                        [--start I] [--json] [--sessions-out FILE]

Every session runs the real check (face pipeline, face mesh, decision) on the photometric
simulated camera; the thresholds are the fixed constants in kiosk/vision/liveness/decide.py.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "faces-identity"


def register(subparsers: Any) -> None:
    """Add `liveness` and its subcommands to the `kiosk` parser."""
    lv = subparsers.add_parser("liveness", help="presentation-attack detection tools (eval)")
    sub = lv.add_subparsers(dest="liveness_command", metavar="ACTION", required=True)
    p = sub.add_parser("eval", help="APCER per species, BPCER, non-response, time to decision (simulated)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"face photos (default {DEFAULT_DATA})")
    p.add_argument("--photos", type=int, default=12, help="photos (one per identity) to present (default 12)")
    p.add_argument("--bona-fide", type=int, default=3, help="bona-fide sessions per photo (default 3)")
    p.add_argument("--attacks", type=int, default=1,
                   help="sessions of each attack species per photo (default 1)")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1; the same report for any J)")
    p.add_argument("--start", type=int, default=0,
                   help="begin at this photo of the sample (resume a run: the sessions of photo i do not "
                        "depend on the others)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--sessions-out", type=Path, default=None,
                   help="also write every session (species, status, evidence, photo, lighting) as JSON lines")
    p.set_defaults(func=_eval)


def _eval(args: argparse.Namespace) -> int:
    from kiosk.errors import NoInputError, UsageError
    from kiosk.hardware.camera.files import read_image_rgb
    from kiosk.vision.liveness.evaluation import evaluate, photo_files

    if args.photos < 1 or args.bona_fide < 1 or args.attacks < 1 or args.jobs < 1 or args.start < 0:
        raise UsageError("--photos, --bona-fide, --attacks and --jobs must be at least 1, --start at least 0")
    if not args.data.is_dir():
        raise NoInputError(f"{args.data}: no such folder of face photos (--data)")
    files = photo_files(args.data, args.photos * 2, args.seed)
    if not files:  # an empty report would read as "nothing got through"
        raise NoInputError(f"{args.data}: no face photos (.jpg, .jpeg, .png) in it (--data)")
    photos = [read_image_rgb(f) for f in files]

    out = args.sessions_out.open("w", encoding="utf-8") if args.sessions_out else None

    def progress(r: Any) -> None:
        if out is not None:
            out.write(json.dumps({"species": r.species, "status": r.result.status, "acquired": r.acquired,
                                  "seconds": r.seconds, "compute_s": r.compute_s, "meta": r.meta,
                                  "detail": r.result.detail}) + "\n")
            out.flush()
        if not args.json:
            print(f"  photo {r.meta.get('photo')} {r.species:16s} {r.result.status:12s} "
                  f"{','.join(r.result.detail.get('reasons', []))}", file=sys.stderr)

    # twice the photos are read: dlib finds no face in some; the first --photos usable ones count
    try:
        report = evaluate(photos, args.bona_fide, args.attacks, args.seed, progress, limit=args.photos,
                          jobs=args.jobs, start=args.start)
    finally:
        if out is not None:
            out.close()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        from kiosk.vision.liveness import decide as dc

        print(f"thresholds (fixed before the run, kiosk/vision/liveness/decide.py): light corr >= "
              f"{dc.MIN_LIGHT_CORR}, gain >= {dc.MIN_LIGHT_GAIN}, field deviation <= {dc.MAX_FIELD_DEVIATION}, "
              f"background ratio <= {dc.MAX_BACKGROUND_RATIO}, curvature >= {dc.MIN_CURVATURE} "
              f"(t >= {dc.MIN_CURVATURE_T}), yaw ratio >= {dc.MIN_YAW_RATIO}, "
              f"parallax >= {dc.MIN_PARALLAX}, relief: depth fit t >= {dc.MIN_RELIEF_T} and share >= "
              f"{dc.MIN_RELIEF} or bent-sheet residual >= {dc.MIN_BEND}, glare < {dc.MAX_GLARE}")
        for line in report.lines():
            print(line)
    return 0
