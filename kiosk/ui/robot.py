"""A scripted person at the touchscreen: taps widgets through real pygame mouse events.

Used by the tests and by `kiosk demo --ui`: `PatientRobot` answers the consent screen
(language, finger strokes, Sign/Decline, or nothing at all) and the optional second tap as
`kiosk.checkin.headless.ScriptedPatient` describes; `drive` runs an engine session in a
thread while the UI loop and the robot run here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from kiosk.checkin import events as E
from kiosk.checkin.headless import ScriptedPatient
from kiosk.ui.app import PygameUi
from kiosk.ui.widgets import SignaturePad, Widget, flatten


def find(ui: PygameUi, action: str) -> Widget | None:
    return next((w for w in flatten(ui.widgets) if w.action == action), None)


def _post(kind: int, pos: tuple[int, int], **kw: Any) -> None:
    import pygame

    pygame.event.post(pygame.event.Event(kind, pos=pos, **kw))


def tap(ui: PygameUi, action: str) -> bool:
    """Press and release the widget with `action` at its centre; False if not on screen."""
    import pygame

    w = find(ui, action)
    if w is None:
        return False
    c = (w.rect.x + w.rect.w // 2, w.rect.y + w.rect.h // 2)
    _post(pygame.MOUSEBUTTONDOWN, c, button=1, touch=True)
    _post(pygame.MOUSEBUTTONUP, c, button=1, touch=True)
    return True


def draw_on_pad(ui: PygameUi, strokes: tuple[list[list[int]], ...]) -> bool:
    """Draw `strokes` (in a 0..150 × 0..100 box) scaled into the signature pad."""
    import pygame

    pad = next((w for w in flatten(ui.widgets) if isinstance(w, SignaturePad)), None)
    if pad is None:
        return False
    r = pad.rect
    sx, sy = (r.w - 40) / 150, (r.h - 40) / 100

    def at(p: list[int]) -> tuple[int, int]:
        return (int(r.x + 20 + p[0] * sx), int(r.y + 20 + p[1] * sy))

    for s in strokes:
        _post(pygame.MOUSEBUTTONDOWN, at(s[0]), button=1, touch=True)
        for p in s[1:]:
            _post(pygame.MOUSEMOTION, at(p), rel=(0, 0), buttons=(1, 0, 0), touch=True)
        _post(pygame.MOUSEBUTTONUP, at(s[-1]), button=1, touch=True)
    return True


class PatientRobot:
    """Reacts to screens once each, like the scripted patient of the headless driver."""

    def __init__(
        self,
        patient: ScriptedPatient,
        *,
        language: str | None = None,
        on_screen: Callable[[PygameUi, str], object] | None = None,
    ) -> None:
        self.p = patient
        self.language = language  # tapped on the welcome/consent screen's toggle
        self.on_screen = on_screen
        self._seen: set[str] = set()
        self._step = 0

    def act(self, ui: PygameUi) -> None:
        if not ui.current:
            return  # tap only what is on the screen
        m = ui.model
        screen = "staff" if m.staff is not None else m.screen
        if self.on_screen is not None and screen not in self._seen:
            self.on_screen(ui, screen)
        first = screen not in self._seen
        self._seen.add(screen)
        if screen == "consent" and self.p.decision != "ignore":
            self._consent(ui, first)
        elif screen == "second_tap" and first and not self.p.second_tap:
            tap(ui, "input:" + E.SKIP)

    def _consent(self, ui: PygameUi, first: bool) -> None:
        lang = self.language or self.p.language
        if first:
            self._step = 0
        if self._step == 0:
            if lang and ui.model.lang != lang:
                tap(ui, f"lang:{lang}")
            self._step = 1
        elif self._step == 1 and (not lang or ui.model.consent.language == lang):
            if self.p.strokes:
                draw_on_pad(ui, self.p.strokes)
            self._step = 2
        elif self._step == 2 and not ui.model.consent.drawing:
            tap(ui, "input:" + (E.ACCEPT if self.p.decision == "accept" else E.DECLINE))
            self._step = 3


def drive(ui: PygameUi, session: Callable[[], Any], robot: Any = None, timeout_s: float = 60.0) -> Any:
    """Run `session()` (e.g. engine.run_once) in a thread; loop the UI and the robot until it ends."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["out"] = session()
        except BaseException as e:  # handed to the caller below
            box["err"] = e

    t = threading.Thread(target=work, name="engine", daemon=True)
    t.start()
    deadline = time.monotonic() + timeout_s  # a hang guard, not a speed check
    while t.is_alive() and time.monotonic() < deadline:
        ui.step()
        if robot is not None:
            robot.act(ui)
        t.join(0.002)
    ui.step()
    if t.is_alive():
        raise TimeoutError("the engine session did not end")
    if "err" in box:
        raise box["err"]
    return box.get("out")


class StaffRobot:
    """A staff member at the touchscreen: badge, PIN, an override with a reason, log off."""

    def __init__(self, pin: str, reason: str, place_badge: Callable[[], object]) -> None:
        self.pin, self.reason, self.place_badge = pin, reason, place_badge
        self.ticket: str | None = None
        self._badge_placed = False
        self._typed = False
        self._picked = False
        self.done = False

    def act(self, ui: PygameUi) -> None:
        m = ui.model
        st = m.staff
        if self.done or not ui.current:
            return
        if st is None:
            if self.ticket is not None:
                self.done = True
            elif m.screen == "welcome":
                tap(ui, "staff:open")
            return
        if st.step == "badge" and not self._badge_placed:
            self._badge_placed = bool(self.place_badge()) or True
        elif st.step == "pin" and not self._typed:
            for d in self.pin:
                tap(ui, f"key:{d}")
            tap(ui, "key:ok")
            self._typed = True
        elif st.step == "tabs":
            if st.tab != "override":
                tap(ui, "tab:override")
            elif not self._picked:
                tap(ui, f"reason:{self.reason}")
                tap(ui, "override:confirm")
                self._picked = True
            elif st.message and st.message[0] == "staff.override.done" and self.ticket is None:
                self.ticket = str(st.message[1]["ticket"])
                tap(ui, "staff:logoff")


class Loop:
    """The UI loop and a robot in a thread of their own (the demo's engine keeps the main one)."""

    def __init__(self, ui: PygameUi) -> None:
        self.ui = ui
        self.robot: Any = None
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, name="ui", daemon=True)

    def start(self) -> Loop:
        self._t.start()
        return self

    def _run(self) -> None:
        self.ui.open()
        try:
            while not self._stop.is_set():
                self.ui.step()
                if self.robot is not None:
                    self.robot.act(self.ui)
        finally:
            self.ui.close()

    def wait(self, cond: Callable[[], bool], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if cond():
                return True
            time.sleep(0.02)
        return cond()

    def stop(self) -> None:
        self._stop.set()
        self._t.join(10)
