"""1:1 face verification, decided per check-in from several good frames of one tracked face.

A single frame's distance is noisy (pose, light, a half blink), so the kiosk decides once
per attempt from `frames` good frames of the same track, fused by one rule
(`FUSION_RULE`, chosen by measurement in docs/face-evaluation.md): the distance between the
enrolled template and the *mean* of the live templates. Averaging cancels the frame-to-frame
noise of a genuine face, while an impostor's mean stays as far away as their frames were.
The best-frame rule ("min") lets the luckiest frame of a stranger decide, which multiplies
the false-match rate by the number of frames; it is kept only for the evaluation.

The threshold is measured on this project's float16 templates and lives in
`VisionTable.match_threshold`. Distances are computed in float32: float16 arithmetic on 128
squared differences would lose the precision the threshold needs. A distance next to an
identity is biometric data: callers keep it in memory and never log it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from kiosk.errors import FormatError
from kiosk.vision.template import TEMPLATE_DIM


def _as_template(t: np.ndarray) -> np.ndarray:
    x = np.asarray(t, dtype=np.float32)
    if x.shape != (TEMPLATE_DIM,):
        raise FormatError(f"templates must have shape ({TEMPLATE_DIM},)")
    if not np.all(np.isfinite(x)):
        raise FormatError("template holds NaN or infinite values")
    return x


def compare(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two templates, computed in float32 (0 = identical)."""
    x, y = _as_template(a), _as_template(b)
    return float(np.sqrt(np.sum((x - y) ** 2, dtype=np.float32)))


# Each rule maps (sealed (m, 128), lives (n, 128)), both float32, to m fused distances: the
# kiosk calls it with one sealed template, the evaluation with every enrolled one at once.


def _distances(sealed: np.ndarray, lives: np.ndarray) -> np.ndarray:
    """(n, m) distances of every live frame to every sealed template."""
    return np.sqrt(np.sum((lives[:, None, :] - sealed[None, :, :]) ** 2, axis=2, dtype=np.float32))


def _mean_template(sealed: np.ndarray, lives: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum((sealed - lives.mean(axis=0)[None, :]) ** 2, axis=1, dtype=np.float32))


def _mean_best_half(sealed: np.ndarray, lives: np.ndarray) -> np.ndarray:
    d = np.sort(_distances(sealed, lives), axis=0)
    return d[: (d.shape[0] + 1) // 2].mean(axis=0)


def _median(sealed: np.ndarray, lives: np.ndarray) -> np.ndarray:
    return np.median(_distances(sealed, lives), axis=0)


def _best_frame(sealed: np.ndarray, lives: np.ndarray) -> np.ndarray:
    return _distances(sealed, lives).min(axis=0)


FUSION_RULES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "mean-template": _mean_template,
    "mean-best-half": _mean_best_half,
    "median": _median,
    "min": _best_frame,
}
FUSION_RULE = "mean-template"


def fused_distance(
    sealed_template: np.ndarray, live_templates: Sequence[np.ndarray], rule: str = FUSION_RULE
) -> float:
    """The distance one decision is made on: `rule` over the live frames of one attempt."""
    if rule not in FUSION_RULES:
        raise ValueError(f"unknown fusion rule {rule!r}; known: {', '.join(FUSION_RULES)}")
    if not live_templates:
        raise ValueError("no live templates")
    sealed = _as_template(sealed_template)
    lives = np.stack([_as_template(t) for t in live_templates])
    return float(FUSION_RULES[rule](sealed[None, :], lives)[0])


@dataclass(frozen=True)
class MatchDecision:
    """One decision: `match` when the fused `distance` < `threshold`, over `frames` frames."""

    match: bool
    distance: float
    threshold: float
    frames: int = 1
    rule: str = FUSION_RULE

    def __bool__(self) -> bool:
        return self.match


def verify_session(
    live_templates: Sequence[np.ndarray],
    sealed_template: np.ndarray,
    threshold: float,
    rule: str = FUSION_RULE,
) -> MatchDecision:
    """The per-attempt decision: fuse the live templates of one track, compare with the sealed one.

    Strictly below the threshold matches. FormatError for a malformed template.
    """
    d = fused_distance(sealed_template, live_templates, rule)
    return MatchDecision(d < threshold, d, float(threshold), len(live_templates), rule)


class FaceVerifier:
    """Decides whether live templates belong to the enrolled one (strictly below threshold)."""

    def __init__(self, threshold: float, frames: int = 1, rule: str = FUSION_RULE) -> None:
        if not 0.0 < threshold < 2.0:
            raise ValueError("threshold must lie between 0 and 2 (unit-length descriptors)")
        if frames < 1:
            raise ValueError("a decision needs at least one frame")
        if rule not in FUSION_RULES:
            raise ValueError(f"unknown fusion rule {rule!r}")
        self.threshold, self.frames, self.rule = float(threshold), int(frames), rule

    def verify(self, enrolled: np.ndarray, live: np.ndarray) -> MatchDecision:
        """Compare one live template against `enrolled` (photo against photo, the CLI)."""
        d = compare(enrolled, live)
        return MatchDecision(d < self.threshold, d, self.threshold, 1, self.rule)

    def verify_session(self, enrolled: np.ndarray, lives: Sequence[np.ndarray]) -> MatchDecision:
        """One attempt's decision over the live templates of one track (see `verify_session`)."""
        return verify_session(lives, enrolled, self.threshold, self.rule)
