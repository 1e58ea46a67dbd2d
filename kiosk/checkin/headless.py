"""A UI without a screen: records the engine's events and plays a scripted patient.

Used by the tests, the demo and `kiosk run` until the pygame UI lands. A `ScriptedPatient`
answers the consent screen (language, finger strokes, accept/decline) and the optional
second tap; `on(event_id, fn)` lets a demo react to an event (e.g. put the phone back on
the reader when the kiosk asks for the second tap).
"""
from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from kiosk.checkin import events as E
from kiosk.checkin.events import Event, UiInput
from kiosk.checkin.ports import Clock, SystemClock

log = logging.getLogger(__name__)

# a short scribble: two strokes of [x, y, t_ms]
DEFAULT_STROKES: tuple[list[list[int]], ...] = (
    [[10, 60, 0], [40, 20, 30], [70, 70, 60], [100, 25, 90], [130, 65, 120]],
    [[20, 90, 400], [140, 88, 500]],
)


@dataclass
class ScriptedPatient:
    """How the simulated patient answers the consent screen.

    decision: "accept", "decline", or "ignore" (never touches the screen: walks away).
    second_tap: True to let the phone sign (the demo must present it), False to press skip.
    """

    decision: str = "accept"
    language: str | None = None
    strokes: tuple[list[list[int]], ...] = DEFAULT_STROKES
    second_tap: bool = False
    _answered: bool = field(default=False, repr=False)

    def consent_inputs(self) -> list[UiInput]:
        if self.decision == "ignore":
            return []
        out: list[UiInput] = []
        if self.language:
            out.append(UiInput(E.LANGUAGE, language=self.language))
        if self.strokes:
            out.append(UiInput(E.STROKES, strokes=tuple(self.strokes)))
        out.append(UiInput(E.ACCEPT if self.decision == "accept" else E.DECLINE))
        return out


class HeadlessDriver:
    """Implements the UI port: `emit`, `poll_input`, `show_field`. Thread-safe."""

    def __init__(self, clock: Clock | None = None, patient: ScriptedPatient | None = None,
                 echo: Callable[[Event], None] | None = None,
                 on_field: Callable[[tuple[int, int, int], str, int], object] | None = None) -> None:
        self.clock = clock or SystemClock()
        self.patient = patient
        self.events: list[Event] = []
        self.fields: list[tuple[tuple[int, int, int], str, int]] = []
        self._inputs: collections.deque[UiInput] = collections.deque()
        self._handlers: dict[str, list[Callable[[Event], object]]] = collections.defaultdict(list)
        self._cond = threading.Condition()
        self._echo = echo
        self._on_field = on_field  # a simulated camera learns what the screen shows

    # --- script ---------------------------------------------------------------------
    def set_patient(self, patient: ScriptedPatient | None) -> None:
        """The next session's patient."""
        with self._cond:
            self.patient = patient
            self._inputs.clear()

    def queue(self, *inputs: UiInput) -> None:
        """Inputs to hand the engine, in order."""
        with self._cond:
            self._inputs.extend(inputs)
            self._cond.notify_all()

    def on(self, event_id: str, fn: Callable[[Event], object]) -> None:
        """Call `fn(event)` when the engine emits `event_id`; a UiInput or list it returns is queued."""
        self._handlers[event_id].append(fn)

    def ids(self) -> list[str]:
        """The message ids emitted so far, in order."""
        return [e.id for e in self.events]

    def clear(self) -> None:
        self.events.clear()

    # --- UI port ----------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        """Record the event; let the scripted patient and handlers react."""
        self.events.append(event)
        if self._echo is not None:
            self._echo(event)
        p = self.patient
        if p is not None:
            if event.id == E.CONSENT_SHOW and not p._answered:
                p._answered = True
                self.queue(*p.consent_inputs())
            elif event.id == E.CONSENT_TAP_TO_SIGN and not p.second_tap:
                self.queue(UiInput(E.SKIP))
        for fn in self._handlers.get(event.id, ()):
            out = fn(event)
            if isinstance(out, UiInput):
                self.queue(out)
            elif isinstance(out, (list, tuple)):
                self.queue(*out)

    def poll_input(self, timeout_s: float) -> UiInput | None:
        """The next scripted input; otherwise wait `timeout_s` on the engine's clock."""
        with self._cond:
            if self._inputs:
                return self._inputs.popleft()
        if timeout_s > 0:
            if isinstance(self.clock, SystemClock):
                with self._cond:
                    self._cond.wait(timeout_s)
                    if self._inputs:
                        return self._inputs.popleft()
            else:
                self.clock.sleep(timeout_s)  # a fake clock: time passes, nobody touches
        return None

    def show_field(self, color: tuple[int, int, int], region: str) -> int:
        """Record the field; a real display would flip it and return the vsync time."""
        if region not in ("full", "left", "right"):
            raise ValueError(f"unknown region {region!r}")
        t = self.clock.monotonic_ns()
        self.fields.append((tuple(color), region, t))  # type: ignore[arg-type]
        if self._on_field is not None:
            self._on_field(tuple(color), region, t)  # type: ignore[arg-type]
        return t
