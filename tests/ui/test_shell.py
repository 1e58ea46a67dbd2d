"""Which UI `kiosk run` gets, the staff badge read on the PN532, and the preview tap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kiosk import config
from kiosk.ui import shell


def _cfg(tmp_path: Path, mode: str) -> config.Config:
    return config.from_dict(
        {
            "paths": {"state_dir": str(tmp_path)},
            "ui": {"mode": mode, "fullscreen": False, "audio_dir": str(tmp_path / "none")},
        }
    )


def test_headless_when_asked_or_when_there_is_no_display(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert shell.choose(_cfg(tmp_path, "headless")) is None
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")  # draws nowhere: not a display for "auto"
    assert shell.choose(_cfg(tmp_path, "auto")) is None


def test_pygame_mode_opens_the_touchscreen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    screen = shell.choose(_cfg(tmp_path, "pygame"))
    assert screen is not None
    try:
        assert screen.ui.surface.get_size() == (800, 480)
        assert screen.ui.prompts.play("en", "welcome.title") is False  # no WAVs: silent, no error
        assert (tmp_path / "staff.sqlite3").is_file()
    finally:
        screen.close()


def test_preview_tap_keeps_only_the_newest_frame_halved() -> None:
    tap = shell.PreviewTap()
    assert tap() is None
    for i in range(4):
        tap.offer(np.full((480, 640, 3), i, np.uint8))
    f = tap()
    assert f.shape == (240, 320, 3) and int(f[0, 0, 0]) == 3


def test_staff_badge_uid_is_read_and_phones_are_not_badges() -> None:
    from kiosk.hardware.nfc.emulator import EmulatedCard, Pn532Emulator, phone_card, type2_card
    from kiosk.hardware.nfc.reader import NfcReader
    from kiosk.wallet.wallet import Wallet

    class Plain:  # a MIFARE-style badge: no ISO-DEP, so no application is ever asked
        def process(self, command: bytes) -> bytes:
            raise AssertionError("a badge is never sent APDUs")

        def reset(self) -> None:
            pass

    uid = bytes.fromhex("04a1b2c3d4e5f6")
    with Pn532Emulator(pace=False) as emu:
        reader = NfcReader(emu.path)
        try:
            assert reader.read_uid(0.2) is None
            emu.place(phone_card(Wallet.create()))
            assert reader.read_uid(0.3) is None  # a phone's UID is random: never a badge
            emu.place(EmulatedCard(Plain(), uid, sens_res=b"\x00\x44", sel_res=0x08))  # type: ignore[arg-type]
            assert reader.read_uid(1.0) == uid
            # an NTAG may be a badge, unless it is a patient's clinic card
            blank = type2_card(model="NTAG215")
            emu.place(blank)
            assert reader.read_uid(1.0) == blank.uid
            emu.place(type2_card(bytes(376), model="NTAG215"))  # the reader never decodes the pass
            assert reader.read_uid(0.5) is None
        finally:
            reader.close()


def test_pygame_ce_alone_provides_the_pygame_module() -> None:
    from importlib import metadata

    import pygame

    assert metadata.distribution("pygame-ce").version.split(".")[0] == "2"
    assert getattr(pygame, "IS_CE", False)
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.distribution("pygame")  # the other distribution would overwrite pygame-ce's files


def test_audio_prompts_render_with_espeak_and_play_silently_on_a_dummy_device(tmp_path: Path) -> None:
    import shutil

    from kiosk.ui.audio import PROMPTS, Prompts, render_prompts

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (Debian espeak-ng; setup.sh installs it)")
    some = PROMPTS[:2] + ("done.title",)
    assert render_prompts(tmp_path, ["en", "es"], prompts=some) == 6
    wav = (tmp_path / "es" / "done.title.wav").read_bytes()
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and len(wav) > 10_000
    p = Prompts(tmp_path)
    assert p.play("es", "done.title") is p._ok  # played where the mixer opened; never an error
    assert p.play("es", "no.such.prompt") is False


def test_frames_are_drawn_only_when_something_changed() -> None:
    from checkin.fakes import FakeClock

    from kiosk.checkin import events as E
    from kiosk.checkin.events import Event
    from kiosk.config import ConsentTable
    from kiosk.ui.app import PygameUi
    from kiosk.ui.model import UiModel, UiSettings

    m = UiModel(UiSettings(), ConsentTable().text, FakeClock(), ConsentTable())
    ui = PygameUi(m, (800, 480), fps=0).open()
    try:
        drawn = ui.frames
        for _ in range(20):
            ui.step()
        assert ui.frames == drawn  # nothing changed: nothing redrawn
        m.on_event(Event(E.FACE_START))
        ui.step()
        ui.step()
        assert ui.frames == drawn + 1 and m.screen == "face"
    finally:
        ui.close()


def test_audio_without_espeak_is_unavailable_69(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A missing support program is EX_UNAVAILABLE (69), not a configuration error (78)."""
    import shutil

    from kiosk.cli import main

    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["ui", "audio", "--out", str(tmp_path / "wav")]) == 69
