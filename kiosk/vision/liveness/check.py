"""The screen-light liveness check: the engine's `LivenessCheck` for `engine.liveness = "screen-light"`.

One run: lock the camera's exposure and white balance, show the random field sequence (each
field's on-screen time comes back from the UI and lines frames up with it), asking for a head
turn to a random side as the last two colour fields go on, and watch until the yaw passes the
threshold. Every frame goes through the face pipeline (one face, the same track) and the face
mesh as it is captured; some frames also yield a template, so the engine's 1:1 match uses
frames from inside the challenge. Then unlock the camera and decide
(kiosk.vision.liveness.decide). Frames live only inside `run`.
"""
from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kiosk.checkin import events as E
from kiosk.checkin.ports import Clock, FaceSource, LivenessResult, UiPort
from kiosk.errors import CameraError
from kiosk.vision.liveness import challenge as ch
from kiosk.vision.liveness import decide as dc
from kiosk.vision.liveness import signals as sg
from kiosk.vision.liveness.mesh import FaceMeshModel, IrisModel, Mesh

IDLE_COLOR = (70, 70, 70)
MAX_LIT_YAW = 0.08  # yaw-ratio change (≈ 4°) beyond which a frame no longer counts for the light test
METHOD = "screen-light+turn"
# the exposure is locked below the idle field's auto exposure by what the face needs, so the
# white field's added light does not clip the skin it is measured on (a clipped patch no longer
# answers the light): the face's bright end (98th percentile of a pixel's largest channel, in
# linear light, in the face box of a frame taken just before the lock) times 1 + the screen's
# largest expected gain (a screen at arm's length adds 20-50 % to a clinic's ambient light on
# the face) must stay under CLIP_LEVEL. No more than that: every step down costs the darker
# faces signal against the sensor's noise (a fixed 1.5 refused dark skin's half fields and the
# turn's tracking more often, README "Liveness")
MAX_SCREEN_GAIN = 0.5
CLIP_LEVEL = 0.95
MAX_HEADROOM = 2.0        # one stop at most: a face clipped at idle is lit far beyond the screen


