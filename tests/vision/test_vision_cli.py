"""`kiosk face compare|enroll` on the demo portraits; nothing biometric is printed or logged."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kiosk.cli import main


@pytest.fixture()
def photos(tmp_path: Path, portraits: list[np.ndarray]) -> list[Path]:
    out = []
    for name, img in zip(("a.png", "b.png"), portraits[:2], strict=True):
        Image.fromarray(img).save(tmp_path / name)
        out.append(tmp_path / name)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((300, 300, 3), 200, np.uint8)).save(blank)
    out.append(blank)
    return out


def test_compare(photos: list[Path], capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert main(["face", "compare", str(photos[0]), str(photos[1])]) == 1  # different people
    out = json.loads(capsys.readouterr().out)
    assert out["match"] is False and 0.6 < out["distance"] < 0.8
    assert out["quality"]["a"]["message_id"] == "face.come_closer"  # judged with the kiosk's 110 px gate
    assert out["quality"]["b"]["message_id"] == "face.ok"
    assert main(["face", "compare", str(photos[0]), str(photos[0])]) == 0
    assert json.loads(capsys.readouterr().out)["distance"] == 0.0
    assert "distance" not in caplog.text


def test_enroll_never_prints_the_template(photos: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["face", "enroll", str(photos[1])]) == 65  # one photo, not acknowledged
    assert "--single-photo" in capsys.readouterr().err
    assert main(["face", "enroll", "--single-photo", str(photos[1])]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["template"] == "ok" and json.loads(out)["single_photo"] is True and len(out) < 1000
    assert main(["face", "enroll", "--single-photo", str(photos[2])]) == 65  # FormatError: no face
    assert "no face" in capsys.readouterr().err
