"""`kiosk face ...`: compare two photos, check an enrolment photo, evaluate the matcher.

    kiosk face compare A B          JSON: distance, match, quality notes of both photos
    kiosk face enroll PHOTO         quality, and whether a template could be made (never the template)
    kiosk face evaluate [--data DIR] [--limit N] [--jobs J]

Heavy imports (dlib, cv2) happen inside the handlers so `kiosk --help` stays fast.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "faces-identity"


def register(subparsers: Any) -> None:
    """Add `face` and its subcommands to the `kiosk` parser."""
    face = subparsers.add_parser("face", help="face verification tools (compare, enroll check, evaluate)")
    face.add_argument("--config", type=Path, help="kiosk.toml (for vision.match_threshold and paths.models_dir)")
    sub = face.add_subparsers(dest="face_command", metavar="ACTION", required=True)

    p = sub.add_parser("compare", help="distance between the faces of two photos")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--threshold", type=float, help="override vision.match_threshold")
    p.set_defaults(func=_compare)

    p = sub.add_parser("enroll", help="check that a photo can be enrolled (prints quality, never the template)")
    p.add_argument("photo", type=Path)
    p.set_defaults(func=_enroll)

    p = sub.add_parser("evaluate", help="genuine/impostor distances, FMR/FNMR and the threshold")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"photos named identity__NN.ext (default {DEFAULT_DATA})")
    p.add_argument("--limit", type=int, help="only the first N photos (sorted by path)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--threshold", type=float, help="also report rates at this threshold")
    p.add_argument("--target-fmr", type=float, default=0.001, help="FMR the chosen threshold must meet (default 0.001)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_evaluate)


def _settings(args: argparse.Namespace) -> tuple[float, Path | None]:
    from kiosk.config import Config, load

    cfg = load(args.config) if args.config else Config()
    models_dir = cfg.paths.models_dir if args.config else None
    return cfg.vision.match_threshold, models_dir


def _notes(face: Any) -> dict[str, Any]:
    q = face.quality
    return {"message_id": q.message_id, "failed": list(q.failed),
            "measures": {k: round(v, 3) for k, v in q.measures.items()}}


def _compare(args: argparse.Namespace) -> int:
    from kiosk.vision.enroll import face_from_photo
    from kiosk.vision.verify import FaceVerifier

    threshold, models_dir = _settings(args)
    threshold = args.threshold or threshold
    fa = face_from_photo(args.a, models_dir)
    fb = face_from_photo(args.b, models_dir)
    decision = FaceVerifier(threshold).verify(fa.template, fb.template)
    print(json.dumps({"distance": round(decision.distance, 4), "threshold": threshold, "match": decision.match,
                      "quality": {"a": _notes(fa), "b": _notes(fb)}}, indent=2))
    return 0 if decision.match else 1


def _enroll(args: argparse.Namespace) -> int:
    from kiosk.vision.enroll import face_from_photo

    _, models_dir = _settings(args)
    face = face_from_photo(args.photo, models_dir)
    print(json.dumps({"template": "ok", "face_px": face.box.width, "quality": _notes(face)}, indent=2))
    return 0


def _fmt(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.3f} %"


def _evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from kiosk.vision import evaluation as E

    configured, _ = _settings(args)
    ev = E.evaluate(args.data, args.limit, args.jobs)
    chosen = E.choose_threshold(ev, args.target_fmr)
    thresholds = sorted({round(t, 2) for t in (chosen, configured, args.threshold or configured,
                                               0.40, 0.45, 0.50, 0.55, 0.60)})
    pct = {p: float(np.percentile(ev.genuine, p)) for p in E.PERCENTILES} if ev.genuine.size else {}
    lfw = ev.lfw_pairs
    out: dict[str, Any] = {
        "data": str(args.data), "images": ev.images, "faces_found": ev.faces_found, "faces_not_found": ev.not_found,
        "photos_with_several_faces": ev.several_faces, "identities": ev.identities,
        "genuine_pairs": int(ev.genuine.size), "impostor_pairs": ev.impostor_count,
        "genuine_percentiles": pct, "impostor_percentiles": ev.impostor_percentiles,
        "chosen_threshold": chosen, "target_fmr": args.target_fmr, "configured_threshold": configured,
        "rates": {f"{t:.2f}": {"fmr_all_cross_pairs": E.fmr(ev, t), "fnmr_all_same_pairs": E.fnmr(ev, t)}
                  for t in thresholds},
        "seconds": round(ev.seconds, 1),
    }
    if lfw:
        out["lfw_pairs"] = {"genuine": int(lfw["genuine"].size), "impostor": int(lfw["impostor"].size),
                            "missing_or_no_face": lfw["missing"],
                            "rates": {f"{t:.2f}": dict(zip(("fmr", "fnmr"), E.pair_rates(lfw["genuine"], lfw["impostor"], t)))
                                      for t in thresholds}}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"data: {args.data}  ({ev.seconds:.0f} s)")
    print(f"photos {ev.images}, faces found {ev.faces_found}, not found {ev.not_found}, "
          f"photos with several faces {ev.several_faces} (central face used), identities {ev.identities}")
    print(f"pairs: genuine {ev.genuine.size} (all same-identity), impostor {ev.impostor_count} (all cross-identity)")
    header = "  ".join(f"p{p:g}".rjust(7) for p in E.PERCENTILES)
    print(f"{'distance':>10}  {header}")
    for name, d in (("genuine", pct), ("impostor", ev.impostor_percentiles)):
        print(f"{name:>10}  " + "  ".join(f"{d.get(p, math.nan):7.3f}" for p in E.PERCENTILES))
    print(f"chosen threshold (FMR ≤ {100 * args.target_fmr:g} % over all cross pairs, lowest FNMR): {chosen:.2f}")
    print(f"{'threshold':>10}  {'FMR all':>10}  {'FNMR all':>10}" + ("  {:>10}  {:>10}".format("FMR LFW", "FNMR LFW") if lfw else ""))
    for t in thresholds:
        line = f"{t:10.2f}  {_fmt(E.fmr(ev, t)):>10}  {_fmt(E.fnmr(ev, t)):>10}"
        if lfw:
            f, n = E.pair_rates(lfw["genuine"], lfw["impostor"], t)
            line += f"  {_fmt(f):>10}  {_fmt(n):>10}"
        print(line + ("  <- chosen" if abs(t - chosen) < 1e-9 else "") + ("  <- configured" if abs(t - configured) < 1e-9 else ""))
    if lfw:
        print(f"LFW pairs protocol: {lfw['genuine'].size} genuine, {lfw['impostor'].size} impostor "
              f"({lfw['missing']} pairs skipped: photo absent or no face)")
    return 0