def exposure_headroom(image: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """The factor (1 ... MAX_HEADROOM) to lock the exposure below auto for a face in `box`
    (left, top, right, bottom) of an sRGB frame taken under the idle field."""
    x0, y0, x1, y1 = (max(0, int(v)) for v in box)
    crop = image[y0:y1, x0:x1]
    if crop.size == 0:
        return 1.0
    level = float(np.percentile(sg.linear(crop).max(axis=2), 98))
    return float(np.clip(level * (1.0 + MAX_SCREEN_GAIN) / CLIP_LEVEL, 1.0, MAX_HEADROOM))


@dataclass(frozen=True)
class LivenessSettings:
    """field_s: seconds per field (at least 0.34). latency_s: camera pipeline delay to skip
    after each change. turn_s: how long after the prompt the head turn is filmed at most.
    template_every: one template per this many still challenge frames. max_templates: match
    templates computed during the challenge (0: none, for the liveness evaluation)."""

    field_s: float = ch.MIN_FIELD_S
    latency_s: float = 0.1
    turn_s: float = 2.0
    template_every: int = 8
    # two: one from the still part, one from the turn. dlib's ResNet holds the GIL (~0.3 s a
    # template here), so each one delays the worker that processes the frames; four made it
    # fall a second behind the camera (README "Liveness", the benchmark)
    max_templates: int = 2


def settings_from(table: Any) -> LivenessSettings:
    """The `[liveness]` config table as settings."""
    return LivenessSettings(table.field_s, table.latency_s, table.turn_s, table.template_every)


class ScreenLightLiveness:
    """Screen-light challenge + head turn over a camera that can lock exposure and white balance."""

    method = METHOD
    required = True

    def __init__(self, camera: Any, settings: LivenessSettings | None = None, models_dir: Path | None = None,
                 rng: random.Random | None = None, clock: Clock | None = None) -> None:
        self.camera = camera
        # a simulated camera on a virtual clock (the demo) times the challenge on that clock;
        # a real one uses the engine's
        self.clock = clock
        self.settings = settings or LivenessSettings()
        self.models_dir = models_dir
        self.mesh_model = FaceMeshModel(models_dir)
        self.iris_model = IrisModel(models_dir)
        self.rng = rng or random.SystemRandom()
        self.last_timing: dict[str, float] = {}

    # --- one frame -------------------------------------------------------------------
    def _mesh(self, frame: Any, obs: Any, roi: _Roi) -> Mesh | None:
        """The face mesh on the detector's face; or, where the detector lost it (`obs.faces`
        0) and `roi` holds the last mesh's region, on that region moved with the face, as a
        face-mesh pipeline tracks: the detector is frontal and loses a head turned past ~20-25
        degrees (the mesh model follows it further) and, in some frames, a marginal face (a dim
        field, a laugh). Never where it sees several faces."""
        lm = obs.landmarks
        if lm is not None and obs.faces == 1:
            le, re = lm.left_eye, lm.right_eye
            b = lm.box
            box = (b.left, b.top, b.right, b.bottom)
            angle = float(np.arctan2(re[1] - le[1], re[0] - le[0]))
        elif obs.faces == 0 and roi.centre is not None:
            box, angle = roi.box, roi.angle
        else:
            return None
        tracked = lm is None or obs.faces != 1
        t0 = time.perf_counter()
        mesh = self.mesh_model.run(frame.image, box, angle)
        self.last_timing["mesh_s"] += time.perf_counter() - t0
        self.last_timing["mesh_n"] += 1
        if mesh.score <= 0.5:
            return None
        roi.follow(box, angle, mesh, tracked)
        return mesh

    def _template(self, frame: Any, landmarks: Any) -> Any:
        from kiosk.vision.template import compute_template

        return compute_template(frame.image, landmarks, self.models_dir)

    def run(self, faces: FaceSource, ui: UiPort, clock: Clock) -> LivenessResult:
        clock = self.clock or clock
        self.last_timing = {"mesh_s": 0.0, "mesh_n": 0, "iris_s": 0.0, "template_s": 0.0, "frames": 0,
                            "process_s": 0.0, "process_cpu_s": 0.0, "template_cpu_s": 0.0,
                            "finish_s": 0.0, "finish_cpu_s": 0.0}
        t_start = clock.monotonic_ns()
        try:
            roi = _Roi()
            headroom = self._headroom(faces, roi)
            self.last_timing["headroom"] = headroom
            self.camera.lock_exposure(True, headroom)
            self.camera.lock_white_balance(True)
            c = self.camera.controls()
            if not (c.get("exposure_locked") and c.get("white_balance_locked")):
                raise CameraError(f"{c.get('backend', 'camera')}: exposure/white balance did not lock")
            result = self._challenge(faces, ui, clock, roi)
        finally:
            try:
                ui.show_field(IDLE_COLOR, "full")
            finally:
                self.camera.lock_exposure(False)
                self.camera.lock_white_balance(False)
        self.last_timing["decision_s"] = (clock.monotonic_ns() - t_start) / 1e9
        return result

    HEADROOM_FRAMES = 3  # frames under auto exposure to find the face in (a marginal face flickers)

    def _headroom(self, faces: FaceSource, roi: _Roi) -> float:
        """exposure_headroom from a frame under auto exposure (1.0 when none of HEADROOM_FRAMES
        shows one face); its face mesh seeds `roi`, so the challenge's first frames have the
        face even where the detector misses it in them."""
        pipeline = getattr(faces, "pipeline", None)
        if pipeline is None:
            return 1.0
        for _ in range(self.HEADROOM_FRAMES):
            frame = self.camera.read()
            obs = pipeline.process(frame, want_template=False)
            if obs.landmarks is not None and obs.faces == 1:
                self._mesh(frame, obs, roi)
                b = obs.landmarks.box
                return exposure_headroom(frame.image, (b.left, b.top, b.right, b.bottom))
        return 1.0

    def _challenge(self, faces: FaceSource, ui: UiPort, clock: Clock, roi: _Roi) -> LivenessResult:
        """Capture at the camera's own rate (a slow CPU cannot thin out a field's frames) while
        one worker thread processes the frames in order (pipeline, mesh, measurements, the turn's
        tracking, the match templates), so the decision follows the last frame closely. The turn
        is asked for as the last colour fields go on and ends as soon as the worker has seen the
        yaw pass the threshold."""
        st = self.settings
        pipeline = getattr(faces, "pipeline", None)
        if pipeline is None:
            raise CameraError("liveness needs the camera's face pipeline")
        pipeline.reset()
        plan = ch.draw(self.rng, st.field_s)
        proc = _Processor(self, pipeline, plan, roi)
        marks: list[int] = []
        # a simulated camera on its own virtual clock (`self.clock`) has all the time in the
        # world: process each frame as it comes, so the turn stops as soon as it is seen
        sync = self.clock is not None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="liveness") as pool:
            jobs = []

            def take(phase: int) -> None:
                job = pool.submit(proc.step, self.camera.read(), phase)
                jobs.append(job)
                if sync:
                    job.result()

            turn_end = 0
            for i, f in enumerate(plan.fields):
                t_on = ui.show_field(f.color, f.region)
                marks.append(t_on)
                if i == plan.turn_index:
                    ui.emit(E.Event(E.LIVENESS_TURN, {"direction": plan.turn}, t_on))
                    turn_end = t_on + int(st.turn_s * 1e9)
                while clock.monotonic_ns() < t_on + int(f.seconds * 1e9):
                    take(_STILL if i < plan.turn_index else _LIT_TURN)
            marks.append(ui.show_field(IDLE_COLOR, "full"))
            if not turn_end:
                ui.emit(E.Event(E.LIVENESS_TURN, {"direction": plan.turn}, clock.monotonic_ns()))
                turn_end = clock.monotonic_ns() + int(st.turn_s * 1e9)
            while clock.monotonic_ns() < turn_end and not proc.turn_done():
                take(_TURN)
            for j in jobs:
                j.result()  # re-raises a worker's error here
        return proc.finish(marks)

    def _sample(self, frame: Any, grey: np.ndarray, mesh: Mesh, ref: dict[str, Any], count: int,
                follow: bool) -> sg.FrameSample:
        """One frame's measurements. `follow`: the head may be turning, so the skin is sampled
        at this frame's mesh points; a still face is sampled at the first frame's points moved
        with the face as its texture moved (sg.Registration; the mesh's centre where that
        fails), so its patches stay on the same skin instead of jittering with the mesh."""
        image = frame.image
        if "skin" not in ref:
            ref["skin"] = sg.skin_points(mesh)
            ref["normals"] = sg.point_normals(mesh.points)[ref["skin"]]
            p = mesh.points[ref["skin"], :2]
            ref["xy"] = (p - p.mean(axis=0)) / mesh.width
            # fixed for the session, so every frame samples the same wall
            ref["bg"] = sg.background_points(image.shape[1], image.shape[0], mesh)
            ref["pts"] = mesh.points[ref["skin"], :2].copy()
            ref["centroid"] = mesh.points[:, :2].mean(axis=0)
            lo, hi = mesh.points[:, :2].min(axis=0), mesh.points[:, :2].max(axis=0)
            ref["register"] = sg.Registration(grey, (int(lo[0]), int(lo[1]), int(hi[0]) + 1, int(hi[1]) + 1))
        radius = max(2, int(round(0.045 * mesh.width)))
        if follow:
            pts = mesh.points[ref["skin"], :2]
        else:
            moved = ref["register"].offset(grey)
            shift = np.asarray(moved) if moved is not None else mesh.points[:, :2].mean(axis=0) - ref["centroid"]
            pts = ref["pts"] + shift
        ii = sg.integral(image)  # once per frame, for both skin and background
        skin = sg.sample(ii, pts, radius)
        bg = sg.sample(ii, ref["bg"], radius)
        eyes: tuple[float, float] = (float("nan"), float("nan"))
        if count % 2 == 0:  # eyelids at half the frame rate: a blink (~150 ms) still shows
            t0 = time.perf_counter()
            eyes = self.iris_model.eye_openness(image, mesh)
            self.last_timing["iris_s"] += time.perf_counter() - t0
        centre = (float(mesh.points[:, 0].mean()), float(mesh.points[:, 1].mean()))
        return sg.FrameSample(frame.t_ns, skin, bg, mesh.width, centre, mesh.yaw_ratio(),
                              float(np.mean(eyes)) if eyes[0] == eyes[0] else float("nan"),
                              sg.glare_fraction(image, mesh),
                              sg.frame_lines(grey, mesh) if count % 10 == 0 else -1)


