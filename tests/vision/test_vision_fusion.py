"""The per-attempt fusion rule of kiosk.vision.verify (no models needed)."""

from __future__ import annotations

import numpy as np
import pytest

from kiosk.errors import FormatError
from kiosk.vision.verify import FUSION_RULE, FUSION_RULES, FaceVerifier, fused_distance, verify_session


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float16)


def _t(seed: int) -> np.ndarray:
    return _unit(np.random.default_rng(seed).normal(size=128))


def test_mean_template_cancels_symmetric_frame_noise() -> None:
    sealed = _t(1).astype(np.float32)
    noise = np.random.default_rng(2).normal(scale=0.05, size=128).astype(np.float32)
    lives = [(sealed + noise).astype(np.float16), (sealed - noise).astype(np.float16)]
    single = float(np.linalg.norm(noise))
    assert fused_distance(sealed, lives, "mean-template") < 0.01 < single
    assert fused_distance(sealed, lives, "min") == pytest.approx(single, rel=1e-2)


def test_rules_on_known_distances() -> None:
    sealed = np.zeros(128, np.float32)
    lives = []
    for d in (0.1, 0.2, 0.3, 0.4, 0.9):
        t = np.zeros(128, np.float16)
        t[0] = d
        lives.append(t)
    got = {r: fused_distance(sealed, lives, r) for r in FUSION_RULES}
    assert got["min"] == pytest.approx(0.1, abs=1e-3)
    assert got["median"] == pytest.approx(0.3, abs=1e-3)
    assert got["mean-best-half"] == pytest.approx(0.2, abs=1e-3)  # the best 3 of 5
    assert got["mean-template"] == pytest.approx(0.38, abs=1e-3)  # all on one axis: the mean distance


def test_decision_is_strictly_below_threshold_and_counts_frames() -> None:
    a, b = _t(1), _t(2)
    d = fused_distance(a, [b, b, b])
    assert verify_session([b, b, b], a, d + 1e-3).match
    no = verify_session([b, b, b], a, d)
    assert not no and no.frames == 3 and no.rule == FUSION_RULE and no.distance == pytest.approx(d)
    assert FaceVerifier(d + 1e-3, frames=3).verify_session(a, [b, b, b]).match


def test_bad_input_is_refused_clearly() -> None:
    a = _t(1)
    with pytest.raises(ValueError, match="no live templates"):
        verify_session([], a, 0.5)
    with pytest.raises(ValueError, match="unknown fusion rule"):
        verify_session([a], a, 0.5, rule="max")
    bad = a.copy()
    bad[3] = np.nan
    with pytest.raises(FormatError):
        verify_session([a, bad], a, 0.5)
    with pytest.raises(FormatError):
        verify_session([a[:64]], a, 0.5)
    with pytest.raises(ValueError):
        FaceVerifier(0.5, frames=0)
