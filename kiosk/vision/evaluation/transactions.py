"""Check-ins (transactions) simulated from the kept templates: up to `attempts` decisions, each
fused from `frames` good frames; a refused attempt is a rejection. FNMR and FMR at a threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kiosk.vision.evaluation.data import LiveResult
from kiosk.vision.evaluation.stats import Rate

FUSION_RULE_NAME = "mean-template"  # one frame: every rule gives the same distance


@dataclass(eq=False)
class Scores:
    """Per-transaction scores (the smallest fused distance over the attempts; inf = refused).

    genuine[i]: live identity i against its own enrolment. impostor[i, j]: live identity i
    against enrolment j (nan where they are the same person).
    """

    genuine: np.ndarray
    impostor: np.ndarray


def attempt_scores(sealed: np.ndarray, live: LiveResult, rule: str, frames: int, attempts: int) -> np.ndarray:
    """(m,) per-transaction scores of one live identity against m sealed templates."""
    from kiosk.vision.verify import FUSION_RULES

    best = np.full(sealed.shape[0], np.inf, np.float32)
    for att in live.attempts[:attempts]:
        if len(att) < frames:
            continue  # refused: no decision, which for a genuine person is a rejection
        lives = np.stack([t.astype(np.float32) for t in att[:frames]])
        best = np.minimum(best, FUSION_RULES[rule](sealed, lives))
    return best


def transaction_scores(
    enrolled: np.ndarray, enrol_ids: list[str], lives: list[LiveResult], rule: str, frames: int, attempts: int
) -> Scores:
    """Scores of every live identity against its own and every other enrolment."""
    index = {name: j for j, name in enumerate(enrol_ids)}
    gen = np.empty(len(lives), np.float32)
    imp = np.empty((len(lives), len(enrol_ids)), np.float32)
    for i, live in enumerate(lives):
        row = attempt_scores(enrolled, live, rule, frames, attempts)
        j = index[live.identity]
        gen[i] = row[j]
        row[j] = np.nan
        imp[i] = row
    return Scores(gen, imp)


def fnmr_at(genuine: np.ndarray, t: float) -> Rate:
    """Genuine transactions not accepted at t (refusals included: their score is inf)."""
    return Rate(int(np.count_nonzero(~(genuine < t))), int(genuine.size))


def fmr_at(impostor_sorted: np.ndarray, t: float) -> Rate:
    """Impostor transactions accepted at t, from the sorted finite impostor scores."""
    return Rate(int(np.searchsorted(impostor_sorted, t, side="left")), int(impostor_sorted.size))
