"""`kiosk liveness eval`: ISO/IEC 30107-3 figures from simulated presentations.

Bona-fide sessions are synthesised from real photos (`../shared/data/faces-identity/` or any
folder of face photos) under random room lighting and screen geometry; each attack species
(kiosk.vision.liveness.sessions.SPECIES) is presented from the same photos. A share of the
bona-fide subjects wear glasses (sessions.GLASSES_SHARE), whose lenses mirror the screen. The
thresholds are the fixed constants of kiosk.vision.liveness.decide, set before the run.

APCER (per species): attacks classified live. BPCER: bona-fide sessions not classified live
(attack or inconclusive), also by skin-tone proxy, lighting and glasses. Non-response:
bona-fide sessions that ended inconclusive. Each with its count and a Clopper-Pearson 95 %
interval. Each session starts as the kiosk's does, after its face step: a session in which the
pipeline sees no face is a failure to acquire, counted apart (the check never ran); one whose
face never passes the face step's quality gates (a photo's pose is frozen) is checked all the
same and reported in its own group. A refused bona-fide session gets the kiosk's one guided
retry, reported as the check-ins sent to the front desk.
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


# ITA° bins (Chardon, Cretois and Hourseau 1991; the boundaries in common use since Del Bino
# et al. 2006): a colorimetric proxy for skin tone measured from the photo, not a label
ITA_BINS: tuple[tuple[str, float], ...] = (("very light", 55.0), ("light", 41.0), ("intermediate", 28.0),
                                           ("tan", 10.0), ("brown", -30.0), ("dark", -float("inf")))


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB values in [0, 1] (..., 3)."""
    v = np.asarray(rgb, np.float64)
    lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    e = 216 / 24389
    f = np.where(xyz > e, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


NO_COLOUR = "no colour (greyscale photo)"
MIN_SKIN_CHROMA = 4.0  # C*ab: below it the photo carries no skin colour to measure


def ita_degrees(srgb: np.ndarray) -> float:
    """The individual typology angle ITA° = atan((L* - 50) / b*) · 180/π, the median over skin
    patches given as sRGB in [0, 1] (N, 3). NaN when the patches have no colour (a greyscale
    photo: b* ≈ 0 makes the angle meaningless)."""
    lab = srgb_to_lab(srgb)
    if float(np.median(np.hypot(lab[:, 1], lab[:, 2]))) < MIN_SKIN_CHROMA:
        return float("nan")
    b = np.maximum(lab[:, 2], 1e-3)  # skin's b* is positive
    return float(np.median(np.degrees(np.arctan((lab[:, 0] - 50.0) / b))))


def ita_bin(ita: float) -> str:
    if ita != ita:
        return NO_COLOUR
    return next(name for name, lo in ITA_BINS if ita > lo)


def photo_ita(fm: Any) -> float:
    """ITA° of the photo's skin: patches at the face mesh's plain-skin points (cheeks, forehead,
    nose, chin) of the placed photo, before any simulated light."""
    import cv2

    from kiosk.vision.liveness import signals as sg
    from kiosk.vision.liveness.mesh import Mesh

    mesh = Mesh(fm.points, 1.0)
    srgb = np.clip(np.where(fm.albedo <= 0.0031308, fm.albedo * 12.92,
                            1.055 * np.power(np.clip(fm.albedo, 0, 1), 1 / 2.4) - 0.055), 0, 1)
    ii = np.asarray(cv2.integral(srgb.astype(np.float32)))
    patches = sg.sample(ii, mesh.points[sg.skin_points(mesh), :2], max(2, int(0.03 * mesh.width)))
    return ita_degrees(patches[np.all(np.isfinite(patches), axis=1)])


@dataclass
class Report:
    results: list[SessionResult] = field(default_factory=list)
    photos: int = 0

    def _acquired(self, species: str | None = None) -> list[SessionResult]:
        """The sessions the face step acquired (liveness ran), of `species` or of every attack."""
        return [r for r in self.results if r.acquired
                and (r.species == species if species else r.species != "bona-fide")]

    def apcer(self, species: str) -> Rate:
        rs = self._acquired(species)
        return Rate(sum(r.result.status == "live" for r in rs), len(rs))

    def bpcer(self) -> Rate:
        rs = self._acquired("bona-fide")
        return Rate(sum(r.result.status != "live" for r in rs), len(rs))

    def non_response(self) -> Rate:
        rs = self._acquired("bona-fide")
        return Rate(sum(r.result.status == "inconclusive" for r in rs), len(rs))

    def sent_to_desk(self) -> Rate:
        """Bona-fide check-ins refused twice: the session and the kiosk's one guided retry."""
        rs = self._acquired("bona-fide")
        return Rate(sum(r.result.status != "live" and r.meta.get("retry") != "live" for r in rs), len(rs))

    def not_acquired(self, species: str) -> Rate:
        """Failure to acquire: the face step before liveness found no face (the check did not run)."""
        rs = [r for r in self.results if r.species == species]
        return Rate(sum(not r.acquired for r in rs), len(rs))

    def bpcer_by(self, key: str, order: tuple[str, ...] = ()) -> dict[str, Rate]:
        """BPCER per value of a session's `meta[key]` (skin-tone bin, lighting ...)."""
        rs = self._acquired("bona-fide")
        vals = list(order) + sorted({str(r.meta.get(key)) for r in rs} - set(order))
        out = {}
        for v in vals:
            sel = [r for r in rs if str(r.meta.get(key)) == v]
            if sel:
                out[v] = Rate(sum(r.result.status != "live" for r in sel), len(sel))
        return out

    def apcer_by(self, key: str, order: tuple[str, ...] = ()) -> dict[str, Rate]:
        """APCER over all species per value of `meta[key]`."""
        rs = self._acquired()
        vals = list(order) + sorted({str(r.meta.get(key)) for r in rs} - set(order))
        out = {}
        for v in vals:
            sel = [r for r in rs if str(r.meta.get(key)) == v]
            if sel:
                out[v] = Rate(sum(r.result.status == "live" for r in sel), len(sel))
        return out

    def bpcer_by_glasses(self) -> dict[str, Rate]:
        """BPCER of the bona-fide sessions with and without (simulated) glasses."""
        names = {"True": "glasses", "False": "no glasses"}
        return {names.get(k, k): v for k, v in self.bpcer_by("glasses", tuple(names)).items()}

    def photos_by_skin_tone(self) -> dict[str, int]:
        seen: dict[int, str] = {int(r.meta["photo"]): str(r.meta["skin_tone"]) for r in self.results
                                if "photo" in r.meta}
        return {name: n for name in SKIN_ORDER if (n := sum(v == name for v in seen.values()))}

    def decision_times(self) -> np.ndarray:
        return np.array([r.seconds for r in self._acquired("bona-fide")])

    def reasons(self, species: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self._acquired(species):
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
                "sent_to_desk_after_retry": self.sent_to_desk().as_dict(),
                "not_acquired": {sp: self.not_acquired(sp).as_dict() for sp in ("bona-fide",) + SPECIES},
                "photos_by_skin_tone_proxy": self.photos_by_skin_tone(),
                "bpcer_by_skin_tone_proxy": {k: v.as_dict() for k, v in
                                             self.bpcer_by("skin_tone", SKIN_ORDER).items()},
                "apcer_by_skin_tone_proxy": {k: v.as_dict() for k, v in
                                             self.apcer_by("skin_tone", SKIN_ORDER).items()},
                "bpcer_by_lighting": {k: v.as_dict() for k, v in self.bpcer_by("lighting", LIGHT_ORDER).items()},
                "apcer_by_lighting": {k: v.as_dict() for k, v in self.apcer_by("lighting", LIGHT_ORDER).items()},
                "bpcer_by_face_step": {k: v.as_dict() for k, v in
                                       self.bpcer_by("face_step", FACE_STEP_ORDER).items()},
                "apcer_by_face_step": {k: v.as_dict() for k, v in
                                       self.apcer_by("face_step", FACE_STEP_ORDER).items()},
                "bpcer_by_glasses": {k: v.as_dict() for k, v in self.bpcer_by_glasses().items()},
                "time_to_decision_s": {"n": int(len(t)), "median": float(np.median(t)) if len(t) else None,
                                       "p95": float(np.percentile(t, 95)) if len(t) else None}}

    def _breakdown(self, title: str, key: str, order: tuple[str, ...], width: int) -> list[str]:
        """BPCER and APCER (all species) per value of `meta[key]`, under `title`."""
        out = [title]
        ap = self.apcer_by(key, order)
        for k, v in self.bpcer_by(key, order).items():
            a = f"   APCER (all species) {ap[k].line()}" if k in ap else ""
            out.append(f"  BPCER {k:{width}s} {v.line()}{a}")
        return out

    def lines(self) -> list[str]:
        t = self.decision_times()
        out = [f"photos: {self.photos}; sessions: {len(self.results)}"]
        for sp in SPECIES:
            out.append(f"APCER {sp:16s} {self.apcer(sp).line()}   refused by: {self.reasons(sp)}")
        out.append(f"BPCER {'':16s} {self.bpcer().line()}   reasons: {self.reasons('bona-fide')}")
        out.append(f"non-response {'':9s} {self.non_response().line()}")
        out.append(f"after the one guided retry (the same person and room, a new challenge), sent to the front "
                   f"desk: {self.sent_to_desk().line()}")
        fta = {sp: self.not_acquired(sp) for sp in ("bona-fide",) + SPECIES}
        out.append("not acquired (the face step before liveness found no face; not in the rates above): "
                   + ", ".join(f"{sp} {r.k}/{r.n}" for sp, r in fta.items()))
        out += self._breakdown("by skin tone (ITA° of the photo's skin, a colorimetric proxy, not a label; photos "
                               f"per bin {self.photos_by_skin_tone()}):", "skin_tone", SKIN_ORDER, 14)
        out += self._breakdown("by lighting (the session's room: ambient level; the screen's share of the light on "
                               "the face):", "lighting", LIGHT_ORDER, 26)
        out += self._breakdown("by the face step's quality gates in the session's first frames (the kiosk runs "
                               "liveness only after they pass):", "face_step", FACE_STEP_ORDER, 26)
        out.append("by glasses (bona fide; simulated lens reflections of the screen):")
        for k, v in self.bpcer_by_glasses().items():
            out.append(f"  BPCER {k:14s} {v.line()}")
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


SKIN_ORDER = tuple(name for name, _ in ITA_BINS) + (NO_COLOUR,)
LIGHT_ORDER = ("dim room, weak screen", "dim room, strong screen", "bright room, weak screen",
               "bright room, strong screen")


# the kiosk runs liveness after its face step passed (facing the camera, lit, still); a photo's
# pose is frozen in the simulation, so some faces never pass it: they are checked all the same
FACE_STEP = {True: "passed", False: "not passed (a pose the face step asks to correct)"}
FACE_STEP_ORDER = (FACE_STEP[True], FACE_STEP[False])


def lighting(room: Any) -> str:
    """The session's lighting class: ambient below / above the middle of its range, and the
    screen's white adding less / more than its middle (0.33) to the room's light."""
    amb = "dim room" if room.ambient < 0.25 else "bright room"
    return f"{amb}, {'weak' if room.screen_gain < 0.335 else 'strong'} screen"


def _photo_sessions(sim: Simulator, index: int, photo: np.ndarray, bona_fide: int, attacks: int,
                    seed: int) -> list[SessionResult] | None:
    """All sessions of one photo, from a generator seeded by (seed, index): the same sessions
    whatever the number of workers. None: no usable face in the photo."""
    from kiosk.errors import KioskError

    rng = np.random.default_rng([seed, index])
    try:
        fm = sim.face_model(photo, face_px=float(rng.uniform(140, 200)))
        ita = photo_ita(fm)
    except KioskError:
        return None  # no face found in this photo
    out = []
    plan = ["bona-fide"] * bona_fide + [sp for sp in SPECIES for _ in range(attacks)]
    for k, species in enumerate(plan):
        room = random_room(rng)
        subject = build_subject(species, fm, rng, sim.size, room)
        res = sim.run(subject, room, int(rng.integers(1 << 30)), species, acquire=True)
        lens = getattr(subject, "glasses", None)
        res.meta = {"photo": index, "ita": None if ita != ita else round(ita, 1), "skin_tone": ita_bin(ita),
                    "lighting": lighting(room), "face_step": FACE_STEP[res.face_step_ok],
                    "glasses": lens is not None}
        if lens is not None:
            res.meta["lens"] = {"radius_m": round(lens.radius_m, 3), "reflectance": round(lens.reflectance, 4)}
        if species == "bona-fide" and res.acquired and res.result.status != "live":
            # the kiosk's one guided retry: the same person (and glasses) in the same room, a new
            # challenge (its own generator: the sessions after it are those of a run without retries)
            again = np.random.default_rng([seed, index, k, 1])
            person = build_subject(species, fm, again, sim.size, room, glasses=lens if lens is not None else False)
            retry = sim.run(person, room, int(again.integers(1 << 30)), species, acquire=True)
            res.meta["retry"] = retry.result.status
        out.append(res)
    return out


_WORKER: dict[str, Any] = {}


def _work(job: tuple[int, np.ndarray, int, int, int]) -> list[SessionResult] | None:
    if "sim" not in _WORKER:
        _WORKER["sim"] = Simulator(templates=False)
    return _photo_sessions(_WORKER["sim"], *job)


def evaluate(photos: list[np.ndarray], bona_fide_per_photo: int = 2, attacks_per_photo: int = 1,
             seed: int = 0, progress: Any = None, simulator: Simulator | None = None,
             limit: int | None = None, jobs: int = 1, start: int = 0) -> Report:
    """Run the sessions: for each photo, `bona_fide_per_photo` genuine sessions and
    `attacks_per_photo` of each species, each in its own random room; the first `limit`
    photos with a usable face count. `jobs` > 1: photos in that many worker processes.
    `start`: begin at that photo (a run resumed: photo i's sessions depend only on seed and i)."""
    report = Report()
    work = [(i, p, bona_fide_per_photo, attacks_per_photo, seed) for i, p in enumerate(photos) if i >= start]

    def take(got: list[SessionResult] | None) -> bool:
        if got is None:
            return False
        if limit is not None and report.photos >= limit:
            return True
        report.photos += 1
        for res in got:
            report.results.append(res)
            if progress is not None:
                progress(res)
        return limit is not None and report.photos >= limit

    if jobs <= 1:
        sim = simulator or Simulator(templates=False)
        for job in work:
            if take(_photo_sessions(sim, *job)):
                break
        return report
    import multiprocessing

    # spawn: a fresh interpreter per worker (the models' threads do not survive a fork)
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        for got in pool.imap(_work, work):  # in photo order: the same report whatever `jobs`
            if take(got):
                pool.terminate()
                break
    return report
