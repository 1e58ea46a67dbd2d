"""Spoken prompts: WAV files rendered at install time (espeak-ng), played with pygame's mixer.

`render_prompts` writes DIR/<lang>/<message id>.wav for every prompt the UI speaks. At run
time a missing file, a missing mixer or no audio device means silence, never an error.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

from kiosk.errors import UnavailableError
from kiosk.ui import i18n

log = logging.getLogger(__name__)

# the message ids the UI speaks when a screen appears (kiosk.ui.model queues them)
PROMPTS = (
    "welcome.title",
    "checkin.reading",
    "refused.title",
    "desk.title",
    "face.title",
    "face.retry",
    "face.matched",
    "face.mismatch",
    "face.nobody",
    "checkin.walked_away",
    "liveness.start",
    "liveness.turn.turn-left",
    "liveness.turn.turn-right",
    "liveness.retry",
    "liveness.failed",
    "consent.title",
    "consent.sign_please",
    "consent.tap_to_sign",
    "consent.patient_signed",
    "done.title",
    "checkin.record_failed",
    "checkin.out_of_service",
    "checkin.cancelled",
    "idle.title",
)
# espeak-ng voice per catalogue language
VOICES = {"en": "en-gb", "es": "es"}


def render_prompts(
    out: Path,
    languages: list[str] | None = None,
    espeak: str | None = None,
    prompts: tuple[str, ...] = PROMPTS,
) -> int:
    """Render every prompt of every language to WAV with espeak-ng; returns the file count."""
    exe = espeak or shutil.which("espeak-ng")
    if exe is None:
        raise UnavailableError("espeak-ng is not installed (apt-get install espeak-ng)")
    n = 0
    for lang in languages or i18n.available():
        d = out / lang
        d.mkdir(parents=True, exist_ok=True)
        for msg in prompts:
            text = i18n.text(lang, msg, attempt=2, max=2)
            subprocess.run(
                [exe, "-v", VOICES.get(lang, lang), "-s", "150", "-w", str(d / f"{msg}.wav"), text],
                check=True,
                capture_output=True,
                timeout=60,
            )
            n += 1
    return n


class Prompts:
    """Plays DIR/<lang>/<id>.wav; silent when the mixer or the file is missing."""

    def __init__(self, directory: Path | None) -> None:
        self.dir = directory
        self._sounds: dict[tuple[str, str], object | None] = {}
        self._ok = False
        if directory is None or not directory.is_dir():
            return
        try:
            import pygame

            if not pygame.mixer.get_init():
                pygame.mixer.init()
            self._ok = True
        except Exception as e:  # pygame.error, no device: the kiosk still works, silently
            log.info("audio prompts off: %s", e)

    def play(self, lang: str, msg_id: str) -> bool:
        """Start the prompt (stopping any other); True if a sound was started."""
        if not self._ok or self.dir is None:
            return False
        import pygame

        key = (lang, msg_id)
        if key not in self._sounds:
            p = self.dir / lang / f"{msg_id}.wav"
            try:
                self._sounds[key] = pygame.mixer.Sound(str(p)) if p.is_file() else None
            except pygame.error as e:
                log.info("prompt %s unreadable: %s", p.name, e)
                self._sounds[key] = None
        snd = self._sounds[key]
        if snd is None:
            return False
        pygame.mixer.stop()
        snd.play()  # type: ignore[attr-defined]
        return True
