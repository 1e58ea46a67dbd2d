"""Enrolment gates agree with the kiosk's; several faces are refused or cropped on confirmation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from vision_scenes import frame_of

from kiosk.cli import main
from kiosk.hardware.camera.synthetic import DEMO_FACE_CENTRES, Scene, render, scale_for_face
from kiosk.vision.enroll import (
    ENROL_LIMITS,
    ENROL_ONE_PHOTO,
    ENROL_SAME_PHOTO,
    EnrolmentRefused,
    enrol,
    face_from_photo,
    inspect_photo,
)
from kiosk.vision.quality import (
    FACE_COME_CLOSER,
    FACE_HOLD_STILL,
    FACE_MORE_LIGHT,
    FACE_TOO_MANY,
    QualityLimits,
)

TWO = Scene(
    faces=(0, 1),
    anchors=(DEMO_FACE_CENTRES["astronaut"], DEMO_FACE_CENTRES["grace_hopper"]),
    scales=(scale_for_face("astronaut", 150), scale_for_face("grace_hopper", 190)),
)


def test_the_enrolment_size_gate_is_the_kiosks(portraits: list[np.ndarray]) -> None:
    assert ENROL_LIMITS.min_face_px == QualityLimits().min_face_px == 110
    with pytest.raises(EnrolmentRefused, match="110 px") as e:
        face_from_photo(portraits[0])  # the astronaut portrait's face is ~100 px wide
    assert e.value.message_id == FACE_COME_CLOSER and e.value.exit_code == 65
    assert face_from_photo(frame_of(portraits, 0, face_px=160)).quality.ok


@pytest.mark.parametrize(
    ("kw", "gate"), [({"brightness": 0.25}, FACE_MORE_LIGHT), ({"blur": 4.0}, FACE_HOLD_STILL)]
)
def test_light_and_sharpness_gates_refuse(portraits: list[np.ndarray], kw: dict, gate: str) -> None:
    with pytest.raises(EnrolmentRefused) as e:
        face_from_photo(frame_of(portraits, 1, face_px=180, **kw))
    assert e.value.message_id == gate
    assert not inspect_photo(frame_of(portraits, 1, face_px=180, **kw)).quality.ok  # judged, not refused


def test_several_faces_refused_unless_the_largest_is_cropped(portraits: list[np.ndarray]) -> None:
    photo = render(portraits, TWO)
    with pytest.raises(EnrolmentRefused, match="2 faces.*--crop-largest") as e:
        face_from_photo(photo)
    assert e.value.message_id == FACE_TOO_MANY
    face = face_from_photo(photo, crop_largest=True)
    assert face.cropped and face.faces == 2 and face.box.centre[0] > photo.shape[1] / 2  # Hopper, the larger


def test_one_photo_is_refused_unless_acknowledged(portraits: list[np.ndarray]) -> None:
    shot = frame_of(portraits, 1, face_px=150)
    with pytest.raises(EnrolmentRefused, match="second photo.*--single-photo") as e:
        enrol([shot])
    assert e.value.message_id == ENROL_ONE_PHOTO
    assert len(enrol([shot], single_photo=True).faces) == 1
    with pytest.raises(EnrolmentRefused, match="same picture") as e:
        enrol([shot, shot.copy()])
    assert e.value.message_id == ENROL_SAME_PHOTO


def test_several_photos_average_into_one_template(portraits: list[np.ndarray]) -> None:
    shots = [frame_of(portraits, 1, face_px=px) for px in (150, 190)]
    e = enrol(shots)
    singles = [f.template.astype(np.float32) for f in e.faces]
    assert e.template.dtype == np.float16 and e.template.shape == (128,)
    assert np.allclose(e.template.astype(np.float32), np.mean(singles, axis=0), atol=1e-3)


def test_cli_asks_the_desk_before_cropping(
    tmp_path: Path, portraits: list[np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "two.png"
    Image.fromarray(render(portraits, TWO)).save(path)
    assert main(["face", "enroll", "--single-photo", str(path)]) == 65
    assert "--crop-largest" in capsys.readouterr().err
    assert main(["face", "enroll", "--single-photo", "--crop-largest", str(path)]) == 65  # no terminal, no --yes
    assert "--yes" in capsys.readouterr().err
    assert main(["face", "enroll", "--single-photo", "--crop-largest", "--yes", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["template"] == "ok" and out["photos"][0]["cropped"] is True
