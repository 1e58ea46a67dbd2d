"""Measure what a clinic needs: per-check-in error rates with the kiosk's attempt budget.

Data: photos named `identity__NN.ext` (identity in the file name), e.g.
../shared/data/faces-identity/. Per identity:
- enrolment: the first photo (sorted) that passes the enrolment gates (kiosk.vision.enroll,
  several faces: the largest, as the desk would crop after confirming); none = a failure to
  enrol, counted;
- live side: another photo of the same person that passes the kiosk's own gates at its
  native resolution stands in for the person at the kiosk; the kiosk's camera frames are
  *synthesised* from it (kiosk.hardware.camera.synthetic: size, sway, light, sensor noise,
  blur, head roll) and run through the kiosk's FacePipeline (tracking, quality gates, the
  shared template function). One attempt is `frames` good frames of one track within a
  budget of frames; fewer is a refusal, and a refusal counts as a rejection.
A check-in (a transaction) is up to `attempts` decisions (the kiosk's `max_face_attempts`,
which belongs to the pass per lockout window); it is accepted when any decision matches.
Genuine transactions: each identity's live frames against its own enrolment. Impostor
transactions: each identity's live frames against every other identity's enrolment.
The threshold is chosen on one half of the identities and reported on the other half
(2-fold, identities split by a hash of the name), so the figures are for people the
choice never saw. Templates and frames stay in memory unless a cache directory is given
(`ResultCache`): then each photo's and each live source's results are kept there between
runs, keyed by the photo's bytes and everything that shapes the result, so threshold and
rule experiments re-use them instead of recomputing an hour of templates.

Modules: `stats` (Clopper–Pearson, Rate), `data` (photos, splits, results), `jobs` (per photo,
per live source), `runner` (workers, progress, clean stop), `cache` (results between runs),
`transactions` (check-ins, FNMR/FMR), `folds` (threshold with a margin, held out), `collect`
(one run), `report` (the figures).
"""

from __future__ import annotations

from pathlib import Path

from kiosk.vision.evaluation.cache import (
    ResultCache,
    cached_jobs,
    file_sha,
    pipeline_fingerprint,
)
from kiosk.vision.evaluation.collect import (
    TEMPLATE_KINDS,
    Run,
    collect,
    with_template,
)
from kiosk.vision.evaluation.data import (
    IMAGE_SUFFIXES,
    LiveResult,
    PhotoResult,
    Protocol,
    fold_of,
    identity_of,
    list_images,
    subset_of,
)
from kiosk.vision.evaluation.folds import (
    GRID,
    choose_threshold,
    cross_validate,
    held_out_at,
    held_out_subset_fnmr,
    joint_policy,
)
from kiosk.vision.evaluation.jobs import (
    live_job,
    photo_job,
)
from kiosk.vision.evaluation.report import (
    FRAME_COUNTS,
    MULTI_ENROL_PHOTOS,
    analyse,
    iter_rows,
    multi_photo_enrolment,
    per_group,
    per_identity,
    photo_counts,
    plain_baseline,
    read_groups,
    to_jsonable,
)
from kiosk.vision.evaluation.runner import (
    Progress,
    run_jobs,
)
from kiosk.vision.evaluation.stats import (
    Rate,
    betainc,
    clopper_pearson,
)
from kiosk.vision.evaluation.transactions import (
    FUSION_RULE_NAME,
    Scores,
    attempt_scores,
    fmr_at,
    fnmr_at,
    transaction_scores,
)

__all__ = [
    "Path",
    "analyse",
    "attempt_scores",
    "betainc",
    "cached_jobs",
    "choose_threshold",
    "clopper_pearson",
    "collect",
    "cross_validate",
    "file_sha",
    "fmr_at",
    "fnmr_at",
    "fold_of",
    "FRAME_COUNTS",
    "FUSION_RULE_NAME",
    "GRID",
    "held_out_at",
    "held_out_subset_fnmr",
    "identity_of",
    "IMAGE_SUFFIXES",
    "iter_rows",
    "joint_policy",
    "list_images",
    "live_job",
    "LiveResult",
    "MULTI_ENROL_PHOTOS",
    "multi_photo_enrolment",
    "per_group",
    "per_identity",
    "photo_counts",
    "photo_job",
    "PhotoResult",
    "pipeline_fingerprint",
    "plain_baseline",
    "Progress",
    "Protocol",
    "Rate",
    "read_groups",
    "ResultCache",
    "Run",
    "run_jobs",
    "Scores",
    "subset_of",
    "TEMPLATE_KINDS",
    "to_jsonable",
    "transaction_scores",
    "with_template",
]
