"""Spectacles in the photometric camera: each lens a convex mirror of the kiosk's screen.

The reflection follows the field (white: bright, dim: next to nothing, a half field: only the
lit half's image, on the lens's side facing it), is as small as a convex mirror makes it
(decide.py's glare bound), stays on the lens as the head turns, and a bona-fide session with
glasses still passes the check.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kiosk.hardware.camera import photometric as ph

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
STRONG = ph.Glasses(radius_m=0.13, reflectance=0.08)  # flattest common lens, uncoated
WHITE = ph.Light.of((255, 255, 255), "full")


@pytest.fixture(scope="module")
def hopper() -> ph.FaceModel:
    from kiosk.hardware.camera.synthetic import grace_hopper
    from kiosk.vision.liveness.face_model import face_model

    return face_model(grace_hopper())


def _still(yaw: float = 0.0) -> ph.Behaviour:
    b = ph.Behaviour(blink_every_s=0, sway_px=0, turn_delay_s=0.0, turn_speed_dps=1000.0,
                     turn_peak_deg=abs(yaw))
    if yaw:
        b.prompt("turn-right" if yaw > 0 else "turn-left", 0)
    return b


def _lens_terms(fm: ph.FaceModel, glasses: ph.Glasses, light: ph.Light, room: ph.Room,
                yaw: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(reflection: radiance the lenses add, H×W×3; lens: H×W bool, where they dim the eyes)."""
    t = 100_000_000 if yaw else 0  # the turn held at its peak
    plain = ph.LiveFace(fm, _still(yaw)).render(t, light, room)
    worn = ph.LiveFace(fm, _still(yaw), glasses=glasses).render(t, light, room)
    dark = ph.Light.of((0, 0, 0), "full")
    lens = (ph.LiveFace(fm, _still(yaw), glasses=glasses).render(t, dark, room)
            < ph.LiveFace(fm, _still(yaw)).render(t, dark, room) - 1e-6).any(axis=-1)
    return np.clip(worn - plain, 0, None), lens


def _sides(fm: ph.FaceModel, a: np.ndarray) -> list[np.ndarray]:
    """`a` split at the face's centre: the lens on the image's left, the one on its right."""
    cx = int(fm.centre[0])
    return [np.where(np.arange(a.shape[1])[None, :] < cx, a, 0), np.where(np.arange(a.shape[1])[None, :] >= cx, a, 0)]


def test_the_reflection_comes_with_the_white_field_not_the_dim_one_and_takes_its_colour(hopper) -> None:  # type: ignore[no-untyped-def]
    room = ph.Room()
    white, lens = _lens_terms(hopper, STRONG, WHITE, room)
    dim, _ = _lens_terms(hopper, STRONG, ph.Light.of((30, 30, 30), "full"), room)
    red, _ = _lens_terms(hopper, STRONG, ph.Light.of((255, 60, 60), "full"), room)
    assert (white.max(axis=-1) > 0.1).sum() > 100  # pixels
    # the emissive screen seen in a mirror: reflectance × its radiance (30 × screen_gain, a
    # white diffuser under its light being screen_gain), the skin's level and more
    assert white.max() == pytest.approx(STRONG.reflectance * ph.SCREEN_RADIANCE * room.screen_gain, rel=0.02)
    assert dim.max() < 0.02 * white.max()  # the dim field's linear light is 1.3 % of white's
    r, g, _ = red.reshape(-1, 3).max(axis=0)
    assert g < 0.1 * r
    assert not (white.max(axis=-1) > 0)[~lens].any()  # only on the lenses


def test_a_half_field_is_mirrored_on_the_side_of_each_lens_facing_it(hopper) -> None:  # type: ignore[no-untyped-def]
    room = ph.Room()
    left, _ = _lens_terms(hopper, STRONG, ph.Light.of((255, 255, 255), "left"), room)
    right, _ = _lens_terms(hopper, STRONG, ph.Light.of((255, 255, 255), "right"), room)
    xs = np.arange(left.shape[1])[None, :]
    for lit_l, lit_r in zip(_sides(hopper, left.max(axis=-1) > 0.1), _sides(hopper, right.max(axis=-1) > 0.1),
                            strict=True):
        assert lit_l.sum() > 20 and lit_r.sum() > 20
        # the patient's left half lies on the image's right (an unmirrored camera)
        assert (xs * lit_l).sum() / lit_l.sum() > (xs * lit_r).sum() / lit_r.sum() + 3
        assert (lit_l & lit_r).sum() < 0.1 * min(lit_l.sum(), lit_r.sum())


