"""The evaluation's arithmetic: Clopper–Pearson, refusals as rejections, attempts, threshold choice."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kiosk.vision import evaluation as E
from kiosk.vision.evaluation import cache as C
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


# --- the result cache -------------------------------------------------------------------------


def _photo(path: str, template: np.ndarray | None, raw: np.ndarray | None = None) -> E.PhotoResult:
    return E.PhotoResult(path, E.identity_of(E.Path(path)), 1, None if template is not None else "face.hold_still",
                         template, raw if raw is not None else template, {"sharpness": 55.5}, 64, True,
                         (0.5, 0.45), 0.4)


def test_cached_results_come_back_bit_for_bit_and_survive_a_torn_line(tmp_path: E.Path) -> None:
    rng = np.random.default_rng(3)
    t = rng.normal(size=128).astype(np.float16)
    cache = E.ResultCache(tmp_path, "photos", "min_face_px=40")
    cache.put("k1", C._photo_out(_photo("d/a__01.jpg", t)))
    cache.put("k2", C._live_out(E.LiveResult("a", [[t, t], []], 17, {"face.hold_still": 2})))
    cache.close()
    assert cache.path.stat().st_mode & 0o777 == 0o600  # it holds templates: owner-only
    with cache.path.open("a") as f:
        f.write('{"key": "k3", "val')  # a run killed mid-write
    again = E.ResultCache(tmp_path, "photos", "min_face_px=40")
    assert len(again) == 2
    p = C._photo_in("elsewhere/a__01.jpg", again.get("k1") or {})
    assert p.identity == "a" and p.template is not None and p.template.dtype == np.float16
    assert np.array_equal(p.template, t) and p.anchor == (0.5, 0.45) and p.measures["sharpness"] == 55.5
    live = C._live_in("a", again.get("k2") or {})
    assert [len(a) for a in live.attempts] == [2, 0] and np.array_equal(live.attempts[0][1], t)
    assert live.frames_seen == 17 and live.gate_failures == {"face.hold_still": 2}
    other = E.ResultCache(tmp_path, "photos", "min_face_px=110")  # other settings: another file
    assert other.path != again.path and len(other) == 0
    again.close()
    other.close()


def test_cached_jobs_compute_only_what_the_cache_lacks(tmp_path: E.Path) -> None:
    calls: list[int] = []

    def job(x: int) -> E.LiveResult:
        calls.append(x)
        return E.LiveResult(str(x), [[np.full(128, x, np.float16)]], 1)

    def run(items: list[int]) -> list[E.LiveResult]:
        cache = E.ResultCache(tmp_path, "live", "p")
        try:
            return E.cached_jobs(job, items, [f"k{i}" for i in items], cache, C._live_out,
                                 lambda it, v: C._live_in(str(it), v), 1, "t", E.Progress(None))
        finally:
            cache.close()

    first = run([1, 2, 3])
    assert sorted(calls) == [1, 2, 3]
    second = run([1, 2, 3, 4])
    assert sorted(calls) == [1, 2, 3, 4]  # only the new item was computed
    got = {r.identity: r for r in second}
    assert set(got) == {"1", "2", "3", "4"}
    assert all(np.array_equal(got[r.identity].attempts[0][0], r.attempts[0][0]) for r in first)


def test_the_fingerprint_follows_the_code_that_makes_results(monkeypatch: pytest.MonkeyPatch) -> None:
    import kiosk.vision.template as T

    fp = E.pipeline_fingerprint()
    assert fp == E.pipeline_fingerprint() and len(fp) == 16
    # the template's parameters count; its wire and card encodings do not
    monkeypatch.setattr(T, "template_to_bytes", lambda t: b"")
    assert E.pipeline_fingerprint() == fp
    monkeypatch.setattr(T, "PADDING", 0.3)
    assert E.pipeline_fingerprint() != fp


# --- multi-photo enrolment and the no-gate baseline ---------------------------------------------


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=128)
    return (0.6 * v / np.linalg.norm(v)).astype(np.float16)


def _run(photos: list[E.PhotoResult], live_sources: dict[str, str], lives: list[E.LiveResult]) -> E.Run:
    ids = sorted({p.identity for p in photos if p.template is not None})
    first = {i: next(p.template for p in photos if p.identity == i and p.template is not None) for i in ids}
    enrolled = np.stack([np.asarray(first[i], np.float32) for i in ids])
    return E.Run(photos, ids, enrolled, lives, 0, [], [], E.Protocol(frames=1), 0.0, live_sources)


def test_multi_photo_enrolment_means_the_passing_photos_but_never_the_live_source() -> None:
    rng = np.random.default_rng(4)
    a = [_unit(rng) for _ in range(5)]
    b = _unit(rng)
    photos = [_photo(f"d/a__0{k}.jpg", a[k]) for k in range(5)] + [_photo("d/b__01.jpg", b)]
    photos[1] = _photo("d/a__01.jpg", None, a[1])  # refused by a gate: never enrolled
    run = _run(photos, {"a": "d/a__02.jpg"}, [])
    multi, several = E.multi_photo_enrolment(run, most=3)
    want = np.mean([a[0], a[3], a[4]], axis=0, dtype=np.float32).astype(np.float16)
    assert np.array_equal(multi[0], want.astype(np.float32)) and several.tolist() == [True, False]
    assert np.array_equal(multi[1], b.astype(np.float32))  # one photo: the single enrolment


def test_plain_baseline_compares_photos_without_gates() -> None:
    rng = np.random.default_rng(5)
    photos, live_sources, lives = [], {}, []
    for i in range(40):
        base = _unit(rng)
        near = (base.astype(np.float32) + 0.02 * rng.normal(size=128)).astype(np.float16)
        name = f"p{i}"
        photos += [_photo(f"d/{name}__01.jpg", base), _photo(f"d/{name}__02.jpg", near)]
        live_sources[name] = f"d/{name}__02.jpg"
        lives.append(E.LiveResult(name, [[near]], 1))
    photos.append(_photo("d/q__01.jpg", None, _unit(rng)))  # refused, but the baseline has no gates
    photos.append(_photo("d/q__02.jpg", None, _unit(rng)))
    out = E.plain_baseline(_run(photos, live_sources, lives), 0.01, 1.0)
    assert out["no_gates_identities"] == 41 and out["no_gates_genuine_pairs"] == 41
    kp = out["single"]
    assert kp["held_out_fnmr"].n == 40 and kp["held_out_fnmr"].x == 0  # near copies always match
    assert out["multi_photo"]["held_out_fnmr"].n == 40 and out["genuine_with_several"] == 0
    assert out["no_gates"]["held_out_fnmr"].n == 41 and out["no_gates"]["held_out_fnmr"].x >= 1


def test_one_threshold_for_both_kinds_of_enrolment_is_the_lower_choice_per_half() -> None:
    rng = np.random.default_rng(6)
    names = [f"p{i}" for i in range(200)]
    imp_a = rng.uniform(0.45, 1.2, (200, 200)).astype(np.float32)
    imp_b = imp_a - 0.02  # mean templates: every stranger a little nearer
    for m in (imp_a, imp_b):
        np.fill_diagonal(m, np.nan)
    gen = rng.uniform(0.3, 0.6, 200).astype(np.float32)
    a, b = E.Scores(gen, imp_a), E.Scores(gen - 0.05, imp_b)
    cva, cvb = (E.cross_validate(s, names, names, 0.01, 1.0) for s in (a, b))
    several = np.zeros(200, bool)
    several[::2] = True
    pol = E.joint_policy(cva, cvb, {"single": a, "multi_photo": b}, names, names, several)
    for h in (0, 1):
        assert pol["thresholds"][h] == min(cva["folds"][h]["threshold"], cvb["folds"][h]["threshold"])
    assert pol["threshold"] == min(pol["thresholds"])
    # counted at the joint thresholds, each kind's held-out FMR stays within its own choice's
    assert pol["single"]["held_out_fmr"].x <= cva["held_out_fmr"].x
    assert pol["multi_photo"]["held_out_fmr"].n == cvb["held_out_fmr"].n
    assert pol["multi_photo"]["subset_with_several"].n == 100


def test_flip_templates_combine_both_kept_descriptors_everywhere() -> None:
    from kiosk.vision.template import combine

    rng = np.random.default_rng(8)
    plain = {n: _unit(rng) for n in ("a1", "a2", "b1")}
    mirror = {n: _unit(rng) for n in plain}
    photos = []
    for n in plain:
        p = _photo(f"d/{n[0]}__0{n[1]}.jpg", plain[n])
        p.mirror = mirror[n]
        photos.append(p)
    live = E.LiveResult("a", [[plain["a2"], plain["b1"]]], 2, {}, [[mirror["a2"], mirror["b1"]]])
    run = _run(photos, {"a": "d/a__02.jpg"}, [live])
    run.enrol_paths = ["d/a__01.jpg", "d/b__01.jpg"]
    assert E.with_template(run, "plain") is run
    flip = E.with_template(run, "flip")
    assert flip.template == "flip" and run.template == "plain"
    want_a = combine(np.stack([plain["a1"], mirror["a1"]]))
    assert np.array_equal(flip.enrolled[0], want_a.astype(np.float32))
    assert np.array_equal(flip.photos[2].raw, combine(np.stack([plain["b1"], mirror["b1"]])))
    assert np.array_equal(flip.lives[0].attempts[0][1], combine(np.stack([plain["b1"], mirror["b1"]])))
    assert not np.array_equal(flip.enrolled[0], run.enrolled[0])
    with pytest.raises(ValueError):
        E.with_template(run, "jitter")


def test_the_subset_split_is_independent_of_the_folds() -> None:
    names = [f"person_{i}" for i in range(4000)]
    cells = np.zeros((2, 2), int)
    for n in names:
        cells[E.subset_of(n), E.fold_of(n)] += 1
    assert cells.min() > 900  # each quarter ~1000: within a subset both folds have people
