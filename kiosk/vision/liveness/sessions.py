"""Simulated liveness sessions: one bona-fide or attack presentation through the real check.

A session builds a `PhotometricCamera` around a subject (a live face, a print, a replay ...),
a headless UI whose `show_field` lights the simulated scene and whose turn prompt reaches the
subject, the real face pipeline and the real `ScreenLightLiveness`, all on a virtual clock (so
a 3 s challenge costs only its computing time). Used by the tests, `kiosk liveness eval` and
the benchmark.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kiosk.checkin import events as E
from kiosk.checkin.headless import HeadlessDriver
from kiosk.checkin.ports import LivenessResult
from kiosk.hardware.camera import photometric as ph
from kiosk.vision.adapters import FaceAdapter
from kiosk.vision.liveness import challenge as ch
from kiosk.vision.liveness.face_model import face_model

SPECIES = ("print", "screen-replay", "recorded-replay", "cut-out-print", "curved-print")


@dataclass
class SessionResult:
    species: str           # "bona-fide" or an attack species
    result: LivenessResult
    seconds: float         # time to decision on the session's clock
    compute_s: float       # real computing time
    meta: dict[str, Any] = field(default_factory=dict)  # photo, skin-tone proxy, room (evaluation)
    # False: the kiosk's face step, which comes before liveness, found no face in the camera's
    # frames, so the check did not run (a failure to acquire, not a liveness decision)
    acquired: bool = True
    # whether a frame also passed the face step's quality gates (facing the camera, lit, still):
    # the kiosk runs liveness only then; the evaluation runs it on every face it sees, and
    # reports the two groups apart
    face_step_ok: bool = True


def random_room(rng: np.random.Generator) -> ph.Room:
    """A clinic's lighting: ambient level and colour, screen strength and geometry vary."""
    warm = rng.uniform(-0.08, 0.08)
    return ph.Room(ambient=float(rng.uniform(0.16, 0.34)),
                   ambient_rgb=(1.0 + warm, 0.97, 0.9 - warm),
                   screen_gain=float(rng.uniform(0.22, 0.45)),
                   screen_offset=float(rng.uniform(0.4, 0.65)),
                   screen_distance=float(rng.uniform(2.2, 3.2)),
                   screen_drop=float(rng.uniform(0.3, 0.9)))


GLASSES_SHARE = 0.3  # of bona-fide subjects wearing spectacles (their lenses mirror the screen)


def draw_glasses(seed: int) -> ph.Glasses | None:
    """Spectacles for a bona-fide subject, from its own seed: drawn from a generator of their own,
    so a session without them is the same session as before glasses were simulated."""
    g = np.random.default_rng([seed, 0x61A55E5])
    return ph.Glasses.random(g) if g.random() < GLASSES_SHARE else None


def build_subject(species: str, fm: ph.FaceModel, rng: np.random.Generator, size: tuple[int, int],
                  room: ph.Room, glasses: ph.Glasses | bool | None = None) -> Any:
    """The subject for one presentation of `species` from face model `fm`. A bona-fide subject
    wears glasses (its `glasses` attribute) with probability GLASSES_SHARE; `glasses` True or
    False: always (lenses drawn all the same) or never; a `Glasses`: those."""
    seed = int(rng.integers(1 << 30))
    if species == "bona-fide":
        b = ph.Behaviour(seed=seed, turn_delay_s=float(rng.uniform(0.3, 0.7)),
                         turn_speed_dps=float(rng.uniform(35, 70)), turn_peak_deg=float(rng.uniform(16, 28)),
                         blink_every_s=float(rng.uniform(2.0, 5.0)), sway_px=float(rng.uniform(0.5, 2.0)))
        lenses = draw_glasses(seed)
        if isinstance(glasses, ph.Glasses):
            lenses = glasses
        elif glasses is True and lenses is None:
            lenses = ph.Glasses.random(np.random.default_rng([seed, 1]))
        elif glasses is False:
            lenses = None
        return ph.LiveFace(fm, b, specular=float(rng.uniform(0.05, 0.25)), glasses=lenses)
    if species == "curved-print":
        # the paper bent round the attacker's own head: it turns in 3-D and leaves a homography
        # like a face does; only its missing relief (no nose to shade) can give it away
        b = ph.Behaviour(seed=seed, turn_delay_s=float(rng.uniform(0.3, 0.7)),
                         turn_speed_dps=float(rng.uniform(35, 70)), turn_peak_deg=float(rng.uniform(20, 35)),
                         blink_every_s=0.0)
        return ph.FlatPrint(fm, b, margin=float(rng.uniform(1.2, 2.0)), bend=float(rng.uniform(1.0, 2.5)))
    if species in ("print", "cut-out-print"):
        # the attacker complies: turns the paper as far as a head would turn
        b = ph.Behaviour(seed=seed, turn_delay_s=float(rng.uniform(0.3, 0.7)),
                         turn_speed_dps=float(rng.uniform(35, 70)), turn_peak_deg=float(rng.uniform(20, 35)),
                         blink_every_s=float(rng.uniform(2.0, 4.0)) if species == "cut-out-print" else 0.0)
        return ph.FlatPrint(fm, b, glossy=float(rng.choice([0.0, 0.0, 0.4])),
                            margin=float(rng.uniform(1.2, 2.5)), eye_holes=species == "cut-out-print")
    if species == "screen-replay":
        # a video of the person (their own room light, blinking) on a phone or tablet
        face = ph.LiveFace(fm, ph.Behaviour(seed=seed, blink_every_s=3.0))
        own = ph.Light.of((70, 70, 70), "full")

        def content(t_ns: int) -> np.ndarray:
            return face.render(t_ns, own, room)

        return ph.ScreenReplay(content, size, fm.centre, fm.face_width, bezel=bool(rng.random() < 0.8),
                               glare=float(rng.uniform(0.2, 0.7)), moire=float(rng.uniform(0.02, 0.08)),
                               brightness=float(rng.uniform(0.8, 1.3)), extent=float(rng.uniform(1.3, 2.0)),
                               seed=seed)
    if species == "recorded-replay":
        # a genuine session recorded during another challenge, replayed on a large tablet held
        # so close that its edges leave the frame, with a matte (low-glare) screen
        other = ch.draw(random.Random(seed))
        fields = [(f.color, f.region, f.seconds) for f in other.fields]
        turn_at = sum(f.seconds for f in other.fields[:other.turn_index])
        recording = ph.recorded_session(fm, random_room(rng), size, fields, other.turn, seed, turn_at)
        return ph.ScreenReplay(recording, size, fm.centre, fm.face_width, species="recorded-replay",
                               bezel=False,
                               glare=0.0, moire=float(rng.uniform(0.0, 0.03)), brightness=1.0, extent=4.0,
                               seed=seed)
    raise ValueError(f"unknown species {species!r}")


