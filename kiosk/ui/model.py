"""The UI state: engine events and touches in, UiInputs for the engine out. No pygame here.

The engine decides; the model only shows. It maps each engine message id to a screen,
keeps what the patient drew, the language, the idle warning, and the staff layer (which
sits over the patient screens while the engine keeps waiting for a credential). Result
screens (refused, see the desk, done, …) stay up for `result_s` even though the engine is
already back at the attract screen, so the patient can read them; a new tap replaces them.
"""

from __future__ import annotations

import collections
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from kiosk.checkin import events as E
from kiosk.checkin.events import Event, UiInput
from kiosk.protocol.consent import text_sha256

log = logging.getLogger(__name__)

RESULT_SCREENS = {
    "refused",
    "desk",
    "nobody",
    "walked_away",
    "done",
    "record_failed",
    "cancelled",
    "liveness_failed",
    "face_mismatch",
    "out_of_service",
}
FACE_HINTS = {
    "face.none",
    "face.too_many",
    "face.come_closer",
    "face.look_at_camera",
    "face.more_light",
    "face.too_bright",
    "face.hold_still",
}
STAFF_TABS = ("queue", "alerts", "health", "parked", "override")
OVERRIDE_REASONS = (
    "identity-confirmed",
    "face-not-matched",
    "no-biometric-consent",
    "no-phone",
    "kiosk-fault",
)
PIN_MAX = 8


@dataclass
class UiSettings:
    """Timings and choices of the UI (the `[ui]` table)."""

    languages: tuple[str, ...] = ("en", "es")
    default_language: str = "en"
    result_s: float = 8.0
    idle_warning_s: float = 45.0
    idle_countdown_s: float = 15.0
    staff_idle_s: float = 120.0


@dataclass
class StaffLayer:
    """The staff mode over the patient screens: sign-in steps, then tabs."""

    step: str = "badge"  # badge | pin | checking | tabs
    staff_id: str | None = None  # after the badge; signed in once step == "tabs"
    pin: str = ""
    message: tuple[str, dict] | None = None
    tab: str = "queue"
    reason: str | None = None  # override reason picked
    last_touch: float = 0.0


@dataclass
class Consent:
    document_id: str = ""
    version: str = ""
    language: str = "en"
    text: str = ""
    ok: bool = True
    shown_at: float = 0.0
    strokes: list[list[list[int]]] = field(default_factory=list)
    drawing: list[list[int]] | None = None
    sign_please: bool = False
    full_text: bool = False


