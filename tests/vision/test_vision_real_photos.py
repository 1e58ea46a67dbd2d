"""The pipeline on real photos from ../shared/data (skipped when absent) and on frames made from them."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kiosk.config import VisionTable
from kiosk.hardware.camera.synthetic import NOBODY, Scene, render
from kiosk.vision import quality as Q
from kiosk.vision.enroll import EnrolmentRefused, inspect_photo, load_photo, template_from_photo
from kiosk.vision.pipeline import FacePipeline
from kiosk.vision.verify import compare

THRESHOLD = VisionTable().match_threshold


def _lfw(shared_data: Path, name: str) -> list[Path]:
    return sorted((shared_data / "faces-identity" / "lfw").glob(f"{name}__*.jpg"))


def test_lfw_same_and_different(shared_data: Path) -> None:
    # LFW's 150×150 copies are below the enrolment size gate: judged, not refused, here
    a = [inspect_photo(p).template for p in _lfw(shared_data, "Abdullah_Gul")[:3]]
    b = [inspect_photo(p).template for p in _lfw(shared_data, "Abdullah")[:3]]
    assert len(a) == 3 and len(b) == 3
    same = [compare(a[0], x) for x in a[1:]] + [compare(b[0], x) for x in b[1:]]
    cross = [compare(x, y) for x in a for y in b]
    assert max(same) < THRESHOLD < min(cross)


def test_real_photo_frames(shared_data: Path) -> None:
    photo = load_photo(sorted((shared_data / "faces-identity" / "dlib_johns").glob("*.jpg"))[0])
    enrolled = inspect_photo(photo).template
    # the photo as a camera would see it: placed in a 640×480 frame, face ~170 px
    pipe = FacePipeline()
    probe = pipe.process(render([photo], Scene(scale=1.0)))
    assert probe.box is not None
    scale = 170.0 / probe.box.height

    def frame(**kw: object) -> np.ndarray:
        return render([photo], Scene(scale=scale, **kw))

    pipe.reset()
    obs = pipe.process(frame(shift=(0.05, 0.0)), want_template=True)
    assert obs.message_id == Q.FACE_OK, obs.quality
    assert compare(enrolled, obs.template) < THRESHOLD
    for kw, expected in (({"brightness": 0.25}, Q.FACE_MORE_LIGHT), ({"blur": 3.5}, Q.FACE_HOLD_STILL)):
        pipe.reset()
        assert pipe.process(frame(**kw)).message_id == expected
    pipe.reset()
    assert pipe.process(render([photo], NOBODY)).message_id == Q.FACE_NONE


def test_small_lfw_photo_found_by_upsampling(shared_data: Path) -> None:
    path = _lfw(shared_data, "Abdullah_Gul")[0]
    img = cv2.imread(str(path))
    assert img.shape[:2] == (150, 150)
    face = inspect_photo(path)
    assert face.template.shape == (128,) and face.box.width < 110
    with pytest.raises(EnrolmentRefused, match="110 px"):
        template_from_photo(path)  # too small to seal a year-long template from


def test_the_mirror_descriptor_is_the_mirrored_face(shared_data: Path) -> None:
    from kiosk.vision.enroll import load_photo
    from kiosk.vision.template import FLIP_TTA, combine

    photo = load_photo(_lfw(shared_data, "Abdullah_Gul")[0])
    face = inspect_photo(photo, mirror=True)
    assert face.descriptors is not None and face.descriptors.shape == (2, 128)
    assert np.array_equal(face.template, combine(face.descriptors if FLIP_TTA else face.descriptors[:1]))
    # the chip's mirror describes the photo's mirror image (up to alignment) better than the chip does
    mirrored = inspect_photo(np.ascontiguousarray(photo[:, ::-1])).template
    assert compare(face.descriptors[1], mirrored) < compare(face.descriptors[0], mirrored)