def test_the_mirror_image_is_as_small_as_a_convex_lens_makes_it(hopper) -> None:  # type: ignore[no-untyped-def]
    """Unclipped (a lens large enough to hold it), the screen's image is S·R/(2dF) face widths
    wide far away (S = 2 × screen_offset face widths, 16:10); at the kiosk's distances the
    mirror's normal also turns with the camera's and the screen's directions across the lens,
    which shrinks it by 1 + R/2d + R/2D (D the camera's distance, about the screen's: ~25 %)."""
    room = ph.Room(screen_offset=0.5, screen_distance=2.6, screen_drop=0.3)
    g = ph.Glasses(radius_m=0.1, reflectance=0.08, lens_width=0.4, tilt_deg=12.0)
    refl, lens = _lens_terms(hopper, g, WHITE, room)
    far_fw = room.screen_offset * g.radius_m / (room.screen_distance * ph.FACE_WIDTH_M)
    expect_fw = far_fw / (1 + g.radius_m / ph.FACE_WIDTH_M / room.screen_distance)
    for k, (lit, on) in enumerate(zip(_sides(hopper, refl.max(axis=-1) > 0.05), _sides(hopper, lens),
                                      strict=True)):
        x0, _, x1, _ = hopper.eye_boxes[k]
        lens_fw = max(g.lens_width, (x1 - x0) / hopper.face_width)
        cols, rows = np.nonzero(on.any(axis=0))[0], np.nonzero(on.any(axis=1))[0]
        px_per_fw = (cols.max() - cols.min() + 1) / lens_fw
        cols, rows = np.nonzero(lit.any(axis=0))[0], np.nonzero(lit.any(axis=1))[0]
        width, height = cols.max() - cols.min() + 1, rows.max() - rows.min() + 1
        assert width == pytest.approx(expect_fw * px_per_fw, rel=0.1)
        assert width < far_fw * px_per_fw
        assert height == pytest.approx(width * ph.SCREEN_ASPECT, rel=0.2)


@pytest.mark.parametrize("drop", [0.3, 0.9])
def test_the_reflection_stays_within_the_glare_bound_at_the_largest_screen(hopper, drop: float) -> None:  # type: ignore[no-untyped-def]
    """decide.MAX_GLARE's physics: a convex mirror (R <= 0.13 m at >= 0.4 m) shows a 16:10
    screen in at most 4.4 % of the face box; each lens's image here (the largest, nearest
    screen the evaluation draws, the flattest lens) is no larger."""
    room = ph.Room(screen_offset=0.65, screen_distance=2.2, screen_drop=drop, screen_gain=0.45)
    refl, _ = _lens_terms(hopper, STRONG, WHITE, room)
    face = ph.LiveFace(hopper, _still(), glasses=STRONG)
    lenses = face._lenses
    assert lenses is not None
    box = lenses._project(lenses._world(hopper.points.astype(np.float64), 0.0))  # the mesh as rendered
    box_area = float(np.prod(box.max(axis=0) - box.min(axis=0)))
    for lit in _sides(hopper, refl.max(axis=-1) > 0.02):
        assert 0 < lit.sum() <= 0.044 * box_area


def test_the_reflection_stays_on_the_lens_as_the_head_turns(hopper) -> None:  # type: ignore[no-untyped-def]
    """The lenses turn with the head; the mirror image, fixed by where the camera and the screen
    are, slides across them and leaves them as a real lens's does (the sphere's centre lies
    near the head's turning axis)."""
    room = ph.Room()
    front, lens0 = _lens_terms(hopper, STRONG, WHITE, room)
    turned, lens1 = _lens_terms(hopper, STRONG, WHITE, room, yaw=-12.0)
    xs = np.arange(lens0.shape[1])[None, :]
    assert abs((xs * lens1).sum() / lens1.sum() - (xs * lens0).sum() / lens0.sum()) > 10  # px
    lit0, lit1 = front.max(axis=-1) > 0.02, turned.max(axis=-1) > 0.02
    assert lit0.sum() > 0
    assert not (lit1 & ~lens1).any()
    far, _ = _lens_terms(hopper, STRONG, WHITE, room, yaw=-28.0)
    assert (far.max(axis=-1) > 0.02).sum() < 0.5 * lit0.sum()


