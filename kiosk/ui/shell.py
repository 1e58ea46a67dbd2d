"""The touchscreen for `kiosk run`: pick the display, build model + UI + desk, run the loop.

`choose(cfg)` decides: `[ui] mode = "headless"` never opens a display; "pygame" must; "auto"
opens one where it exists (a desktop session, or a DRM device for KMSDRM) and otherwise
runs headless. The render loop stays on the main thread; the engine runs in a thread.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from kiosk.errors import HardwareError
from kiosk.ui.app import PygameUi, pick_driver
from kiosk.ui.model import UiModel, UiSettings

log = logging.getLogger(__name__)


class PreviewTap:
    """The newest camera frame, halved, for the face screen (memory only, never stored)."""

    def __init__(self) -> None:
        self._frame: Any = None
        self._n = 0

    def offer(self, image: Any) -> None:
        self._n += 1
        if self._n % 2 == 0:  # 15 fps camera → about 8 preview updates a second
            self._frame = image[::2, ::2]

    def __call__(self) -> Any:
        return self._frame


def settings_of(cfg: Any) -> UiSettings:
    langs = tuple(x for x in cfg.kiosk.languages if x in cfg.consent.text)
    return UiSettings(
        languages=langs or (cfg.kiosk.language,),
        default_language=cfg.kiosk.language,
        result_s=cfg.ui.result_s,
        idle_warning_s=cfg.ui.idle_warning_s,
        idle_countdown_s=cfg.ui.idle_countdown_s,
        staff_idle_s=cfg.staff.idle_logoff_s,
    )


class Touchscreen:
    """Model, PygameUi and Desk for one kiosk; `attach(rt)` once the runtime exists."""

    def __init__(self, cfg: Any, driver: str | None) -> None:
        from kiosk.checkin.ports import SystemClock
        from kiosk.staff.desk import Desk
        from kiosk.staff.store import LockoutPolicy, StaffStore
        from kiosk.ui.audio import Prompts

        if driver:
            os.environ["SDL_VIDEODRIVER"] = driver
        st = cfg.staff
        self.store = StaffStore(
            cfg.state_path(st.path), LockoutPolicy(st.free_tries, st.lockout_base_s, st.lockout_max_s)
        )
        self.desk = Desk(
            self.store, site=cfg.kiosk.site, kiosk=cfg.kiosk.id, ticket_prefix=cfg.ui.ticket_prefix
        )
        self.model = UiModel(settings_of(cfg), dict(cfg.consent.text), SystemClock(), cfg.consent, self.desk)
        size = (cfg.ui.width, cfg.ui.height)
        self.ui = PygameUi(
            self.model,
            size,
            fps=cfg.ui.fps,
            fullscreen=cfg.ui.fullscreen,
            font=cfg.ui.font,
            dpi=cfg.ui.dpi or None,
        )
        try:
            self.ui.open()
        except Exception as e:  # pygame.error: no usable display after all
            self.store.close()
            raise HardwareError(f"display unavailable ({e})", reason="display") from None
        self.ui.prompts = Prompts(Path(cfg.ui.audio_dir))
        self.preview = PreviewTap()
        self.ui.preview_source = self.preview

    def attach(self, cfg: Any, rt: Any) -> None:
        """Give the desk the running kiosk: outbox, publisher, key, reader; the preview tap."""
        from kiosk.clock_sync import ClockSyncState

        badge = next((s for s in rt.engine.sources if hasattr(s, "read_badge")), None)
        self.desk.attach(cfg, rt, ClockSyncState(), badge)
        if rt.engine.faces is not None and hasattr(rt.engine.faces, "preview"):
            rt.engine.faces.preview = self.preview.offer

    def run(self, stop: threading.Event) -> None:
        self.ui.run(stop)

    def close(self) -> None:
        self.ui.close()
        self.store.close()


def choose(cfg: Any) -> Touchscreen | None:
    """The touchscreen, or None for headless (no display in "auto", or mode "headless")."""
    mode = cfg.ui.mode
    if mode == "headless":
        return None
    driver = pick_driver()
    # SDL's dummy and offscreen drivers draw nowhere: in "auto" they count as no display
    if mode == "auto" and driver in ("", "dummy", "offscreen"):
        log.info("no display found: running headless")
        return None
    try:
        return Touchscreen(cfg, driver or None)
    except HardwareError as e:
        if mode == "pygame":
            raise
        log.warning("%s: running headless", e.message)
        return None
