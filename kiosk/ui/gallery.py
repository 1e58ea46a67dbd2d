"""Every screen, in every language, at every panel size, drawn to PNG (`kiosk ui screens`).

Each scene puts a fresh model into one state by feeding it the engine's own events (and, for
staff screens, a desk over a throwaway staff file), then draws one frame. The tests use the
same scenes to check clipping, glyphs, contrast and touch-target sizes everywhere.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kiosk.checkin import events as E
from kiosk.checkin.events import Event
from kiosk.checkin.ports import SystemClock
from kiosk.config import ConsentTable
from kiosk.protocol.consent import text_sha256
from kiosk.ui import i18n
from kiosk.ui.model import UiModel, UiSettings

SIZES = ((800, 480), (720, 1280))
DEMO_STROKES = (
    [[20, 60, 0], [40, 25, 40], [60, 70, 80], [80, 30, 120], [100, 65, 160], [125, 35, 200]],
    [[30, 85, 500], [130, 80, 600]],
)


@dataclass
class _Health:
    name: str
    value: Any
    ok: bool | None


def _consent_event(consent: ConsentTable, lang: str) -> Event:
    return Event(
        E.CONSENT_SHOW,
        {
            "document_id": consent.document_id,
            "version": consent.version,
            "language": lang,
            "text_sha256": text_sha256(consent.text[lang]).hex(),
        },
    )


def _preview() -> np.ndarray:
    """A neutral camera-like picture (no person: the README's images are our own renders)."""
    y, x = np.mgrid[0:240, 0:320]
    img = np.stack([90 + x // 4, 100 + y // 4, np.full_like(x, 120)], axis=2)
    return img.clip(0, 255).astype(np.uint8)


def _strokes_in(ui: Any) -> list[list[list[int]]]:
    from kiosk.ui.widgets import SignaturePad, flatten

    pad = next(w for w in flatten(ui.widgets) if isinstance(w, SignaturePad))
    r = pad.rect
    sx, sy = (r.w - 40) / 150, (r.h - 40) / 100
    return [[[int(r.x + 20 + p[0] * sx), int(r.y + 20 + p[1] * sy), p[2]] for p in s] for s in DEMO_STROKES]


def scenes(consent: ConsentTable) -> Iterator[tuple[str, Callable[[Any], None]]]:
    """(name, set-up) pairs; set-up receives the PygameUi whose model it puts in place."""

    def ev(*events: Event) -> Callable[[Any], None]:
        def f(ui: Any) -> None:
            for e in events:
                ui.model.on_event(e)

        return f

    def consent_with(extra: Callable[[Any], None] | None = None) -> Callable[[Any], None]:
        def f(ui: Any) -> None:
            ui.model.on_event(_consent_event(consent, ui.model.lang))
            ui.draw()
            ui.model.consent.strokes = _strokes_in(ui)
            if extra:
                extra(ui)

        return f

    yield "welcome", ev(Event(E.TAP_OR_SHOW_QR, {"channels": ["nfc", "qr"]}))
    yield "welcome-qr-only", ev(Event(E.TAP_OR_SHOW_QR, {"channels": ["qr"]}))
    yield "reading", ev(Event(E.READING, {"channel": "nfc"}))
    yield "checking", ev(Event(E.READING, {"channel": "nfc"}), Event(E.CHECKING_PASS))
    yield "refused-revoked", ev(Event(E.PASS_REFUSED, {"reason": "revoked"}))
    yield "refused-stale", ev(Event(E.PASS_REFUSED, {"reason": "stale"}))
    yield "desk-no-biometric", ev(Event(E.SEE_FRONT_DESK, {"reason": "no-biometric-consent"}))

    def face(ui: Any) -> None:
        ui.model.on_event(Event(E.FACE_START))
        ui.model.on_event(Event("face.come_closer"))
        ui.model.preview = _preview()

    yield "face", face
    yield "face-retry", ev(Event(E.FACE_START), Event(E.FACE_RETRY, {"attempt": 1, "max": 3}))
    yield "face-matched", ev(Event(E.FACE_MATCHED))
    yield "face-mismatch", ev(Event(E.FACE_MISMATCH))
    yield "nobody", ev(Event(E.FACE_NOBODY))
    yield "walked-away", ev(Event(E.WALKED_AWAY))
    yield "liveness", ev(Event(E.LIVENESS_START, {"method": "light"}))
    yield (
        "liveness-turn",
        ev(Event(E.LIVENESS_START, {"method": "light"}), Event(E.LIVENESS_TURN, {"direction": "turn-left"})),
    )
    for name, colour in (("green", (40, 255, 90)), ("blue", (40, 90, 255)), ("magenta", (230, 60, 255)),
                         ("idle", (70, 70, 70))):
        # the turn is asked during the last colour fields: the prompt on a strip of the field

        def turn_on_field(ui: Any, colour: tuple[int, int, int] = colour) -> None:
            ui.model.on_event(Event(E.LIVENESS_START, {"method": "light"}))
            ui.model.show_field(colour, "full")
            ui.model.on_event(Event(E.LIVENESS_TURN, {"direction": "turn-right"}))

        yield f"liveness-turn-on-{name}", turn_on_field
    yield (
        "liveness-retry",
        ev(Event(E.LIVENESS_START, {"method": "light"}), Event(E.LIVENESS_RETRY, {"attempt": 2, "max": 2})),
    )
    yield "liveness-failed", ev(Event(E.LIVENESS_FAILED))
    yield "consent", consent_with()

    def sign_please(ui: Any) -> None:
        ui.model.consent.strokes = []
        ui.model.on_event(Event(E.CONSENT_SIGN_PLEASE))

    yield "consent-sign-please", consent_with(sign_please)

    def full_text(ui: Any) -> None:
        ui.model.consent.full_text = True

    yield "consent-full-text", consent_with(full_text)

    def idle(ui: Any) -> None:
        m = ui.model
        m._idle_started = m._now()
        m.params = {**m.params, "idle_left": 12}

    yield "consent-idle", consent_with(idle)
    yield "second-tap", ev(Event(E.CONSENT_TAP_TO_SIGN, {"timeout_s": 10}))
    yield "phone-signed", ev(Event(E.CONSENT_PATIENT_SIGNED))
    yield "saving", ev(Event(E.SAVING))
    yield (
        "done",
        ev(Event(E.READING, {"channel": "nfc"}), Event(E.DONE, {"entries": [], "consent": "permit"})),
    )
    yield (
        "done-declined",
        ev(Event(E.READING, {"channel": "qr"}), Event(E.DONE, {"entries": [], "consent": "deny"})),
    )
    yield (
        "done-receipt",
        ev(
            Event(E.READING, {"channel": "nfc"}),
            Event(E.DONE, {"entries": ["3941401af7a0", "d35ffb77d52a"], "consent": "permit"}),
            Event(
                E.CONSENT_RECEIPT,
                {
                    "entry": "d35ffb77d52a",
                    "link": "https://wallet.clinic.example/#r=AAECAwQFBgcICQoLDA0ODxAREhMUFRYX",
                },
            ),
        ),
    )
    yield "record-failed", ev(Event(E.RECORD_FAILED))
    yield "out-of-service", ev(Event(E.OUT_OF_SERVICE))

    def staff(
        step: str,
        tab: str = "queue",
        message: tuple[str, dict] | None = None,
        pin: str = "",
        reason: str | None = None,
    ) -> Callable[[Any], None]:
        def f(ui: Any) -> None:
            m = ui.model
            m.press("staff:open")
            st = m.staff
            st.step, st.tab, st.message, st.pin, st.staff_id, st.reason = (
                step,
                tab,
                message,
                pin,
                "s-0042",
                reason,
            )

        return f

    yield "staff-badge", staff("badge")
    yield "staff-pin", staff("pin", pin="12", message=("staff.wrong_pin", {"left": 2}))
    yield "staff-locked", staff("pin", message=("staff.locked", {"minutes": 4}))
    yield "staff-queue", staff("tabs", "queue")
    yield "staff-alerts", staff("tabs", "alerts")
    yield "staff-health", staff("tabs", "health")
    yield "staff-parked", staff("tabs", "parked")
    yield "staff-override", staff("tabs", "override", reason="face-not-matched")
    yield "staff-override-done", staff("tabs", "override", ("staff.override.done", {"ticket": "A-19"}))


def gallery_desk(directory: Path) -> Any:
    """A desk with a few tickets, alerts, health rows and parked records, for the pictures."""
    from kiosk.net.outbox import ParkedEntry
    from kiosk.staff.desk import Desk
    from kiosk.staff.store import StaffStore

    store = StaffStore(directory / "staff.sqlite3")
    now = time.time()
    for i, ch in enumerate(("nfc", "qr", "nfc", "desk")):
        store.next_ticket(ch, now - 60 * (12 - 3 * i))
    health = [
        _Health("reader", ("staff.health.ok", {}), True),
        _Health("camera", ("staff.health.ok", {}), True),
        _Health("broker", ("staff.health.connected", {}), True),
        _Health("gateway", "log size 1532", True),
        _Health("outbox", ("staff.health.waiting", {"depth": 2, "age": "14 s"}), True),
        _Health("alarms", ("staff.health.none", {}), True),
        _Health("revocations", ("staff.health.age", {"age": "3.2 h"}), True),
        _Health("disk", ("staff.health.free", {"free": "71%"}), True),
        _Health("clock", ("staff.health.unsynced", {}), False),
    ]
    parked = [
        ParkedEntry(bytes.fromhex("3941401af7a0") + bytes(26), "unknown-kiosk", now - 400, now - 380, 2)
    ]
    desk = Desk(
        store,
        site="clinic",
        kiosk="kiosk-1",
        health_fn=lambda: health,  # type: ignore[arg-type,return-value]
        parked_fn=lambda: parked,
        retry_fn=lambda: 1,
    )
    desk.alert("camera-failure", now - 300)
    desk.alert("revocation-list-stale", now - 120)
    # the EU DCC specification's sample person, as a foreign credential routed to the desk
    desk.alert(
        "confirm-identity",
        now - 30,
        {"format": "eu-dcc", "issuer": "AT", "name": "Musterfrau-Gößinger, Gabriele", "birth": "1998-02-26"},
    )
    return desk


@dataclass
class Shot:
    name: str
    size: tuple[int, int]
    lang: str
    records: list
    widgets: list
    path: Path | None


def render(
    out: Path | None,
    sizes: tuple[tuple[int, int], ...] = SIZES,
    languages: list[str] | None = None,
    consent: ConsentTable | None = None,
    only: set[str] | None = None,
) -> list[Shot]:
    """Draw every scene; save DIR/<W>x<H>/<lang>/<scene>.png when `out` is given."""
    from kiosk.ui.app import PygameUi

    consent = consent or ConsentTable()
    shots: list[Shot] = []
    with tempfile.TemporaryDirectory(prefix="kiosk-ui-") as tmp:
        desk = gallery_desk(Path(tmp))
        try:
            for size in sizes:
                ui = PygameUi(
                    UiModel(UiSettings(), consent.text, SystemClock(), consent, desk), size, fps=0
                ).open()
                for lang in languages or i18n.available():
                    for name, setup in scenes(consent):
                        if only and name not in only:
                            continue
                        ui.model = UiModel(
                            UiSettings(default_language=lang), consent.text, SystemClock(), consent, desk
                        )
                        setup(ui)
                        ui.draw()
                        path = None
                        if out is not None:
                            path = out / f"{size[0]}x{size[1]}" / lang / f"{name}.png"
                            ui.save(path)
                        shots.append(Shot(name, size, lang, list(ui.records), list(ui.widgets), path))
                ui.close()
        finally:
            desk.store.close()
    return shots