def test_bona_fide_subjects_wear_glasses_reproducibly_and_attacks_do_not(hopper) -> None:  # type: ignore[no-untyped-def]
    from kiosk.vision.liveness.sessions import GLASSES_SHARE, build_subject, random_room

    def subject(species: str, seed: int, **kw):  # type: ignore[no-untyped-def]
        rng = np.random.default_rng(seed)
        return build_subject(species, hopper, rng, (640, 480), random_room(rng), **kw)

    worn = [subject("bona-fide", s).glasses for s in range(300)]
    assert abs(sum(g is not None for g in worn) / len(worn) - GLASSES_SHARE) < 0.07
    assert all(subject("bona-fide", s).glasses == worn[s] for s in range(20))
    for g in worn:
        if g is not None:
            assert 0.08 <= g.radius_m <= 0.13 and 0.005 <= g.reflectance <= 0.08
    # forced either way, the rest of the session is the one drawn
    a, b = subject("bona-fide", 7, glasses=True), subject("bona-fide", 7, glasses=False)
    assert a.glasses is not None and b.glasses is None and a.b == b.b and a.specular == b.specular
    assert getattr(subject("print", 3), "glasses", None) is None


def test_a_bona_fide_session_with_glasses_on_a_shared_photo_is_live() -> None:
    """A real photo, the strongest lens the evaluation draws: its reflection reaches the glare
    measure (clipped near-white on the lens) but stays under the veto, and the session is live."""
    photo = DATA / "faces-identity" / "lfw" / "Giuseppe_Morchio__0001.jpg"
    if not photo.is_file():
        pytest.skip(f"{photo} is absent (the shared test data)")
    from kiosk.hardware.camera.files import read_image_rgb
    from kiosk.vision.liveness import decide as dc
    from kiosk.vision.liveness.sessions import Simulator, build_subject, random_room

    sim = Simulator(templates=False)
    fm = sim.face_model(read_image_rgb(photo), face_px=170.0)
    rng = np.random.default_rng(2)
    room = random_room(rng)
    subject = build_subject("bona-fide", fm, rng, sim.size, room, glasses=STRONG)
    assert subject.glasses is STRONG
    r = sim.run(subject, room, 2, "bona-fide")
    assert 0 < r.result.detail["glare"] < dc.MAX_GLARE, r.result.detail
    assert r.result.status == "live", r.result.detail


def test_evaluation_reports_bpcer_with_and_without_glasses() -> None:
    from kiosk.checkin.ports import LivenessResult
    from kiosk.vision.liveness.evaluation import Report
    from kiosk.vision.liveness.sessions import SessionResult

    def res(status: str, glasses: bool) -> SessionResult:
        return SessionResult("bona-fide", LivenessResult(status, "screen-light+turn"), 2.9, 1.0,
                             meta={"photo": 0, "skin_tone": "tan", "lighting": "dim room, weak screen",
                                   "glasses": glasses})

    rep = Report([res("live", True), res("attack", True), res("live", False)], photos=1)
    by = rep.bpcer_by_glasses()
    assert (by["glasses"].k, by["glasses"].n, by["no glasses"].k, by["no glasses"].n) == (1, 2, 0, 1)
    assert rep.as_dict()["bpcer_by_glasses"]["glasses"]["count"] == 1
    text = "\n".join(rep.lines())
    assert "by glasses" in text and "BPCER glasses" in text and "BPCER no glasses" in text


def test_the_simulated_camera_does_not_import_vision() -> None:
    """kiosk.hardware sits below kiosk.vision: the face model is built in vision."""
    code = ("import sys, kiosk.hardware.camera.photometric; "
            "print(sorted(m for m in sys.modules if m.startswith('kiosk.vision')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
