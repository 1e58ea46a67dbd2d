"""`kiosk liveness eval`: ISO/IEC 30107-3 figures from simulated presentations.

Bona-fide sessions are synthesised from real photos (`../shared/data/faces-identity/` or any
folder of face photos) under random room lighting and screen geometry; each attack species
(kiosk.vision.liveness.sessions.SPECIES) is presented from the same photos. The thresholds are
the fixed constants of kiosk.vision.liveness.decide, set before the run.

APCER (per species): attacks classified live. BPCER: bona-fide sessions not classified live
(attack or inconclusive). Non-response: bona-fide sessions that ended inconclusive. Each with
its count and a Clopper-Pearson 95 % interval.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kiosk.vision.liveness.sessions import (
    SPECIES,
    SessionResult,
    Simulator,
    build_subject,
    random_room,
)


def clopper_pearson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """The exact binomial (Clopper-Pearson) two-sided interval for k successes in n trials."""
    from scipy.stats import beta

    if n == 0:
        return 0.0, 1.0
    lo = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return lo, hi


@dataclass
class Rate:
    k: int
    n: int

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else float("nan")

    def as_dict(self) -> dict[str, Any]:
        lo, hi = clopper_pearson(self.k, self.n)
        return {"count": self.k, "of": self.n, "rate": self.value, "ci95": [lo, hi]}

    def line(self) -> str:
        lo, hi = clopper_pearson(self.k, self.n)
        return f"{100 * self.value:5.1f} %  ({self.k}/{self.n}, 95 % CI {100 * lo:.1f}-{100 * hi:.1f} %)"


@dataclass
class Report:
    results: list[SessionResult] = field(default_factory=list)
    photos: int = 0

    def apcer(self, species: str) -> Rate:
        rs = [r for r in self.results if r.species == species]
        return Rate(sum(r.result.status == "live" for r in rs), len(rs))

    def bpcer(self) -> Rate:
        rs = [r for r in self.results if r.species == "bona-fide"]
        return Rate(sum(r.result.status != "live" for r in rs), len(rs))

    def non_response(self) -> Rate:
        rs = [r for r in self.results if r.species == "bona-fide"]
        return Rate(sum(r.result.status == "inconclusive" for r in rs), len(rs))

    def decision_times(self) -> np.ndarray:
        return np.array([r.seconds for r in self.results if r.species == "bona-fide"])

    def reasons(self, species: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            if r.species == species:
                for why in r.result.detail.get("reasons", []):
                    out[why] = out.get(why, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        from kiosk.vision.liveness import decide as dc

        t = self.decision_times()
        return {"photos": self.photos,
                "thresholds": {k: getattr(dc, k) for k in dir(dc) if k.isupper()},
                "apcer": {sp: self.apcer(sp).as_dict() for sp in SPECIES},
                "bpcer": self.bpcer().as_dict(), "non_response": self.non_response().as_dict(),
                "time_to_decision_s": {"n": int(len(t)), "median": float(np.median(t)) if len(t) else None,
                                       "p95": float(np.percentile(t, 95)) if len(t) else None}}

    def lines(self) -> list[str]:
        t = self.decision_times()
        out = [f"photos: {self.photos}; sessions: {len(self.results)}"]
        for sp in SPECIES:
            out.append(f"APCER {sp:16s} {self.apcer(sp).line()}   refused by: {self.reasons(sp)}")
        out.append(f"BPCER {'':16s} {self.bpcer().line()}   reasons: {self.reasons('bona-fide')}")
        out.append(f"non-response {'':9s} {self.non_response().line()}")
        if len(t):
            out.append(f"time to decision (simulated clock, bona fide): median {np.median(t):.2f} s, "
                       f"p95 {np.percentile(t, 95):.2f} s (n={len(t)})")
        return out


def photo_files(data: Path, limit: int, seed: int) -> list[Path]:
    """Up to `limit` photos from `data` (recursively), a seeded sample spread over identities."""
    files = sorted(p for p in Path(data).rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    picked: list[Path] = []
    for i in rng.permutation(len(files)):
        ident = files[i].stem.split("__")[0]
        if ident in seen:
            continue
        seen.add(ident)
        picked.append(files[i])
        if len(picked) >= limit:
            break
    return picked


def evaluate(photos: list[np.ndarray], bona_fide_per_photo: int = 2, attacks_per_photo: int = 1,
             seed: int = 0,
             progress: Any = None, simulator: Simulator | None = None, limit: int | None = None) -> Report:
    """Run the sessions: for each photo, `bona_fide_per_photo` genuine sessions and
    `attacks_per_photo` of each species, each in its own random room."""
    from kiosk.errors import KioskError

    sim = simulator or Simulator()
    rng = np.random.default_rng(seed)
    report = Report()
    for photo in photos:
        if limit is not None and report.photos >= limit:
            break
        try:
            fm = sim.face_model(photo, face_px=float(rng.uniform(140, 200)))
        except KioskError:
            continue  # no face found in this photo
        report.photos += 1
        plan = ["bona-fide"] * bona_fide_per_photo + [sp for sp in SPECIES for _ in range(attacks_per_photo)]
        for species in plan:
            room = random_room(rng)
            subject = build_subject(species, fm, rng, sim.size, room)
            res = sim.run(subject, room, int(rng.integers(1 << 30)), species)
            report.results.append(res)
            if progress is not None:
                progress(res)
    return report
