"""Screen builders: the model's state → the widgets of one frame (plain Python, no pygame).

Every screen has the language toggle (except a liveness light field, which must be nothing
but light, and the head-turn prompt on a strip of it) and every failure screen names a next
step. Sizes come from `Metrics`: touch targets are at least 12 mm on the panel, text sizes are
physical too.
"""

from __future__ import annotations

from collections.abc import Callable

from kiosk.checkin import events as E
from kiosk.ui import i18n
from kiosk.ui import theme as T
from kiosk.ui.blocks import Tr, bottom_button, info, message
from kiosk.ui.model import UiModel
from kiosk.ui.staff_screens import staff
from kiosk.ui.widgets import (
    Box,
    Button,
    Field,
    Label,
    Modal,
    Picto,
    Preview,
    QrCode,
    Rect,
    SignaturePad,
    Widget,
)

# pass refusals the patient can fix with a fresh code; the rest go to the front desk
_FIXABLE = {"stale", "replayed", "malformed", "not-yet-valid"}


def build(m: UiModel, mt: T.Metrics) -> list[Widget]:
    """The widgets of the current frame, in draw order."""

    def tr(msg_id: str, **params: object) -> str:
        return i18n.text(m.lang, msg_id, **params)

    full = Rect(0, 0, mt.width, mt.height)
    if m.field is not None and m.staff is None:
        return _field(m, full, mt, tr)
    out: list[Widget] = [Box(full, None, T.BG, 0)]
    content = full.inset(mt.margin)
    bar, content = content.take_bottom(mt.touch, mt.gap)
    out += _bar(m, mt, bar, tr)
    if m.staff is not None:
        out += staff(m, mt, content, tr)
        return out
    builder = _SCREENS.get(m.screen, _welcome)
    out += builder(m, mt, content, tr)
    if m.screen == "consent":
        out += _consent_modals(m, mt, full, tr)
    return out