@dataclass
class _Roi:
    """Where the last mesh was: the box it was run on, the eye line's angle, the mesh's centre.
    Moved with the mesh's centre, it is where the next frame's face is looked for when the
    detector loses it during the turn."""

    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    angle: float = 0.0
    centre: tuple[float, float] | None = None

    def follow(self, box: tuple[float, float, float, float], angle: float, mesh: Mesh, tracked: bool) -> None:
        """`mesh` was found in `box`: from the detector, or (`tracked`) the last region."""
        c = (float(mesh.points[:, 0].mean()), float(mesh.points[:, 1].mean()))
        if tracked and self.centre is not None:  # move the region with the face
            dx, dy = c[0] - self.centre[0], c[1] - self.centre[1]
            box = (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)
        self.box, self.angle, self.centre = box, angle, c


# what a frame is for: a still, frontal face under the fields; a colour field while the head
# may turn; the turn alone after the fields
_STILL, _LIT_TURN, _TURN = 0, 1, 2


class _Processor:
    """The per-frame work of one challenge, fed in capture order by one worker thread."""

    def __init__(self, check: ScreenLightLiveness, pipeline: Any, plan: ch.Challenge, roi: _Roi) -> None:
        self.check, self.pipeline, self.plan = check, pipeline, plan
        self.st = check.settings
        self.samples: list[sg.FrameSample] = []
        self.templates: list[Any] = []
        self.ref: dict[str, Any] = {}
        self.frames = self.lost = self.flash_frames = 0
        self.flash_periods: list[int] = []
        self.track: _Track | None = None
        self.turn_yaws: list[float] = []
        self.frontal: np.ndarray | None = None
        self.frontal_box = (0, 0, 0, 0)
        self.frontal_mesh: np.ndarray | None = None
        self.track_yaw = float("nan")  # the largest yaw ratio of the frames tracked
        self.width = 0.0
        self.frontal_yaw = float("nan")
        self.want_sign = 1.0 if plan.turn == "turn-left" else -1.0  # turn-left: nose to the image's right
        self._past = 0
        self._last_t = 0
        self.roi = roi  # where the face mesh was last (seeded before the challenge)

    def turn_done(self) -> bool:
        """The yaw passed the threshold and three more frames were seen (read by the capture loop)."""
        return self._past >= 3

    def step(self, frame: Any, phase: int) -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            self._step(frame, phase)
        finally:
            # wall and CPU time (the process's: the models run threads of their own; on the
            # simulator's virtual clock nothing else runs meanwhile). CPU time does not grow
            # with the machine's load
            self.check.last_timing["process_s"] += time.perf_counter() - t0
            self.check.last_timing["process_cpu_s"] += time.process_time() - c0

    def _keep(self, frame: Any, landmarks: Any) -> None:
        """A match template from this challenge frame, computed now (while the camera captures)."""
        if len(self.templates) < self.st.max_templates:
            t0, c0 = time.perf_counter(), time.process_time()
            self.templates.append(self.check._template(frame, landmarks))
            self.check.last_timing["template_s"] += time.perf_counter() - t0
            self.check.last_timing["template_cpu_s"] += time.process_time() - c0

    def _step(self, frame: Any, phase: int) -> None:
        k = self.frames
        self.frames += 1
        self.check.last_timing["frames"] += 1
        lit = phase != _TURN
        if lit:
            if self.flash_frames:
                self.flash_periods.append(frame.t_ns - self._last_t)
            self.flash_frames += 1
            self._last_t = frame.t_ns
        obs = self.pipeline.process(frame, want_template=False)
        # the mesh follows the face from its last region where the frontal detector loses it
        mesh = self.check._mesh(frame, obs, self.roi)
        if mesh is None:
            # a face lost under the fields starves the light tests; one lost far into the turn
            # (the detector is frontal) still counts towards the frames after the threshold
            if lit:
                self.lost += 1
            if self._past:
                self._past += 1
            return
        grey = _grey(frame.image)  # once a frame: registration, bezel lines, turn tracking
        if phase == _STILL:
            self.samples.append(self.check._sample(frame, grey, mesh, self.ref, len(self.samples), False))
            # all but one template from the still part (the turn's frames may fail the frontal
            # quality gates); the last still frame is the turn's reference
            if obs.ok and k % self.st.template_every == self.st.template_every - 1 \
                    and len(self.templates) < self.st.max_templates - 1:
                self._keep(frame, obs.landmarks)
            self.frontal = grey
            p = mesh.points[:, :2]
            self.frontal_box = (int(p[:, 0].min()), int(p[:, 1].min()), int(p[:, 0].max()) + 1,
                                int(p[:, 1].max()) + 1)
            self.width = mesh.width
            self.frontal_mesh = mesh.points
            return
        if self.frontal_yaw != self.frontal_yaw and self.samples:
            self.frontal_yaw = float(np.median([s.yaw for s in self.samples[-8:]]))
        if self.frontal is not None and self.track is None:
            self.track = _Track(self.frontal, self.frontal_box, self.width, self.frontal_mesh)
        y = (mesh.yaw_ratio() - self.frontal_yaw) * self.want_sign
        self.turn_yaws.append(y)
        if lit and abs(y) < MAX_LIT_YAW:
            # a colour field's frame counts for the light test until the head has started to
            # turn (turned, the far cheek's patches slide off the face)
            self.samples.append(self.check._sample(frame, grey, mesh, self.ref, len(self.samples), True))
        if self.track is not None and self._past < 3:
            # the tracking runs up to the first frame past the threshold and two more (tracked
            # on to the turn's peak, the far side's corners are occluded and the relief's fit
            # got worse: median t 8.2 against 10.8 on calibration seed 61)
            self.track.add(grey)
            # the turn's extent while tracked (a single frame's mesh yaw can dip)
            self.track_yaw = y if self.track_yaw != self.track_yaw else max(self.track_yaw, y)
        if y >= dc.MIN_YAW_RATIO or self._past:
            self._past += 1
        if obs.ok and k % 3 == 0:
            self._keep(frame, obs.landmarks)

    def finish(self, marks: list[int]) -> LivenessResult:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return self._finish(marks)
        finally:
            self.check.last_timing["finish_s"] = time.perf_counter() - t0
            self.check.last_timing["finish_cpu_s"] = time.process_time() - c0

    def _finish(self, marks: list[int]) -> LivenessResult:
        st, plan, samples = self.st, self.plan, self.samples
        ev = dc.Evidence(frames=self.frames)
        period = float(np.median(self.flash_periods)) if self.flash_periods else 0.0
        groups = dc.plateaus(samples, marks, int(st.latency_s * 1e9 + 0.5 * period))
        if len(samples) >= 5 and self.lost <= 0.2 * self.flash_frames:
            ev.light_corr, ev.light_gain = dc.light_response(plan, groups, "skin")
            ev.field_deviation = dc.field_deviation(plan, groups)
            _, bgain = dc.light_response(plan, groups, "background")
            if bgain == bgain and ev.light_gain == ev.light_gain and ev.light_gain > 0:
                ev.background_ratio = max(0.0, bgain) / ev.light_gain
            ev.curvature, ev.curvature_t = dc.curvature(plan, groups, self.ref["xy"], self.ref["normals"])
        if samples and self.turn_yaws:
            ev.yaw = max(self.turn_yaws)
            if self.track is not None and ev.yaw >= dc.MIN_YAW_RATIO:
                ev.parallax, ev.bend = self.track.residual()
                ev.relief, ev.relief_t = self.track.relief(self.track_yaw, self.want_sign)
        ev.glare = dc.screen_glare(plan, groups)
        sides = [s.sides for s in samples if s.sides >= 0]
        ev.sides = int(np.median(sides)) if sides else 0
        ev.blinks = dc.count_blinks([s.eyes for s in samples])
        status, reasons = dc.decide(ev)
        ev.reasons = reasons
        detail = ev.as_detail()
        detail["turn"] = plan.turn
        return LivenessResult(status, METHOD, detail, tuple(self.templates))