class Simulator:
    """Runs sessions on one pipeline and one liveness check (models loaded once)."""

    def __init__(self, models_dir: Path | None = None, size: tuple[int, int] = (640, 480),
                 templates: bool = True) -> None:
        """`templates=False`: skip the match templates (the evaluation judges liveness only)."""
        from kiosk.config import VisionTable
        from kiosk.vision.liveness.check import LivenessSettings, ScreenLightLiveness
        from kiosk.vision.pipeline import FacePipeline

        self.size = size
        self.pipeline = FacePipeline(VisionTable(), models_dir=models_dir)
        self.models_dir = models_dir
        self._camera_box: dict[str, Any] = {}
        settings = LivenessSettings() if templates else LivenessSettings(max_templates=0)
        self.check = ScreenLightLiveness(_CameraProxy(self._camera_box), settings, models_dir=models_dir)

    def face_model(self, photo: np.ndarray, face_px: float = 170.0) -> ph.FaceModel:
        return face_model(photo, self.size, face_px, models_dir=self.models_dir)

    # the face step before liveness: this many frames (1.3 s at 15 frames/s) for the pipeline to
    # see one face, and one that passes its quality gates, as the kiosk's face step waits for one
    ACQUIRE_FRAMES = 20

    def run(self, subject: Any, room: ph.Room, seed: int, species: str, acquire: bool = False) -> SessionResult:
        """One session. `acquire`: first the kiosk's face step, which liveness follows: the
        camera's frames under the idle screen until one passes the pipeline's quality gates; no
        face seen within ACQUIRE_FRAMES and the check does not run (`SessionResult.acquired`
        False); a face seen that never passed them (`face_step_ok` False) is checked all the same."""
        import time

        clock = ph.VirtualClock()
        screen = ph.ScreenLog()
        cam = ph.PhotometricCamera(subject, screen, room, self.size, fps=15.0, clock=clock, seed=seed)
        self._camera_box["camera"] = cam
        ui = HeadlessDriver(clock=clock, on_field=lambda c, r, t: screen.show(c, r, t))
        ui.on(E.LIVENESS_TURN, lambda ev: cam.prompt(str(ev.params["direction"])))
        self.pipeline.reset()
        faces = FaceAdapter(cam, self.pipeline)
        self.check.rng = random.Random(seed)
        self.check.clock = clock
        t0 = time.perf_counter()
        seen, ok = self._face_step(cam) if acquire else (True, True)
        if not seen:
            res = LivenessResult("inconclusive", self.check.method, {"reasons": ["face-not-acquired"]}, ())
            return SessionResult(species, res, 0.0, time.perf_counter() - t0, acquired=False, face_step_ok=False)
        t_start = clock.monotonic_ns()  # the time to decision counts from the check's start
        res = self.check.run(faces, ui, clock)
        return SessionResult(species, res, (clock.monotonic_ns() - t_start) / 1e9, time.perf_counter() - t0,
                             face_step_ok=ok)


    def _face_step(self, cam: ph.PhotometricCamera) -> tuple[bool, bool]:
        """(one face seen, a frame passed the quality gates) within ACQUIRE_FRAMES frames."""
        seen = False
        for _ in range(self.ACQUIRE_FRAMES):
            obs = self.pipeline.process(cam.read(), want_template=False)
            if obs.ok:
                return True, True
            seen = seen or (obs.faces == 1 and obs.landmarks is not None)
        return seen, False


class _CameraProxy:
    """The check holds one camera; the simulator swaps the camera behind it per session."""

    def __init__(self, box: dict[str, Any]) -> None:
        self._box = box

    def __getattr__(self, name: str) -> Any:
        return getattr(self._box["camera"], name)