def _field(m: UiModel, full: Rect, mt: T.Metrics, tr: Tr) -> list[Widget]:
    assert m.field is not None
    color, region = m.field
    dark = (24, 24, 24)
    if region == "full":
        out: list[Widget] = [Field(full, None, color)]
    else:
        left, right = full.cols([1, 1])
        lit, other = (left, right) if region == "left" else (right, left)
        out = [Field(other, None, dark), Field(lit, None, color)]
    if m.hint is not None and m.hint[0].startswith(E.LIVENESS_TURN):
        # the head-turn prompt on a strip at the bottom, on the field's own colour (the light
        # hardly changes), in black or white, whichever contrasts more (WCAG)
        strip, _ = full.take_bottom(max(mt.touch, full.h // 6))
        ink = max(((0, 0, 0), (255, 255, 255)), key=lambda c: T.contrast(c, color))
        out.append(Label(strip, None, tr(m.hint[0], **m.hint[1]), mt.title_px, ink, color))
    return out


def _bar(m: UiModel, mt: T.Metrics, bar: Rect, tr: Tr) -> list[Widget]:
    """The bottom bar: the language toggle on the right; Staff (welcome) or Log off on the left."""
    out: list[Widget] = []
    langs = list(m.s.languages)
    lw = max(mt.touch * 2, bar.w // (len(langs) + 3))
    x = bar.x + bar.w
    for code in reversed(langs):
        x -= lw
        out.append(
            Button(
                Rect(x, bar.y, lw, bar.h),
                f"lang:{code}",
                i18n.LANGUAGE_NAMES.get(code, code),
                "selected" if code == m.lang else "neutral",
                mt.body_px,
                selected=code == m.lang,
            )
        )
        x -= mt.gap
    left = Rect(bar.x, bar.y, max(mt.touch * 2, bar.w // 5), bar.h)
    if m.staff is not None:
        if m.staff.step == "tabs":
            out.append(Button(left, "staff:logoff", tr("staff.logoff"), "neutral", mt.body_px))
    elif m.screen == "welcome" and m.desk is not None:
        out.append(Button(left, "staff:open", tr("staff.button"), "neutral", mt.small_px))
    return out


def _welcome(m: UiModel, mt: T.Metrics, r: Rect, tr: Tr) -> list[Widget]:
    chans = m.params.get("channels", ["nfc", "qr"])
    title, r = r.take_top(mt.title_px * 2, mt.gap)
    out: list[Widget] = [Label(title, None, tr("welcome.title"), mt.title_px, bold=True)]
    items = []
    if "nfc" in chans:
        items.append(("phone-nfc", tr("welcome.tap") if "qr" in chans else tr("welcome.nfc_only")))
    if "qr" in chans:
        items.append(("qr", tr("welcome.qr") if "nfc" in chans else tr("welcome.qr_only")))
    if not items:
        return out + message(r, tr("checkin.out_of_service"), mt, mt.title_px, warn=True)
    cells = r.rows([1] * len(items), mt.gap) if mt.portrait else r.cols([1] * len(items), mt.gap * 3)
    for cell, (picto, caption) in zip(cells, items, strict=True):
        pic, cap = cell.rows([3, 2], mt.gap)
        out.append(Picto(pic, None, picto))
        out.append(Label(cap, None, caption, mt.body_px, bold=True))
    return out


def _busy(msg: str, picto: str = "phone-nfc") -> Callable[[UiModel, T.Metrics, Rect, Tr], list[Widget]]:
    def b(m: UiModel, mt: T.Metrics, r: Rect, tr: Tr) -> list[Widget]:
        return info(m, mt, r, tr, picto, tr(msg), [tr("checkin.hold_on")])

    return b


def _refused(m: UiModel, mt: T.Metrics, r: Rect, tr: Tr) -> list[Widget]:
    reason = m.params.get("reason", "other")
    why = tr(f"reason.{reason}") if i18n.has(m.lang, f"reason.{reason}") else tr("reason.other")
    nxt = tr("next.fresh_code") if reason in _FIXABLE else tr("next.front_desk")
    return info(m, mt, r, tr, "warn", tr("refused.title"), [why, nxt], ok_button=True)


def _desk(m: UiModel, mt: T.Metrics, r: Rect, tr: Tr) -> list[Widget]:
    reason = m.params.get("reason", "other")
    why = tr(f"desk.{reason}") if i18n.has(m.lang, f"desk.{reason}") else tr("desk.other")
    return info(m, mt, r, tr, "desk", tr("desk.title"), [why, tr("next.front_desk")], ok_button=True)


def _result(msg: str, picto: str, nxt: str) -> Callable[[UiModel, T.Metrics, Rect, Tr], list[Widget]]:
    def b(m: UiModel, mt: T.Metrics, r: Rect, tr: Tr) -> list[Widget]:
        return info(m, mt, r, tr, picto, tr(msg), [tr(nxt)], ok_button=True)

    return b


def _plain(msg: str, picto: str) -> Callable[[UiModel, T.Metrics, Rect, Tr], list[Widget]]:
    def b(m: UiModel, mt: T.Metrics, r: Rect, tr: Tr) -> list[Widget]:
        return info(m, mt, r, tr, picto, tr(msg), [])

    return b


def _face(m: UiModel, mt: T.Metrics, r: Rect, tr: Tr) -> list[Widget]:
    if mt.portrait:
        prev, side = r.rows([3, 2], mt.gap)
    else:
        prev, side = r.cols([1, 1], mt.gap)
    out: list[Widget] = [Preview(prev, None, m.preview)]
    title, hint = side.rows([1, 2], mt.gap)
    out.append(Label(title, None, tr("face.title"), mt.title_px, bold=True))
    if m.hint is not None:
        out += message(hint, tr(m.hint[0], **m.hint[1]), mt, mt.title_px, warn=True)
    return out


def _codes(m: UiModel, codes: list[str] | tuple[str, ...]) -> str:
    return ", ".join(i18n.text(m.lang, f"code.{c}") if i18n.has(m.lang, f"code.{c}") else c for c in codes)


def _consent(m: UiModel, mt: T.Metrics, r: Rect, tr: Tr) -> list[Widget]:
    c = m.consent
    if not c.ok:  # the text here is not the one the record will name: nothing to sign
        return info(m, mt, r, tr, "desk", tr("desk.title"), [tr("desk.other"), tr("next.front_desk")])
    if mt.portrait:
        summ, sig = r.rows([5, 6], mt.gap)
    else:
        summ, sig = r.cols([5, 6], mt.gap)
    out: list[Widget] = []
    # the plain-language summary, from the same terms the record names
    title, rest = summ.take_top(mt.title_px * 3 // 2, mt.gap)
    out.append(Label(title, None, tr("consent.title"), mt.title_px, bold=True, align="left"))
    full_btn, lines_r = rest.take_bottom(mt.touch, mt.gap)
    terms = m.terms
    lines = []
    if terms is not None:
        lines = [
            tr("consent.who", actors=_codes(m, terms.actors)),
            tr("consent.what", actions=_codes(m, terms.actions)),
            tr("consent.why", purposes=_codes(m, terms.purpose)),
            tr("consent.how_long", days=terms.valid_days),
        ]
    out.append(Box(lines_r, None, T.PANEL, 8))
    # one label, so the four lines share one size
    out.append(
        Label(
            lines_r.inset(mt.gap),
            None,
            "\n".join(lines),
            mt.body_px,
            T.INK,
            T.PANEL,
            align="left",
            min_size=12,
        )
    )
    out.append(Button(full_btn, "consent:full", tr("consent.read_full"), "neutral", mt.body_px))
    # the signature pad and the three actions; "Sign" is the one green button
    btns, pad = sig.take_bottom(mt.touch, mt.gap)
    if c.sign_please:
        warn, pad = pad.take_top(mt.body_px * 2, mt.gap)
        out += message(warn, tr("consent.sign_please"), mt, mt.body_px, warn=True)
    out.append(SignaturePad(pad, "pad", m.pad_strokes, tr("consent.sign_here"), mt.body_px))
    clear, decline, sign = btns.cols([1, 1.3, 1.2], mt.gap)
    out.append(Button(clear, "input:clear", tr("consent.clear"), "neutral", mt.body_px))
    out.append(Button(decline, "input:decline", tr("consent.decline"), "neutral", mt.body_px))
    out.append(Button(sign, "input:accept", tr("consent.sign"), "sign", mt.title_px))
    return out


def _consent_modals(m: UiModel, mt: T.Metrics, full: Rect, tr: Tr) -> list[Widget]:
    out: list[Widget] = []
    box = full.inset(mt.margin * 2)
    if m.consent.full_text:
        bh = mt.touch
        btn = Rect(box.x + box.w - mt.touch * 3 - mt.margin, box.y + box.h - bh - mt.margin, mt.touch * 3, bh)
        out.append(
            Modal(
                box,
                None,
                tr("consent.full_title"),
                m.consent.text,
                mt.title_px,
                mt.body_px,
                [Button(btn, "consent:close", tr("consent.close"), "primary", mt.body_px)],
                "left",
            )
        )
    left = m.idle_left
    if left is not None:
        w, h = min(box.w, mt.touch * 9), min(box.h, mt.touch * 5)
        r = Rect(full.x + (full.w - w) // 2, full.y + (full.h - h) // 2, w, h)
        btn = Rect(r.x + mt.margin, r.y + r.h - mt.touch - mt.margin, r.w - 2 * mt.margin, mt.touch)
        out.append(
            Modal(
                r,
                None,
                tr("idle.title"),
                tr("idle.countdown", seconds=left),
                mt.title_px,
                mt.title_px,
                [Button(btn, "idle:here", tr("idle.here"), "sign", mt.body_px)],
            )
        )
    return out


def _second_tap(m: UiModel, mt: T.Metrics, r: Rect, tr: Tr) -> list[Widget]:
    skip, r = bottom_button(r, mt, "input:skip", tr("consent.skip"), "neutral")
    return [*info(m, mt, r, tr, "phone-nfc", tr("consent.tap_to_sign"), [tr("consent.optional")]), skip]


def _done(m: UiModel, mt: T.Metrics, r: Rect, tr: Tr) -> list[Widget]:
    ok, r = bottom_button(r, mt, "result:ok", tr("staff.ok"), "primary")
    out: list[Widget] = [ok]
    title, r = r.take_top(mt.title_px * 2, mt.gap)
    out.append(Label(title, None, tr("done.title"), mt.title_px, bold=True))
    ticket_r, text_r = r.rows([1, 1], mt.gap) if mt.portrait else r.cols([2, 3], mt.gap)
    out.append(Box(ticket_r, None, T.PANEL, 12))
    cap, num = ticket_r.inset(mt.gap).rows([1, 3], 0)
    out.append(Label(cap, None, tr("done.ticket"), mt.body_px, T.INK, T.PANEL))
    if m.ticket:
        out.append(Label(num, None, m.ticket, mt.title_px * 5 // 2, T.INK, T.PANEL, bold=True))
    else:
        out.append(Picto(num, None, "check"))
    lines = [tr("done.seat")] + ([tr("done.declined")] if m.params.get("consent") == "deny" else [])
    link = m.params.get("receipt_link")
    if link:
        # the consent receipt for the patient's web wallet, as a QR code the phone scans
        side = min(text_r.h * 3 // 4, text_r.w // 2)
        qr_r, text_r = text_r.take_bottom(side, mt.gap)
        code, cap = qr_r.cols([side, max(1, qr_r.w - side)], mt.gap)
        out.append(QrCode(Rect(code.x, code.y, side, side), None, link))
        out.append(Label(cap, None, tr("done.receipt"), mt.body_px, align="left"))
    for row, line in zip(text_r.rows([1] * len(lines), mt.gap), lines, strict=True):
        out.append(
            Label(row, None, line, mt.title_px if len(lines) == 1 else mt.body_px, bold=len(lines) == 1)
        )
    return out


def _liveness(m: UiModel, mt: T.Metrics, r: Rect, tr: Tr) -> list[Widget]:
    if m.hint is None:
        return info(m, mt, r, tr, "face", tr("liveness.start"), [])
    pic, side = r.rows([2, 3], mt.gap) if mt.portrait else r.cols([1, 2], mt.gap)
    out: list[Widget] = [Picto(pic.inset(mt.gap), None, "face")]
    return out + message(side, tr(m.hint[0], **m.hint[1]), mt, mt.title_px, warn=True)


_SCREENS: dict[str, Callable[[UiModel, T.Metrics, Rect, Tr], list[Widget]]] = {
    "welcome": _welcome,
    "reading": _busy("checkin.reading"),
    "checking": _busy("checkin.checking_pass"),
    "saving": _busy("checkin.saving", "check"),
    "refused": _refused,
    "desk": _desk,
    "face": _face,
    "face_ok": _plain("face.matched", "check"),
    "face_mismatch": _result("face.mismatch", "warn", "next.front_desk"),
    "nobody": _result("face.nobody", "face", "next.start_over"),
    "walked_away": _result("checkin.walked_away", "face", "next.start_over"),
    "liveness": _liveness,
    "liveness_failed": _result("liveness.failed", "warn", "next.front_desk"),
    "consent": _consent,
    "second_tap": _second_tap,
    "phone_signed": _plain("consent.patient_signed", "check"),
    "done": _done,
    "record_failed": _result("checkin.record_failed", "warn", "next.front_desk"),
    "out_of_service": _result("checkin.out_of_service", "warn", "next.front_desk"),
    "cancelled": _result("checkin.cancelled", "face", "next.start_over"),
}
PATIENT_SCREENS = tuple(_SCREENS)
