"""The threshold chosen with a margin on one half of the people and counted on the other (both ways,
pooled), and the kiosk's one threshold for passes enrolled from one photo or several."""

from __future__ import annotations

from typing import Any

import numpy as np

from kiosk.errors import FormatError
from kiosk.vision.evaluation.data import fold_of
from kiosk.vision.evaluation.stats import Rate
from kiosk.vision.evaluation.transactions import Scores, fmr_at, fnmr_at

GRID = np.round(np.arange(0.300, 0.800, 0.0025), 4)


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


def held_out_subset_fnmr(genuine: np.ndarray, live_ids: list[str], cv: dict[str, Any], keep: np.ndarray) -> Rate:
    """FNMR of the genuine transactions in `keep`, each counted at the threshold its other half chose."""
    lf = _fold_masks(live_ids)
    x = n = 0
    for f in cv["folds"]:
        r = fnmr_at(genuine[(lf == 1 - f["tuned_on"]) & keep], f["threshold"])
        x, n = x + r.x, n + r.n
    return Rate(x, n)


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
