"""`kiosk face evaluate` end to end on a tiny set, and its clean stop on SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from vision_scenes import frame_of

from kiosk.cli import main
from kiosk.config import EngineTable
from kiosk.vision import evaluation as E

REPO = Path(__file__).resolve().parents[2]


def _names() -> list[str]:
    """Four identity names, two in each half of the evaluation's split."""
    by_half: dict[int, list[str]] = {0: [], 1: []}
    for i in range(100):
        by_half[E.fold_of(f"p{i}")].append(f"p{i}")
    return by_half[0][:2] + by_half[1][:2]


def _photos(folder: Path, portraits: list[np.ndarray], per_person: int) -> Path:
    """Four 'people': the two portraits and their mirror images, two in each half."""
    folder.mkdir()
    for i, name in enumerate(_names()):
        for k in range(per_person):
            img = frame_of(portraits, i % 2, face_px=150 + 8 * (k % 5), shift=(0.01 * (k % 3), 0.0))
            if i >= 2:
                img = np.ascontiguousarray(img[:, ::-1])
            Image.fromarray(img).save(folder / f"{name}__{k:02d}.png")
    return folder


def test_evaluate_reports_per_check_in_rates(
    tmp_path: Path, portraits: list[np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    data = _photos(tmp_path / "faces", portraits, 2)
    assert (
        main(["face", "evaluate", "--data", str(data), "--json", "--quiet", "--frames", "2", "--budget", "6"])
        == 0
    )
    rep = json.loads(capsys.readouterr().out)
    assert rep["protocol"]["attempts"] == EngineTable().max_face_attempts  # the kiosk's own budget
    assert rep["genuine_transactions"] == 4 and rep["identities_enrolled"] == 4
    at = rep["all_data_at_threshold"]
    assert at["fnmr"]["n"] == 4 and at["fmr"]["n"] == 4 * 3  # each person against every other pass
    assert len(at["fmr"]["ci95"]) == 2
    assert {f["tuned_on"] for f in rep["cross_validated"]["mean-template"]["2"]["folds"]} == {0, 1}
    assert rep["live_frames"] >= 4 * 2


def test_photos_only_scores_photo_against_photo_and_the_cache_replays_it(
    tmp_path: Path, portraits: list[np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    data = _photos(tmp_path / "faces", portraits, 3)
    argv = ["face", "evaluate", "--data", str(data), "--json", "--quiet", "--photos-only",
            "--cache", str(tmp_path / "cache")]
    assert main(argv) == 0
    rep = json.loads(capsys.readouterr().out)
    assert "genuine_transactions" not in rep  # no kiosk frames were synthesised
    pp = rep["plain_photo_to_photo"]
    assert rep["live_sources"] == 4 and pp["genuine_pairs"] == 4 and pp["genuine_with_several"] == 4
    assert pp["single"]["held_out_fnmr"]["n"] == 4
    assert pp["multi_photo"]["held_out_fmr"]["n"] == 2 * (2 * 1)  # within each half
    assert pp["no_gates_genuine_pairs"] == 4
    assert main(argv) == 0  # the second run reads every photo from the cache
    assert json.loads(capsys.readouterr().out)["plain_photo_to_photo"] == pp
    # both kinds of template come from the same kept descriptors: the other kind needs no recompute
    from kiosk.vision.template import FLIP_TTA

    assert rep["template"] == ("flip" if FLIP_TTA else "plain")
    other = "plain" if FLIP_TTA else "flip"
    cached = {p.name: p.stat().st_size for p in (tmp_path / "cache").iterdir()}
    assert main([*argv, "--template", other]) == 0
    rep2 = json.loads(capsys.readouterr().out)
    assert rep2["template"] == other and rep2["plain_photo_to_photo"]["genuine_pairs"] == 4
    assert {p.name: p.stat().st_size for p in (tmp_path / "cache").iterdir()} == cached


def _children(pid: int) -> set[int]:
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.add(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to list child processes")
def test_sigterm_stops_the_evaluation_and_leaves_no_workers(
    tmp_path: Path, portraits: list[np.ndarray]
) -> None:
    data = _photos(tmp_path / "faces", portraits, 12)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "face", "evaluate", "--data", str(data), "--jobs", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
        start_new_session=True,  # so a failure below can end the whole group, workers included
    )
    try:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 120)
        assert ready, "the evaluation printed nothing in 120 s"
        line = proc.stderr.readline()
        assert "worker(s)" in line, line
        seen: set[int] = set()
        deadline = time.monotonic() + 120
        while len(seen) < 2 and time.monotonic() < deadline and proc.poll() is None:
            seen |= _children(proc.pid)
            time.sleep(0.05)
        assert len(seen) >= 2, "the workers never started"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM
    assert "stopped" in err and "Traceback" not in err
    deadline = time.monotonic() + 10
    while any(_alive(c) for c in seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [c for c in seen if _alive(c)], "orphaned workers"
