"""PygameUi: the engine's UiPort on a pygame-ce display, and its event → update → draw loop.

The render loop owns pygame (run it on the main thread on a Pi); the engine runs in a
thread of its own and talks to the UI only through `emit`, `poll_input` and `show_field`.
The loop redraws only when the model changed, at most `fps` times a second. SDL picks the
driver: KMSDRM on a Pi without a desktop, a window under X11/Wayland, "dummy" in tests.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiosk.checkin.events import Event, UiInput
from kiosk.checkin.ports import SystemClock
from kiosk.ui import screens
from kiosk.ui import theme as T
from kiosk.ui.model import UiModel
from kiosk.ui.widgets import SignaturePad, Widget, flatten, hit

log = logging.getLogger(__name__)
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


def pick_driver() -> str | None:
    """The SDL video driver for this machine: None (SDL's choice) under a desktop, "kmsdrm"
    on a console with a DRM device, "offscreen"/"dummy" as SDL_VIDEODRIVER says; "" = no display."""
    if os.environ.get("SDL_VIDEODRIVER"):
        return os.environ["SDL_VIDEODRIVER"]
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    if any(Path("/dev/dri").glob("card*")):
        return "kmsdrm"
    return ""


class PygameUi:
    """Implements UiPort; `step()` runs one turn of the loop, `run(stop)` loops until stopped."""

    def __init__(
        self,
        model: UiModel,
        size: tuple[int, int] = (800, 480),
        *,
        fps: int = 30,
        fullscreen: bool = False,
        font: Path | None = None,
        prompts: Any = None,
        dpi: float | None = None,
        clock: Any = None,
    ) -> None:
        self.model = model
        self.size = size
        self.fps = fps
        self.fullscreen = fullscreen
        self.font_path = font
        self.prompts = prompts
        self.metrics = T.Metrics.for_size(size, dpi)
        self.clock = clock or SystemClock()
        self._handlers: dict[str, list[Callable[[Event], object]]] = collections.defaultdict(list)
        self._fields: queue.Queue[tuple[tuple[int, int, int], str, threading.Event, list[int]]] = (
            queue.Queue()
        )
        self._wake = threading.Condition()
        self._drawn = -1
        self._pressed: Widget | None = None
        self._widgets: list[Widget] = []
        self.frames = 0
        self.records: list = []
        self.on_frame: Callable[[PygameUi], None] | None = None  # after each redraw (screenshots)
        self._open = False
        self._badge_thread: threading.Thread | None = None
        self.preview_source: Callable[[], Any] | None = None

    # --- lifecycle --------------------------------------------------------------------------
    def open(self) -> PygameUi:
        import pygame

        from kiosk.ui.canvas import FontBook, PygameCanvas, find_font

        pygame.display.init()
        pygame.font.init()
        flags = pygame.FULLSCREEN if self.fullscreen else 0
        self.surface = pygame.display.set_mode(self.size, flags)
        pygame.display.set_caption("Check-in")
        pygame.mouse.set_visible(not self.fullscreen)
        self.fonts = FontBook(find_font(self.font_path))
        self.canvas = PygameCanvas(self.surface, self.fonts)
        self._tick = pygame.time.Clock()
        self._open = True
        self.draw()
        return self

    def close(self) -> None:
        if self._open:
            import pygame

            self._open = False
            pygame.display.quit()

    # --- UiPort (engine thread) ---------------------------------------------------------------
    def on(self, event_id: str, fn: Callable[[Event], object]) -> None:
        """Call `fn(event)` when the engine emits `event_id` (as HeadlessDriver.on)."""
        self._handlers[event_id].append(fn)

    def emit(self, event: Event) -> None:
        self.model.on_event(event)
        for fn in self._handlers.get(event.id, ()):
            out = fn(event)
            if isinstance(out, UiInput):
                self.model.send(out)
            elif isinstance(out, (list, tuple)):
                for x in out:
                    self.model.send(x)
        self._notify()

    def poll_input(self, timeout_s: float) -> UiInput | None:
        inp = self.model.take_input()
        if inp is not None or timeout_s <= 0:
            return inp
        if isinstance(self.clock, SystemClock):
            with self._wake:
                self._wake.wait(timeout_s)
        else:
            # a test clock: give the touch loop a moment in real time, then let test time pass
            with self._wake:
                self._wake.wait(min(timeout_s, 0.02))
            inp = self.model.take_input()
            if inp is not None:
                return inp
            self.clock.sleep(timeout_s)
        return self.model.take_input()

    def show_field(self, color: tuple[int, int, int], region: str) -> int:
        """Put the light field on screen at the next frame; the monotonic ns after the flip."""
        if region not in ("full", "left", "right"):
            raise ValueError(f"unknown region {region!r}")
        if not self._open:
            self.model.show_field(color, region)
            return int(self.clock.monotonic_ns())
        done, out = threading.Event(), [0]
        self._fields.put((tuple(color), region, done, out))  # type: ignore[arg-type]
        if not done.wait(2.0):
            log.warning("light field not shown within 2 s")
            return int(self.clock.monotonic_ns())
        return out[0]

    def _notify(self) -> None:
        with self._wake:
            self._wake.notify_all()

    # --- the loop (UI thread) ---------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self.step():
                stop.set()

    def step(self) -> bool:
        """Events → model → draw (if changed) → cap the frame rate. False when the window closed."""
        import pygame

        alive = True
        for ev in pygame.event.get():
            if ev.type == pygame.QUIT:
                alive = False
            elif ev.type == pygame.MOUSEBUTTONDOWN and ev.button == 1:
                self.touch_down(ev.pos)
            elif ev.type == pygame.MOUSEMOTION and ev.buttons[0]:
                self.touch_move(ev.pos)
            elif ev.type == pygame.MOUSEBUTTONUP and ev.button == 1:
                self.touch_up(ev.pos)
        self.model.tick()
        self._service()
        fields_done = []
        while True:
            try:
                color, region, done, out = self._fields.get_nowait()
            except queue.Empty:
                break
            self.model.show_field(color, region)
            fields_done.append((done, out))
        if fields_done or self.model.version != self._drawn:
            self.draw()
            t = int(self.clock.monotonic_ns())
            for done, out in fields_done:
                out[0] = t
                done.set()
        if self.model.inputs:
            self._notify()
        if self.fps:
            self._tick.tick(self.fps)
        return alive

    def _service(self) -> None:
        """Side work of the loop: speak new prompts, refresh the camera preview, read badges."""
        m = self.model
        while m.prompts:
            msg = m.prompts.popleft()
            if self.prompts is not None:
                self.prompts.play(m.lang, msg)
        if m.screen == "face" and m.staff is None and self.preview_source is not None:
            frame = self.preview_source()
            if frame is not None and frame is not m.preview:
                with m.lock:
                    m.preview = frame
                    m.changed()
        st = m.staff
        desk = m.desk
        if (
            st is not None
            and st.step == "badge"
            and desk is not None
            and desk.badge_reader is not None
            and (self._badge_thread is None or not self._badge_thread.is_alive())
        ):
            self._badge_thread = threading.Thread(target=self._read_badge, name="staff-badge", daemon=True)
            self._badge_thread.start()

    def _read_badge(self) -> None:
        m = self.model
        while m.staff is not None and m.staff.step == "badge":
            uid = m.desk.badge_reader.read_badge(0.5)
            if uid:
                m.on_badge(uid)

    def draw(self) -> None:
        import pygame

        # the engine's thread changes the model too: lay out one consistent state
        with self.model.lock:
            version = self.model.version
            widgets = screens.build(self.model, self.metrics)
        self.canvas.reset()
        for w in flatten(widgets):
            w.draw(self.canvas)
        self._widgets = widgets
        self.records = self.canvas.records
        pygame.display.flip()
        self._drawn = version
        self.frames += 1
        if self.on_frame is not None:
            self.on_frame(self)

    @property
    def widgets(self) -> list[Widget]:
        return self._widgets

    @property
    def current(self) -> bool:
        """The widgets on screen show the model as it is (nothing changed since the last draw)."""
        return self._drawn == self.model.version

    # --- touches ------------------------------------------------------------------------------
    def touch_down(self, pos: tuple[int, int]) -> None:
        w = hit(self._widgets, pos)
        self._pressed = w
        if isinstance(w, SignaturePad):
            self.model.pad_down(pos)
        elif w is None:
            self.model.touched()

    def touch_move(self, pos: tuple[int, int]) -> None:
        if isinstance(self._pressed, SignaturePad):
            p = self._pressed.rect
            self.model.pad_move((min(max(pos[0], p.x), p.x + p.w - 1), min(max(pos[1], p.y), p.y + p.h - 1)))

    def touch_up(self, pos: tuple[int, int]) -> None:
        w, self._pressed = self._pressed, None
        if isinstance(w, SignaturePad):
            self.model.pad_up()
        elif w is not None and w.action and w.rect.contains(pos):
            self.model.press(w.action)  # a finger that slid off the button changed its mind

    def save(self, path: Path) -> None:
        import pygame

        path.parent.mkdir(parents=True, exist_ok=True)
        pygame.image.save(self.surface, str(path))
