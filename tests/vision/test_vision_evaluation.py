"""The evaluation's arithmetic: Clopper–Pearson, refusals as rejections, attempts, threshold choice."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kiosk.vision import evaluation as E
from kiosk.vision.verify import FUSION_RULES, fused_distance


def test_clopper_pearson_against_scipy_and_closed_forms() -> None:
    stats = pytest.importorskip("scipy.stats")
    for x, n in ((0, 10), (1, 10), (5, 10), (10, 10), (3, 1000), (120, 250_000), (0, 1_000_000)):
        lo, hi = E.clopper_pearson(x, n)
        want_lo = 0.0 if x == 0 else stats.beta.ppf(0.025, x, n - x + 1)
        want_hi = 1.0 if x == n else stats.beta.ppf(0.975, x + 1, n - x)
        assert lo == pytest.approx(want_lo, rel=1e-6, abs=1e-12)
        assert hi == pytest.approx(want_hi, rel=1e-6, abs=1e-12)
    # x = 0: the upper bound is 1 − (α/2)^(1/n) exactly
    assert E.clopper_pearson(0, 3000)[1] == pytest.approx(1 - 0.025 ** (1 / 3000), rel=1e-9)
    assert all(math.isnan(v) for v in E.clopper_pearson(0, 0))
    with pytest.raises(ValueError):
        E.clopper_pearson(5, 3)


def test_rate_reports_counts_and_interval() -> None:
    r = E.Rate(3, 1000)
    assert r.rate == 0.003 and "3/1,000" in str(r) and "95 % CI" in str(r)
    d = r.as_dict()
    assert d["x"] == 3 and d["n"] == 1000 and d["ci95"][0] < 0.003 < d["ci95"][1]


def _live(identity: str, attempts: list[list[np.ndarray]]) -> E.LiveResult:
    return E.LiveResult(identity, attempts)


def test_a_refused_check_in_is_a_rejection_not_skipped() -> None:
    sealed = np.zeros((1, 128), np.float32)
    t = np.zeros(128, np.float16)
    refused = _live("a", [[t, t], [t], []])  # no attempt reached 3 frames
    assert np.isinf(E.attempt_scores(sealed, refused, "mean-template", 3, 3)).all()
    genuine = np.array([0.1, np.inf, 0.7], np.float32)
    r = E.fnmr_at(genuine, 0.5)
    assert (r.x, r.n) == (2, 3)  # the refusal counts in both numerator and denominator


def test_a_check_in_is_accepted_when_any_attempt_within_the_budget_matches() -> None:
    sealed = np.zeros((1, 128), np.float32)
    far, near = np.zeros(128, np.float16), np.zeros(128, np.float16)
    far[0], near[0] = 0.9, 0.2
    live = _live("a", [[far] * 3, [far] * 3, [near] * 3])
    assert E.attempt_scores(sealed, live, "mean-template", 3, 3)[0] == pytest.approx(0.2, abs=1e-3)
    # with a budget of two attempts the third, matching one never happens
    assert E.attempt_scores(sealed, live, "mean-template", 3, 2)[0] == pytest.approx(0.9, abs=1e-3)


def test_impostor_scores_exclude_the_same_person() -> None:
    rng = np.random.default_rng(0)
    enrolled = rng.normal(size=(3, 128)).astype(np.float32)
    lives = [_live(n, [[enrolled[i].astype(np.float16)] * 2]) for i, n in enumerate("abc")]
    sc = E.transaction_scores(enrolled, list("abc"), lives, "mean-template", 2, 3)
    assert np.allclose(sc.genuine, 0.0, atol=1e-2)
    assert np.isnan(np.diag(sc.impostor)).all() and np.isfinite(sc.impostor[~np.eye(3, dtype=bool)]).all()


def test_vectorised_rules_agree_with_the_kiosks_decision() -> None:
    rng = np.random.default_rng(1)
    sealed = rng.normal(size=(4, 128)).astype(np.float32)
    lives = [rng.normal(size=128).astype(np.float16) for _ in range(5)]
    stacked = np.stack([x.astype(np.float32) for x in lives])
    for rule, fn in FUSION_RULES.items():
        many = fn(sealed, stacked)
        one = [fused_distance(sealed[j], lives, rule) for j in range(4)]
        assert np.allclose(many, one, rtol=1e-5), rule


def test_threshold_keeps_the_upper_bound_under_target_times_margin() -> None:
    impostor = np.sort(np.random.default_rng(2).uniform(0.3, 1.2, 400_000).astype(np.float32))
    t = E.choose_threshold(impostor, 0.001, 0.5)
    assert E.fmr_at(impostor, t).interval[1] <= 0.0005
    nxt = float(E.GRID[np.searchsorted(E.GRID, t) + 1])
    assert E.fmr_at(impostor, nxt).interval[1] > 0.0005  # the largest such grid point


def test_folds_split_identities_stably() -> None:
    names = [f"person_{i}" for i in range(400)]
    folds = [E.fold_of(n) for n in names]
    assert folds == [E.fold_of(n) for n in names] and 150 < sum(folds) < 250
