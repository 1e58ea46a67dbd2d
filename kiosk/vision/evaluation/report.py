"""What a clinic needs from a run: per-check-in FNMR and FMR held out, per identity and per group,
multi-photo enrolment, the photo-against-photo baseline; and the report's JSON form."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kiosk.errors import NoInputError
from kiosk.vision.evaluation.collect import Run
from kiosk.vision.evaluation.data import LiveResult, PhotoResult
from kiosk.vision.evaluation.folds import cross_validate, held_out_at, held_out_subset_fnmr, joint_policy
from kiosk.vision.evaluation.stats import Rate
from kiosk.vision.evaluation.transactions import FUSION_RULE_NAME, Scores, fmr_at, fnmr_at, transaction_scores

FRAME_COUNTS = (1, 3, 5)


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
    scores: Scores, live_ids: list[str], enrol_ids: list[str], t: float, groups: dict[str, str],
    several: np.ndarray | None = None,
) -> dict[str, Any]:
    """FNMR by the live person's group and FMR by the enrolled person's group; with `several`
    (per live identity: had >= 2 enrolment photos) also the FNMR of those people alone."""
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
        if several is not None:
            out[g]["fnmr_with_several"] = fnmr_at(scores.genuine[(lg == g) & several], t)
    return out


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
    # the single-frame views of the product's enrolment, at the kiosk's thresholds per half
    views: dict[str, Any] = {}
    for n, a in ((1, proto.attempts), (1, 1)):
        vs = transaction_scores(multi_enrolled, run.enrol_ids, run.lives, FUSION_RULE, n, a)
        view = held_out_at(vs, live_ids, run.enrol_ids, (policy["thresholds"][0], policy["thresholds"][1]))
        view["subset_with_several"] = held_out_subset_fnmr(vs.genuine, live_ids, view, has_multi)
        views[f"{n}_frame_{a}_attempts"] = view
    out["multi_photo_enrolment"]["single_frame_at_kiosk_threshold"] = views
    # the product's enrolment (two photos or more): how its false matches spread over people
    out["per_identity_multi_photo"] = per_identity(msc, live_ids, run.enrol_ids, t)
    out["plain_photo_to_photo"] = plain_baseline(run, target_fmr, margin)
    if groups:
        out["per_group"] = per_group(sc, live_ids, run.enrol_ids, t, groups)
        out["per_group_multi_photo"] = per_group(msc, live_ids, run.enrol_ids, t, groups, has_multi)
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