class UiModel:
    """Thread-safe: the engine's thread calls `on_event`; the UI thread calls the rest."""

    def __init__(
        self,
        settings: UiSettings,
        consent_texts: dict[str, str],
        clock: Any,
        consent_terms: Any = None,
        desk: Any = None,
    ) -> None:
        self.s = settings
        self.texts = dict(consent_texts)
        self.terms = consent_terms
        self.clock = clock
        self.desk = desk
        self.lang = settings.default_language
        self.screen = "welcome"
        self.params: dict[str, Any] = {"channels": ["nfc", "qr"]}
        self.hint: tuple[str, dict] | None = None
        self.consent = Consent()
        self.field: tuple[tuple[int, int, int], str] | None = None
        self.ticket: str | None = None
        self.channel: str | None = None
        self.staff: StaffLayer | None = None
        self.preview: Any = None
        self.inputs: collections.deque[UiInput] = collections.deque()
        self.prompts: collections.deque[str] = collections.deque()  # message ids to speak
        self.version = 0
        self.history: collections.deque[str] = collections.deque(maxlen=64)  # screens shown, newest last
        self._held_until = 0.0
        self._pending_welcome: dict | None = None
        self._last_touch = clock.monotonic()
        self._idle_started: float | None = None
        self.lock = threading.RLock()  # held by every change and by the layout of a frame

    # --- helpers -------------------------------------------------------------------------
    def _now(self) -> float:
        return float(self.clock.monotonic())

    def _show(self, screen: str, prompt: str | None = None, **params: Any) -> None:
        again = screen == self.screen and params == self.params  # e.g. "out of service" every poll
        self.screen, self.params = screen, params
        self.history.append(screen)
        self.hint = None
        self.field = None
        if screen in RESULT_SCREENS:
            self._held_until = self._now() + self.s.result_s
        self._pending_welcome = None
        self._idle_started = None
        if prompt and not again:
            self.prompts.append(prompt)
        self.changed()

    def changed(self) -> None:
        self.version += 1

    def send(self, inp: UiInput) -> None:
        self.inputs.append(inp)

    def take_input(self) -> UiInput | None:
        with self.lock:
            return self.inputs.popleft() if self.inputs else None

    def _forget_patient(self) -> None:
        """Back to the attract screen: no strokes, no language choice, no ticket kept."""
        self.consent = Consent()
        self.ticket = None
        self.channel = None
        self.field = None
        self.preview = None
        self.lang = self.s.default_language

    # --- engine events ---------------------------------------------------------------------
    def on_event(self, ev: Event) -> None:
        with self.lock:
            self._on_event(ev)

    def _on_event(self, ev: Event) -> None:  # noqa: C901 (one branch per message id reads best)
        i, p = ev.id, ev.params
        if i == E.STAFF_ALERT:
            if self.desk is not None:
                self.desk.alert(str(p.get("kind", "other")), self.clock.time())
            self.changed()
        elif i == E.STAFF_CONFIRM_IDENTITY:
            # another issuer's credential: staff confirm who it names (the one event with
            # personal data; it stays in the desk's memory until acknowledged)
            if self.desk is not None:
                who = p.get("claimed")
                self.desk.alert(
                    "confirm-identity",
                    self.clock.time(),
                    {
                        "format": str(p.get("format", "")),
                        "issuer": str(p.get("issuer", "")),
                        "name": ", ".join(
                            x for x in (getattr(who, "family", ""), getattr(who, "given", "")) if x
                        ),
                        "birth": getattr(who, "birth_date", ""),
                    },
                )
            self.changed()
        elif i == E.TAP_OR_SHOW_QR:
            welcome = {"channels": list(p.get("channels", []))}
            if self.screen in RESULT_SCREENS and self._now() < self._held_until:
                self._pending_welcome = welcome  # let the patient read the result first
            else:
                self._forget_patient()
                self._show("welcome", None, **welcome)
        elif i == E.READING:
            if self.staff is not None:
                self.staff = None  # a patient tapped: staff mode logs off at once
            self._forget_patient()
            self.channel = str(p.get("channel", ""))
            self._show("reading", i)
        elif i == E.CHECKING_PASS:
            self._show("checking", None)
        elif i == E.PASS_REFUSED:
            self._show("refused", "refused.title", reason=str(p.get("reason", "other")))
        elif i == E.SEE_FRONT_DESK:
            self._show("desk", "desk.title", reason=str(p.get("reason", "other")))
        elif i == E.FACE_START or i in FACE_HINTS:
            if self.screen != "face":
                self._show("face", "face.title")
            self.hint = (i, {})
            self.changed()
        elif i == E.FACE_RETRY:
            if self.screen != "face":
                self._show("face", None)
            self.hint = (i, {"attempt": p.get("attempt", 1), "max": p.get("max", 1)})
            self.prompts.append(i)
            self.changed()
        elif i == E.FACE_MATCHED:
            self._show("face_ok", i)
        elif i == E.FACE_MISMATCH:
            self._show("face_mismatch", i)
        elif i == E.FACE_NOBODY:
            self._show("nobody", i)
        elif i == E.WALKED_AWAY:
            self._show("walked_away", i)
        elif i == E.LIVENESS_START:
            self._show("liveness", i)
        elif i in (E.LIVENESS_TURN, E.LIVENESS_RETRY):
            # one more try: the light is off and the screen says what to do. A head turn comes
            # during the last colour fields: the field stays and the prompt is drawn on a strip
            # of it (and spoken)
            keep = i == E.LIVENESS_TURN and self.screen == "liveness" and self.field is not None
            if not keep and (self.screen != "liveness" or self.field is not None):
                self._show("liveness", None)
            params = {k: p[k] for k in ("direction", "attempt", "max") if k in p}
            self.hint = (f"{i}.{p.get('direction', '')}" if i == E.LIVENESS_TURN else i, params)
            self.prompts.append(self.hint[0])
            self.changed()
        elif i == E.LIVENESS_FAILED:
            self.field = None
            self._show("liveness_failed", i)
        elif i == E.CONSENT_SHOW:
            self._consent_shown(p)
        elif i == E.CONSENT_SIGN_PLEASE:
            self.consent.sign_please = True
            self.prompts.append(i)
            self.changed()
        elif i == E.CONSENT_TAP_TO_SIGN:
            self._show("second_tap", i, timeout_s=p.get("timeout_s", 0))
        elif i == E.CONSENT_PATIENT_SIGNED:
            self._show("phone_signed", i)
        elif i == E.SAVING:
            self._show("saving", None)
        elif i == E.DONE:
            consent = str(p.get("consent", "permit"))
            self.ticket = (
                self.desk.next_ticket(self.channel or "nfc", self.clock.time()) if self.desk else None
            )
            self._show("done", "done.title", consent=consent, entries=list(p.get("entries", [])))
        elif i == E.CONSENT_RECEIPT:
            # the verified receipt of this patient's consent, as a link their web wallet keeps:
            # shown as a QR code while their done screen is still up, else dropped
            if self.screen == "done" and p.get("entry") in self.params.get("entries", []):
                self.params = {**self.params, "receipt_link": str(p.get("link", ""))}
                self.changed()
        elif i == E.RECORD_FAILED:
            self._show("record_failed", i)
        elif i == E.OUT_OF_SERVICE:
            self._show("out_of_service", i)

    def _consent_shown(self, p: dict) -> None:
        lang = str(p.get("language", self.lang))
        text = self.texts.get(lang, "")
        # show exactly the text whose hash the engine records, or nothing at all
        ok = text_sha256(text).hex() == p.get("text_sha256")
        if not ok:
            log.error("consent text differs from the engine's (document %s)", p.get("document_id"))
        first = self.screen != "consent"
        c = self.consent
        c.document_id, c.version, c.language, c.text, c.ok = (
            str(p.get("document_id", "")),
            str(p.get("version", "")),
            lang,
            text,
            ok,
        )
        if first:
            c.shown_at = self._now()
            c.strokes, c.drawing, c.sign_please, c.full_text = [], None, False, False
            self._show("consent", "consent.title")
            self._last_touch = self._now()
            if self.lang != lang and self.lang in self.texts:
                self.send(UiInput(E.LANGUAGE, language=self.lang))  # the patient chose earlier
                return
        self.lang = lang
        self.changed()

    def show_field(self, color: tuple[int, int, int], region: str) -> None:
        with self.lock:
            self.field = (tuple(color), region)  # type: ignore[assignment]
            self.changed()

    # --- time ----------------------------------------------------------------------------
    def tick(self) -> None:
        """Timers: results leave, the idle warning counts down, staff log off when idle."""
        with self.lock:
            now = self._now()
            if self._pending_welcome is not None and now >= self._held_until:
                welcome, self._pending_welcome = self._pending_welcome, None
                self._forget_patient()
                self._show("welcome", None, **welcome)
            if self.screen == "consent":
                idle = now - self._last_touch
                if idle >= self.s.idle_warning_s + self.s.idle_countdown_s:
                    self.send(UiInput(E.CANCEL))
                    self._forget_patient()
                    self._show("cancelled", "checkin.cancelled")
                elif idle >= self.s.idle_warning_s:
                    left = int(self.s.idle_warning_s + self.s.idle_countdown_s - idle + 0.999)
                    if self._idle_started is None:
                        self._idle_started = now
                        self.prompts.append("idle.title")
                    if self.params.get("idle_left") != left:
                        self.params = {**self.params, "idle_left": left}
                        self.changed()
            st = self.staff
            if st is not None and st.step != "checking" and now - st.last_touch >= self.s.staff_idle_s:
                self.staff = None
                self.changed()

    @property
    def idle_left(self) -> int | None:
        return self.params.get("idle_left") if self._idle_started is not None else None

    # --- touches --------------------------------------------------------------------------
    def touched(self) -> None:
        """Any touch: someone is there."""
        with self.lock:
            self._touched()

    def _touched(self) -> None:
        self._last_touch = self._now()
        if self.staff is not None:
            self.staff.last_touch = self._last_touch
        if self._idle_started is not None:
            self._idle_started = None
            self.params = {k: v for k, v in self.params.items() if k != "idle_left"}
            self.changed()

    def press(self, action: str) -> None:
        """A button was tapped."""
        with self.lock:
            self.touched()
            self._press(action)
            self.changed()

    def _press(self, action: str) -> None:  # noqa: C901
        kind, _, arg = action.partition(":")
        c = self.consent
        if kind == "lang":
            self.lang = arg
            if self.screen == "consent" and self.staff is None and arg in self.texts:
                self.send(UiInput(E.LANGUAGE, language=arg))
        elif kind == "input":
            if arg == E.ACCEPT and not c.strokes:
                c.sign_please = True
            if arg == E.CLEAR:
                c.strokes, c.drawing = [], None
            self.send(UiInput(arg))
        elif action == "consent:full":
            c.full_text = True
        elif action == "consent:close":
            c.full_text = False
        elif action == "idle:here":
            pass  # touched() already dismissed the warning
        elif action == "result:ok":
            self._forget_patient()
            self._show(
                "welcome",
                None,
                channels=(self._pending_welcome or {}).get(
                    "channels", self.params.get("channels", ["nfc", "qr"])
                ),
            )
        elif kind == "staff":
            self._press_staff(arg)
        elif kind == "key" and self.staff is not None:
            self._key(arg)
        elif kind == "tab" and self.staff is not None:
            self.staff.tab, self.staff.message = arg, None
        elif kind == "ack" and self.desk is not None:
            self.desk.ack(int(arg))
        elif kind == "reason" and self.staff is not None:
            self.staff.reason, self.staff.message = arg, None
        elif action == "parked:retry" and self.desk is not None and self.staff is not None:
            n = self.desk.retry_parked()
            self.staff.message = ("staff.retried", {"count": n})
        elif action == "override:confirm" and self.staff is not None:
            self._override()

    def _press_staff(self, arg: str) -> None:
        if arg == "open" and self.desk is not None:
            self.staff = StaffLayer(last_touch=self._now())
        elif arg in ("cancel", "logoff"):
            self.staff = None

    def on_badge(self, badge: bytes) -> None:
        """The badge reader saw a badge while the sign-in screen waits for one."""
        with self.lock:
            st = self.staff
            if st is None or st.step != "badge" or self.desk is None:
                return
            st.last_touch = self._now()
            who = self.desk.store.by_badge(badge)
            if who is None:
                st.message = ("staff.unknown_badge", {})
            elif not who.active:
                st.message = ("staff.disabled", {})
            else:
                st.staff_id, st.step, st.pin, st.message = who.staff_id, "pin", "", None
            self.changed()

    def _key(self, arg: str) -> None:
        st = self.staff
        assert st is not None
        if st.step != "pin":
            return
        if arg == "del":
            st.pin = st.pin[:-1]
        elif arg == "ok":
            if st.pin and st.staff_id and self.desk is not None:
                st.step, st.message = "checking", ("staff.checking", {})
                pin, st.pin = st.pin, ""
                self.desk.verify_async(st.staff_id, pin, self.on_pin_result)
        elif arg.isdigit() and len(st.pin) < PIN_MAX:
            st.pin += arg

    def on_pin_result(self, result: Any) -> None:
        """The PIN check finished (in its own thread): signed in, wrong, or locked."""
        with self.lock:
            st = self.staff
            if st is None or st.step != "checking":
                return
            st.last_touch = self._now()
            if result.ok:
                st.step, st.tab, st.message = "tabs", "queue", None
            elif result.locked_s > 0:
                st.step, st.message = (
                    "pin",
                    ("staff.locked", {"minutes": max(1, int(result.locked_s / 60 + 0.999))}),
                )
            else:
                st.step, st.message = "pin", ("staff.wrong_pin", {"left": result.tries_left})
            self.changed()

    def _override(self) -> None:
        st = self.staff
        assert st is not None and self.desk is not None
        if st.reason is None or st.staff_id is None:
            st.message = ("staff.override.pick", {})
            return
        ticket = self.desk.override(st.staff_id, st.reason, self.clock.time())
        st.message = ("staff.override.done", {"ticket": ticket}) if ticket else ("staff.override.failed", {})
        st.reason = None

    # --- signature pad --------------------------------------------------------------------
    def pad_down(self, pos: tuple[int, int]) -> None:
        with self.lock:
            self.touched()
            c = self.consent
            c.drawing = [[int(pos[0]), int(pos[1]), self._t_ms()]]
            c.sign_please = False
            self.changed()

    def pad_move(self, pos: tuple[int, int]) -> None:
        with self.lock:
            d = self.consent.drawing
            if d is None:
                return
            last = d[-1]
            if abs(last[0] - pos[0]) + abs(last[1] - pos[1]) >= 2:
                d.append([int(pos[0]), int(pos[1]), self._t_ms()])
                self.changed()

    def pad_up(self) -> None:
        with self.lock:
            c = self.consent
            if c.drawing is None:
                return
            stroke, c.drawing = c.drawing, None
            c.strokes.append(stroke)
            self.send(UiInput(E.STROKES, strokes=(stroke,)))
            self._last_touch = self._now()
            self.changed()

    def _t_ms(self) -> int:
        return int((self._now() - self.consent.shown_at) * 1000)

    @property
    def pad_strokes(self) -> list[list[list[int]]]:
        c = self.consent
        return c.strokes + ([c.drawing] if c.drawing else [])
