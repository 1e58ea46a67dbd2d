"""1:1 face verification: the Euclidean distance between two templates against a threshold.

The threshold is measured on this project's float16 templates (docs/face-evaluation.md)
and lives in `VisionTable.match_threshold`. Distances are compared in float32: float16
arithmetic on 128 squared differences would lose the precision the threshold needs.
Callers keep distances in memory; a distance next to an identity is biometric data and
never goes into a log line.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kiosk.errors import FormatError
from kiosk.vision.template import TEMPLATE_DIM


def compare(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two templates, computed in float32 (0 = identical)."""
    x = np.asarray(a, dtype=np.float32)
    y = np.asarray(b, dtype=np.float32)
    if x.shape != (TEMPLATE_DIM,) or y.shape != (TEMPLATE_DIM,):
        raise FormatError(f"templates must have shape ({TEMPLATE_DIM},)")
    d = float(np.sqrt(np.sum((x - y) ** 2, dtype=np.float32)))
    if not np.isfinite(d):
        raise FormatError("template holds NaN or infinite values")
    return d


@dataclass(frozen=True)
class MatchDecision:
    """The outcome of one comparison: `match` when `distance` < `threshold`."""

    match: bool
    distance: float
    threshold: float

    def __bool__(self) -> bool:
        return self.match


class FaceVerifier:
    """Decides whether a live template belongs to the enrolled one (strictly below threshold)."""

    def __init__(self, threshold: float) -> None:
        if not 0.0 < threshold < 2.0:
            raise ValueError("threshold must lie between 0 and 2 (unit-length descriptors)")
        self.threshold = float(threshold)

    def verify(self, enrolled: np.ndarray, live: np.ndarray) -> MatchDecision:
        """Compare `live` against `enrolled`."""
        d = compare(enrolled, live)
        return MatchDecision(d < self.threshold, d, self.threshold)

    def verify_any(self, enrolled: np.ndarray, lives: list[np.ndarray]) -> MatchDecision:
        """The best of several live templates (frames of one session) against `enrolled`."""
        if not lives:
            raise ValueError("no live templates")
        best = min((compare(enrolled, t) for t in lives))
        return MatchDecision(best < self.threshold, best, self.threshold)
