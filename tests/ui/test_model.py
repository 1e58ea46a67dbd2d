"""The UI model without a display: receipts, held result screens, the consent text check."""

from __future__ import annotations

from checkin.fakes import FakeClock

from kiosk.checkin import events as E
from kiosk.checkin.events import Event
from kiosk.config import ConsentTable
from kiosk.protocol.consent import text_sha256
from kiosk.ui.model import UiModel, UiSettings


def _model(**kw) -> tuple[UiModel, FakeClock]:
    clock = FakeClock()
    return UiModel(UiSettings(**kw), ConsentTable().text, clock, ConsentTable()), clock


def test_the_consent_receipt_of_this_patient_shows_on_their_done_screen_only() -> None:
    m, _ = _model()
    m.on_event(Event(E.DONE, {"entries": ["aa", "bb"], "consent": "permit"}))
    m.on_event(Event(E.CONSENT_RECEIPT, {"entry": "cc", "link": "https://w.example/#r=other"}))
    assert "receipt_link" not in m.params  # another session's receipt
    m.on_event(Event(E.CONSENT_RECEIPT, {"entry": "bb", "link": "https://w.example/#r=x"}))
    assert m.params["receipt_link"] == "https://w.example/#r=x"
    m.on_event(Event(E.READING, {"channel": "nfc"}))
    m.on_event(Event(E.CONSENT_RECEIPT, {"entry": "bb", "link": "https://w.example/#r=x"}))
    assert m.screen == "reading" and "receipt_link" not in m.params  # the next patient never sees it


def test_a_result_stays_up_while_the_engine_is_back_at_the_attract_screen() -> None:
    m, clock = _model(result_s=8.0)
    m.on_event(Event(E.PASS_REFUSED, {"reason": "expired"}))
    m.on_event(Event(E.TAP_OR_SHOW_QR, {"channels": ["nfc"]}))
    assert m.screen == "refused"
    clock.sleep(8.5)
    m.tick()
    assert m.screen == "welcome" and m.params["channels"] == ["nfc"]


def test_a_consent_text_that_does_not_match_the_announced_hash_is_flagged() -> None:
    m, _ = _model()
    m.on_event(
        Event(
            E.CONSENT_SHOW,
            {
                "document_id": "d",
                "version": "1",
                "language": "en",
                "text_sha256": text_sha256("another text").hex(),
            },
        )
    )
    assert m.screen == "consent" and not m.consent.ok
    from kiosk.ui import screens
    from kiosk.ui.theme import Metrics

    actions = {w.action for w in screens.build(m, Metrics.for_size((800, 480))) if w.action}
    assert "input:accept" not in actions  # no "Sign" under a text the record would not name
    m.on_event(
        Event(
            E.CONSENT_SHOW,
            {
                "document_id": "d",
                "version": "1",
                "language": "es",
                "text_sha256": text_sha256(ConsentTable().text["es"]).hex(),
            },
        )
    )
    assert m.consent.ok and m.lang == "es"


def test_out_of_service_every_poll_is_one_screen_and_one_prompt() -> None:
    m, _ = _model(result_s=8.0)
    for _ in range(5):  # the engine says it at each poll while no channel works
        m.on_event(Event(E.TAP_OR_SHOW_QR, {"channels": []}))
        m.on_event(Event(E.OUT_OF_SERVICE))
    assert m.screen == "out_of_service"
    assert list(m.prompts).count("checkin.out_of_service") == 1
