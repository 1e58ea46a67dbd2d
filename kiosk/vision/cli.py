"""`kiosk face ...`: compare two photos, check enrolment photos, evaluate the matcher.

    kiosk face compare A B          JSON: distance, match, quality notes of both photos
    kiosk face enroll PHOTO...      would these photos enrol? (quality; never the template)
    kiosk face evaluate [--data DIR] [--jobs J] [--json]   per-check-in FNMR/FMR, threshold

Heavy imports (dlib, cv2) happen inside the handlers so `kiosk --help` stays fast.
Exit codes: 0 ok (compare: match), 1 compare: no match, 65 a photo refused (EX_DATAERR),
130 / 143 evaluation stopped by Ctrl-C / SIGTERM (workers terminated, nothing printed).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "faces-identity"


def register(subparsers: Any) -> None:
    """Add `face` and its subcommands to the `kiosk` parser."""
    face = subparsers.add_parser("face", help="face verification tools (compare, enroll check, evaluate)")
    face.add_argument("--config", type=Path, help="kiosk.toml (vision and engine settings, paths.models_dir)")
    sub = face.add_subparsers(dest="face_command", metavar="ACTION", required=True)

    p = sub.add_parser("compare", help="distance between the faces of two photos")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p.add_argument("--threshold", type=float, help="override vision.match_threshold")
    p.set_defaults(func=_compare)

    p = sub.add_parser(
        "enroll", help="check that photos can be enrolled (prints quality, never the template)"
    )
    p.add_argument(
        "photos", type=Path, nargs="+", help="one or more photos of the patient (templates averaged)"
    )
    add_crop_options(p)
    p.set_defaults(func=_enroll)

    p = sub.add_parser("evaluate", help="per-check-in FNMR/FMR with the attempt budget; the threshold")
    p.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help=f"photos named identity__NN.ext (default {DEFAULT_DATA})",
    )
    p.add_argument("--limit", type=int, help="only the first N photos (sorted by path)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--target-fmr", type=float, default=0.001, help="per-check-in FMR to meet (default 0.001)")
    p.add_argument(
        "--margin",
        type=float,
        default=0.5,
        help="the tuning half's 95 %% upper FMR bound must stay under target × margin (default 0.5)",
    )
    p.add_argument("--frames", type=int, help="good frames per decision (default vision.session_frames)")
    p.add_argument("--attempts", type=int, help="decisions per check-in (default engine.max_face_attempts)")
    p.add_argument(
        "--budget", type=int, default=15, help="frames an attempt may use to find them (default 15)"
    )
    p.add_argument(
        "--enrol-min-face-px",
        type=int,
        help="enrolment size gate (default vision.min_face_px; the LFW copies need 40)",
    )
    p.add_argument("--rule", help="fusion rule to report in detail (default: the kiosk's)")
    p.add_argument("--groups", type=Path, help="CSV identity,group: also report per group")
    p.add_argument("--seed", type=int, default=0, help="seed of the frame synthesis (default 0)")
    p.add_argument(
        "--cache",
        type=Path,
        help="keep photo and frame results in DIR between runs (holds templates: a work dir, owner-only)",
    )
    p.add_argument(
        "--photos-only",
        action="store_true",
        help="photo against photo only (enrolment gates, one- and multi-photo enrolment, no-gate baseline): "
        "no kiosk frames are synthesised",
    )
    p.add_argument(
        "--subset",
        type=int,
        choices=(0, 1),
        help="only the identities of one fixed half (a hash of the name, independent of the folds): "
        "try a change on half the people first",
    )
    p.add_argument(
        "--template",
        choices=("plain", "flip"),
        help="templates from the chip alone, or from the chip and its mirror (default: the kiosk's, "
        "template.FLIP_TTA); both come from the same run and cache",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_evaluate)


def add_crop_options(p: argparse.ArgumentParser) -> None:
    """--crop-largest / --yes / --single-photo, shared with `kiosk issuer enroll`."""
    p.add_argument(
        "--single-photo",
        action="store_true",
        help="enrol from one photo, accepting its higher false-refusal rate (~1 patient in 8 sent to "
        "the desk, against ~1 in 60 from two photos; docs/face-evaluation.md)",
    )
    p.add_argument(
        "--crop-largest",
        action="store_true",
        help="a photo with several faces: enrol the largest, after the desk confirms it is the patient",
    )
    p.add_argument(
        "--yes", action="store_true", help="with --crop-largest: the desk has confirmed (no prompt)"
    )


def confirm_crops(faces: Any, yes: bool) -> None:
    """Ask the desk to confirm every cropped face (EnrolmentRefused when it does not)."""
    from kiosk.vision.enroll import EnrolmentRefused
    from kiosk.vision.quality import FACE_TOO_MANY

    for i, f in enumerate(faces, 1):
        if not f.cropped or yes:
            continue
        b = f.box
        question = (
            f"photo {i} shows {f.faces} faces; enrol the largest (left {b.left}, top {b.top}, "
            f"{b.width}×{b.height} px)? Check it is the patient [y/N] "
        )
        if not sys.stdin.isatty():
            raise EnrolmentRefused(
                f"photo {i} shows {f.faces} faces: confirm the largest is the patient "
                "(run on a terminal, or add --yes once checked)",
                FACE_TOO_MANY,
            )
        if input(question).strip().lower() not in ("y", "yes"):
            raise EnrolmentRefused(
                f"photo {i}: the desk did not confirm the face; use a photo of the patient alone",
                FACE_TOO_MANY,
            )


def _config(args: argparse.Namespace) -> tuple[Any, Path | None]:
    from kiosk.config import Config, load

    cfg = load(args.config) if args.config else Config()
    return cfg, (cfg.paths.models_dir if args.config else None)


def _notes(face: Any) -> dict[str, Any]:
    q = face.quality
    return {
        "face_px": face.box.width,
        "faces": face.faces,
        "cropped": face.cropped,
        "message_id": q.message_id,
        "failed": list(q.failed),
        "measures": {k: round(v, 3) for k, v in q.measures.items()},
    }


def _compare(args: argparse.Namespace) -> int:
    from kiosk.vision.enroll import inspect_photo
    from kiosk.vision.verify import FaceVerifier

    cfg, models_dir = _config(args)
    threshold = args.threshold or cfg.vision.match_threshold
    fa = inspect_photo(args.a, models_dir)
    fb = inspect_photo(args.b, models_dir)
    decision = FaceVerifier(threshold).verify(fa.template, fb.template)
    print(
        json.dumps(
            {
                "distance": round(decision.distance, 4),
                "threshold": threshold,
                "match": decision.match,
                "quality": {"a": _notes(fa), "b": _notes(fb)},
            },
            indent=2,
        )
    )
    return 0 if decision.match else 1


def _enroll(args: argparse.Namespace) -> int:
    from kiosk.vision.enroll import enrol
    from kiosk.vision.quality import QualityLimits

    cfg, models_dir = _config(args)
    limits = QualityLimits(min_face_px=cfg.vision.min_face_px)
    e = enrol(args.photos, models_dir, limits, crop_largest=args.crop_largest, single_photo=args.single_photo)
    confirm_crops(e.faces, args.yes)
    print(json.dumps({"template": "ok", "single_photo": len(e.faces) == 1, "photos": [_notes(f) for f in e.faces]},
                     indent=2))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from kiosk.errors import ConfigError
    from kiosk.vision import evaluation as E

    cfg, _ = _config(args)
    proto = E.Protocol(
        attempts=args.attempts or cfg.engine.max_face_attempts,
        frames=args.frames or cfg.vision.session_frames,
        budget=args.budget,
        enrol_min_face_px=args.enrol_min_face_px or cfg.vision.min_face_px,
        seed=args.seed,
    )
    if proto.frames > proto.budget:
        raise ConfigError("--budget must be at least --frames")
    groups = E.read_groups(args.groups) if args.groups else None
    progress = E.Progress(None if args.quiet else sys.stderr)

    def stop(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signum)

    old = signal.signal(signal.SIGTERM, stop)
    try:
        run = E.collect(args.data, proto, args.limit, args.jobs, progress, args.cache, not args.photos_only,
                        args.subset)
    except KeyboardInterrupt as e:
        signum = e.args[0] if e.args else signal.SIGINT
        print("kiosk: evaluation stopped; workers terminated, nothing reported", file=sys.stderr)
        return 128 + int(signum)
    finally:
        signal.signal(signal.SIGTERM, old)
    from kiosk.vision.template import FLIP_TTA

    run = E.with_template(run, args.template or ("flip" if FLIP_TTA else "plain"))
    if args.photos_only:
        report = {
            "template": run.template,
            **E.photo_counts(run),
            "protocol": {"enrol_min_face_px": proto.enrol_min_face_px, "target_fmr": args.target_fmr,
                         "margin": args.margin},
            "plain_photo_to_photo": E.plain_baseline(run, args.target_fmr, args.margin),
        }
    else:
        report = E.analyse(run, args.target_fmr, args.margin, args.rule, groups)
    report["data"] = str(args.data)
    report["subset"] = args.subset
    if args.json:
        print(json.dumps(E.to_jsonable(report), indent=2))
        return 0
    print(render_photo_rows(report) if args.photos_only else render_report(report))
    return 0


def render_report(rep: dict[str, Any]) -> str:
    """The evaluation as text: counts first, then the per-check-in figures, then the detail."""
    p = rep["protocol"]
    lines = [
        f"data: {rep['data']}  ({rep['seconds']:.0f} s); templates: {rep.get('template', 'plain')}"
        + (f"; subset {rep['subset']} of the identities" if rep.get("subset") is not None else ""),
        f"photos {rep['photos']} of {rep['identities']} identities; faces ≥ 110 px (the kiosk's size gate): "
        f"{rep['photos_product_size_gate_ok']}",
        f"enrolment gates (size ≥ {p['enrol_min_face_px']} px, pose, light, sharpness; several faces: the largest): "
        f"refusals {sum(rep['enrolment_refusals'].values())} {dict(sorted(rep['enrolment_refusals'].items()))}",
        f"identities enrolled {rep['identities_enrolled']}; with ≥ 2 photos {rep['genuine_population']}: "
        f"failure to enrol {rep['failure_to_enrol']}, no photo usable as a live source {rep['no_live_source']}, "
        f"genuine check-ins {rep['genuine_transactions']}",
        f"kiosk attempts: {p['attempts']} per check-in, {p['frames']} good frames per decision within "
        f"{p['frame_budget']} frames; {rep['live_frames']} synthesised frames, gate refusals "
        f"{dict(sorted(rep['live_gate_failures'].items()))}; check-ins refused on every attempt "
        f"{rep['transactions_refused_every_attempt']} (counted as rejections)",
        "",
        f"threshold chosen on one half of the identities, reported on the other (both ways, pooled): "
        f"95 % upper FMR bound ≤ {100 * p['target_fmr'] * p['margin']:g} % on the tuning half",
    ]
    main = rep["cross_validated"][rep["rule"]][p["frames"]]
    for f in main["folds"]:
        lines.append(
            f"  tuned on half {f['tuned_on']}: threshold {f['threshold']:.4f}; held-out FNMR "
            f"{f['held_out_fnmr']}, FMR {f['held_out_fmr']}"
        )
    lines += [
        f"PER CHECK-IN ({rep['rule']}, {p['frames']} frames, up to {p['attempts']} attempts), held out:",
        f"  FNMR {main['held_out_fnmr']}",
        f"  FMR  {main['held_out_fmr']}",
        f"single frame per decision, up to {p['attempts']} attempts, held out:",
        f"  FNMR {rep['single_frame']['per_transaction']['held_out_fnmr']}",
        f"  FMR  {rep['single_frame']['per_transaction']['held_out_fmr']}",
        "single frame, one comparison (no retries), held out:",
        f"  FNMR {rep['single_frame']['per_comparison']['held_out_fnmr']}",
        f"  FMR  {rep['single_frame']['per_comparison']['held_out_fmr']}",
        f"kiosk threshold (the lowest choice of either enrolment kind on either half): {rep['threshold']:.4f}; "
        "on all data (not held out), one enrolment photo:",
        f"  FNMR {rep['all_data_at_threshold']['fnmr']}",
        f"  FNMR counting failures to enrol {rep['all_data_at_threshold']['fnmr_counting_failure_to_enrol']}",
        f"  FMR  {rep['all_data_at_threshold']['fmr']}",
        f"  FMR of one decision {rep['all_data_at_threshold']['fmr_one_decision']}; {p['attempts']} × its upper "
        f"bound: {100 * rep['all_data_at_threshold']['fmr_bound_attempts_x_one_decision']:.3f} % (retries as if "
        "independent)",
        "",
        "rules × frames (held out, pooled):  threshold per half, FNMR, FMR",
    ]
    for rule, n, res in _rows(rep):
        ts = "/".join(f"{f['threshold']:.4f}" for f in res["folds"])
        lines.append(f"  {rule:>15} {n}  {ts}  FNMR {res['held_out_fnmr']}  FMR {res['held_out_fmr']}")
    pi = rep["per_identity"]
    s = pi["spread"]
    lines += [
        "",
        f"per identity at {pi['threshold']:.4f} (all data): {pi['false_matches']} false matches on "
        f"{pi['identities_with_a_false_match']} of {pi['enrolled_identities']} enrolled identities; the worst 1 % "
        f"hold {100 * pi['share_from_worst_1pct']:.0f} % of them",
        "  per-identity FMR: " + ", ".join(f"{k} {100 * v:.2f} %" for k, v in s.items()),
        "  worst enrolled: "
        + ", ".join(f"{w['identity']} {w['false_matches']}/{w['strangers']}" for w in pi["worst_enrolled"]),
        "  worst live: " + ", ".join(f"{w['identity']} {w['false_matches']}" for w in pi["worst_live"]),
        "  genuine rejected: " + ", ".join(pi["rejected_genuine"]),
    ]
    kp = rep["kiosk_policy"]
    lines += [
        "",
        f"KIOSK POLICY: one threshold for passes enrolled from one photo or several (the lower choice per half, "
        f"{'/'.join(f'{t:.4f}' for t in kp['thresholds'])}; kiosk {kp['threshold']:.4f}), held out:",
        f"  one enrolment photo:    FNMR {kp['single']['held_out_fnmr']}  FMR {kp['single']['held_out_fmr']}",
        f"  up to 3 photos, mean:   FNMR {kp['multi_photo']['held_out_fnmr']}  FMR {kp['multi_photo']['held_out_fmr']}",
        f"    of those with several: FNMR {kp['multi_photo']['subset_with_several']} (one photo: "
        f"{kp['single']['subset_with_several']})",
    ]
    mp = rep["multi_photo_enrolment"]
    mcv = mp["cross_validated"]
    lines += [
        "",
        f"multi-photo enrolment (up to {mp['photos_at_most']} photos, mean template; {mp['genuine_with_several']} "
        "genuine check-ins have ≥ 2), the kiosk's attempts, held out:",
        "  thresholds " + "/".join(f"{f['threshold']:.4f}" for f in mcv["folds"])
        + f"; FNMR {mcv['held_out_fnmr']}; FMR {mcv['held_out_fmr']}",
        f"  those with several photos: FNMR {mp['subset_held_out_fnmr']} (one photo: "
        f"{mp['subset_held_out_fnmr_single_photo']})",
        f"  at the kiosk threshold: FNMR {mp['at_kiosk_threshold']['fnmr']}; FMR {mp['at_kiosk_threshold']['fmr']}",
        "",
        *_photo_lines(rep),
        "",
    ]
    if "per_group" in rep:
        lines.append(f"per group at {rep['threshold']:.4f} (all data; FNMR by the live person's group, FMR by the "
                     "enrolled person's):")
        for g, r in rep["per_group"].items():
            m = rep["per_group_multi_photo"][g]
            lines.append(f"  {g}: one photo FNMR {r['fnmr']}; FMR {r['fmr']}")
            lines.append(f"  {g}: up to 3 photos FNMR {m['fnmr']}; FMR {m['fmr']}")
    else:
        lines.append("per group: no labels given (--groups FILE: identity,group lines)")
    return "\n".join(lines)


def _photo_lines(rep: dict[str, Any]) -> list[str]:
    pp = rep["plain_photo_to_photo"]
    lines = [
        f"photo against photo, one comparison, held out ({pp['genuine_pairs']} genuine pairs; "
        f"{pp['genuine_with_several']} with ≥ 2 enrolment photos besides the live source):",
    ]
    for key, label in (("single", "one enrolment photo"), ("multi_photo", "up to 3 enrolment photos, mean")):
        r = pp[key]
        ts = "/".join(f"{f['threshold']:.4f}" for f in r["folds"])
        lines.append(
            f"  {label}: thresholds {ts}; FNMR {r['held_out_fnmr']}; FMR {r['held_out_fmr']}; "
            f"FNMR of those with several {r['subset_with_several']}"
        )
    j = pp["joint"]
    lines.append(
        f"  one threshold for both kinds (the lower choice per half, {'/'.join(f'{t:.4f}' for t in j['thresholds'])}): "
        f"one photo FNMR {j['single']['held_out_fnmr']}, FMR {j['single']['held_out_fmr']}; several photos FNMR "
        f"{j['multi_photo']['held_out_fnmr']}, FMR {j['multi_photo']['held_out_fmr']}, of those with several "
        f"{j['multi_photo']['subset_with_several']}"
    )
    r = pp["no_gates"]
    ts = "/".join(f"{f['threshold']:.4f}" for f in r["folds"])
    lines.append(
        f"  no gates ({pp['no_gates_identities']} identities with a face, "
        f"{pp['no_gates_genuine_pairs']} first-vs-second "
        f"pairs): thresholds {ts}; FNMR {r['held_out_fnmr']}; FMR {r['held_out_fmr']}"
    )
    return lines


def render_photo_rows(rep: dict[str, Any]) -> str:
    """`--photos-only`: the enrolment gates' counts and the photo-against-photo rows."""
    lines = [
        f"data: {rep['data']}",
        f"photos {rep['photos']} of {rep['identities']} identities; enrolment gates (size ≥ "
        f"{rep['protocol']['enrol_min_face_px']} px, pose, light, sharpness) refused "
        f"{sum(rep['enrolment_refusals'].values())} {dict(sorted(rep['enrolment_refusals'].items()))}",
        f"identities enrolled {rep['identities_enrolled']}; with ≥ 2 photos {rep['genuine_population']}: failure to "
        f"enrol {rep['failure_to_enrol']}, no live source {rep['no_live_source']}, live sources {rep['live_sources']}",
    ]
    return "\n".join(lines + _photo_lines(rep))


def _rows(rep: dict[str, Any]) -> Any:
    from kiosk.vision.evaluation import iter_rows

    return iter_rows(rep)