class _Track:
    """Corners on the face tracked from the frontal frame through the turn, frame by frame as
    they arrive (kiosk.vision.liveness.decide.parallax_start / parallax_step); `residual` fits
    the homography."""

    def __init__(self, frontal: np.ndarray, box: tuple[int, int, int, int], width: float,
                 mesh_points: np.ndarray | None) -> None:
        self.width = width
        self.state = dc.parallax_start(frontal, box, width)
        # the relief test's own corners, all well inside the mesh's outline, and the frontal
        # mesh's depth at each
        self.inner: dc.TrackState | None = None
        self.depth: np.ndarray | None = None
        if mesh_points is not None:
            margin = dc.RELIEF_MARGIN * width
            self.inner = dc.parallax_start(frontal, box, width, dc.inner_mask(frontal.shape, mesh_points, margin))
            if self.inner is not None:
                self.depth = dc.mesh_depth_at(self.inner.start, mesh_points, margin)

    def add(self, grey: np.ndarray) -> None:
        if self.state is not None:
            self.state = dc.parallax_step(self.state, grey)
        if self.inner is not None:
            self.inner = dc.parallax_step(self.inner, grey)

    def residual(self) -> tuple[float, float]:
        """(homography residual, bent-sheet residual), face widths."""
        if self.state is None:
            return float("nan"), float("nan")
        return dc.parallax_residual(self.state, self.width), dc.bend_residual(self.state, self.width)

    def relief(self, yaw_ratio: float, sign: float) -> tuple[float, float]:
        """(share of the mesh's relief moved as depth, its t): dc.relief."""
        if self.inner is None or self.depth is None:
            return float("nan"), float("nan")
        return dc.relief(self.inner, self.width, self.depth, yaw_ratio, sign)


def _grey(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
