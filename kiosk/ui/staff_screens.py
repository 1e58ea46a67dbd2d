"""Staff mode's screens (badge + PIN, then the tabs: queue, alerts, health, parked records,
override): the model's staff state -> the widgets of one frame (plain Python, no pygame)."""

from __future__ import annotations

import time

from kiosk.ui import i18n
from kiosk.ui import theme as T
from kiosk.ui.blocks import Tr, bottom_button, info, message
from kiosk.ui.model import OVERRIDE_REASONS, STAFF_TABS, UiModel
from kiosk.ui.widgets import (
    Box,
    Button,
    Label,
    Rect,
    Widget,
    keypad,
)


def staff(m: UiModel, mt: T.Metrics, r: Rect, tr: Tr) -> list[Widget]:
    st = m.staff
    assert st is not None
    if st.step == "badge":
        cancel, r = bottom_button(r, mt, "staff:cancel", tr("staff.cancel"), "neutral")
        lines = [tr(st.message[0], **st.message[1])] if st.message else []
        return [*info(m, mt, r, tr, "phone-nfc", tr("staff.badge"), lines), cancel]
    if st.step in ("pin", "checking"):
        return _pin(m, mt, r, tr)
    # portrait: two rows of tabs, so each label stays large enough to read
    rows_n = 2 if mt.portrait else 1
    tabs, body = r.take_top(mt.touch * rows_n + mt.gap // 2 * (rows_n - 1), mt.gap)
    cells = (
        (
            tabs.rows([1, 1], mt.gap // 2)[0].cols([1, 1, 1], mt.gap // 2)
            + tabs.rows([1, 1], mt.gap // 2)[1].cols([1, 1], mt.gap // 2)
        )
        if mt.portrait
        else tabs.cols([1] * len(STAFF_TABS), mt.gap // 2)
    )
    out: list[Widget] = []
    for cell, tab in zip(cells, STAFF_TABS, strict=True):
        label = tr(f"staff.tab.{tab}")
        if tab == "alerts" and m.desk is not None and m.desk.alerts():
            label += f" ({len(m.desk.alerts())})"
        out.append(
            Button(
                cell,
                f"tab:{tab}",
                label,
                "selected" if tab == st.tab else "neutral",
                mt.body_px,
                selected=tab == st.tab,
            )
        )
    if st.message and st.tab != "override":  # the override tab shows it in its title line
        msg, body = body.take_bottom(mt.body_px * 2, mt.gap)
        out += message(msg, tr(st.message[0], **st.message[1]), mt, mt.body_px, warn=True)
    out += _STAFF_TABS[st.tab](m, mt, body, tr)
    return out


def _pin(m: UiModel, mt: T.Metrics, r: Rect, tr: Tr) -> list[Widget]:
    st = m.staff
    assert st is not None
    if mt.portrait:
        left, pad = r.rows([2, 3], mt.gap)
    else:
        left, pad = r.cols([1, 1], mt.gap * 2)
    rows = left.rows([2, 2, 2, 2], mt.gap)
    out: list[Widget] = [Label(rows[0], None, tr("staff.pin"), mt.title_px, bold=True)]
    out.append(Box(rows[1], None, T.PANEL, 8))
    out.append(Label(rows[1], None, "●" * len(st.pin), mt.title_px, T.INK, T.PANEL))
    if st.message:
        out += message(rows[2], tr(st.message[0], **st.message[1]), mt, mt.body_px, warn=True)
    cancel = Rect(rows[3].x, rows[3].y + rows[3].h - mt.touch, rows[3].w, mt.touch)
    out.append(Button(cancel, "staff:cancel", tr("staff.cancel"), "neutral", mt.body_px))
    # a keypad of 4 rows of 12 mm keys at least
    kh = max(pad.h, 4 * mt.touch + 3 * mt.gap)
    out += keypad(
        Rect(pad.x, pad.y, pad.w, min(kh, pad.h)), mt.gap, mt.title_px, tr("staff.ok"), tr("staff.delete")
    )
    return out


def _rows(rect: Rect, texts: list[tuple[str, bool]], mt: T.Metrics, row_h: int) -> list[Widget]:
    """Non-touchable rows; (text, bad) — bad rows are white on red."""
    out: list[Widget] = []
    n = max(1, (rect.h + mt.gap // 2) // (row_h + mt.gap // 2))
    shown = texts if len(texts) <= n else texts[: n - 1] + [(f"+{len(texts) - n + 1} …", False)]
    y = rect.y
    for text, bad in shown:
        row = Rect(rect.x, y, rect.w, row_h)
        bg, fg = (T.DANGER, T.WHITE) if bad else (T.PANEL, T.INK)
        out.append(Box(row, None, bg, 6))
        out.append(Label(row.inset(4), None, text, mt.small_px, fg, bg, align="left", min_size=11))
        y += row_h + mt.gap // 2
    return out


def _clock(t: float) -> str:
    return time.strftime("%H:%M", time.localtime(t))


def _queue(m: UiModel, mt: T.Metrics, r: Rect, tr: Tr) -> list[Widget]:
    now = m.clock.time()
    items = m.desk.queue(now) if m.desk is not None else []
    if not items:
        return [Label(r, None, tr("staff.queue.empty"), mt.title_px, T.MUTED)]
    rows = [
        (
            tr(
                "staff.queue.row",
                ticket=q.ticket,
                time=_clock(q.at),
                wait=max(0, int((now - q.at) // 60)),
                channel=tr(f"staff.channel.{q.channel}"),
            ),
            False,
        )
        for q in items
    ]
    return _rows(r, rows, mt, mt.small_px * 3 // 2 + 8)


def _alerts(m: UiModel, mt: T.Metrics, r: Rect, tr: Tr) -> list[Widget]:
    items = m.desk.alerts() if m.desk is not None else []
    if not items:
        return [Label(r, None, tr("staff.alerts.none"), mt.title_px, T.MUTED)]
    out: list[Widget] = []
    row_h = mt.touch * 3 // 2 if mt.portrait else mt.touch  # a narrow panel needs more lines per alert
    n = max(1, (r.h + mt.gap) // (row_h + mt.gap))
    for a, y in zip(items[:n], range(r.y, r.y + r.h, row_h + mt.gap), strict=False):
        row = Rect(r.x, y, r.w, row_h)
        text_r, btn = row.cols([4, 1.4], mt.gap)
        key = f"staff.alert.{a.kind}"
        params = dict(a.detail)
        if "format" in params:
            fmt = f"staff.format.{params['format']}"
            params["format"] = tr(fmt) if i18n.has(m.lang, fmt) else params["format"]
        text = tr(key, **params) if i18n.has(m.lang, key) else tr("staff.alert.other", kind=a.kind)
        out.append(Box(text_r, None, T.DANGER, 6))
        out.append(
            Label(
                text_r.inset(4),
                None,
                f"{_clock(a.at)}  {text}",
                mt.small_px,
                T.WHITE,
                T.DANGER,
                align="left",
                min_size=11,
            )
        )
        out.append(Button(btn, f"ack:{a.id}", tr("staff.ack"), "neutral", mt.body_px))
    return out


def _health(m: UiModel, mt: T.Metrics, r: Rect, tr: Tr) -> list[Widget]:
    items = m.desk.health() if m.desk is not None else []
    rows = []
    for h in items:
        value = tr(h.value[0], **h.value[1]) if isinstance(h.value, tuple) else str(h.value)
        rows.append((f"{tr('staff.health.' + h.name)}: {value}", h.ok is False))
    if mt.portrait:
        return _rows(
            r, rows, mt, min(mt.small_px * 3, (r.h - mt.gap // 2 * (len(rows) - 1)) // max(1, len(rows)))
        )
    left, right = r.cols([1, 1], mt.gap)
    half = (len(rows) + 1) // 2
    row_h = (r.h - (mt.gap // 2) * (half - 1)) // max(1, half)  # room for a second line
    return _rows(left, rows[:half], mt, row_h) + _rows(right, rows[half:], mt, row_h)


def _parked(m: UiModel, mt: T.Metrics, r: Rect, tr: Tr) -> list[Widget]:
    items = m.desk.parked() if m.desk is not None else []
    btn, r = r.take_bottom(mt.touch, mt.gap)
    out: list[Widget] = []
    if not items:
        out.append(Label(r, None, tr("staff.parked.none"), mt.title_px, T.MUTED))
    else:
        rows = [
            (
                tr("staff.parked.row", entry=p.entry_hash.hex()[:12], reason=p.reason, attempts=p.attempts),
                True,
            )
            for p in items
        ]
        out += _rows(r, rows, mt, mt.small_px * 3 // 2 + 8)
    bw = max(mt.touch * 3, btn.w // 3)
    out.append(
        Button(
            Rect(btn.x + btn.w - bw, btn.y, bw, btn.h),
            "parked:retry",
            tr("staff.retry"),
            "primary",
            mt.body_px,
        )
    )
    return out


def _override(m: UiModel, mt: T.Metrics, r: Rect, tr: Tr) -> list[Widget]:
    st = m.staff
    assert st is not None
    title, r = r.take_top(mt.body_px * 3 // 2, mt.gap)
    out: list[Widget] = []
    if st.message:
        out += message(title, tr(st.message[0], **st.message[1]), mt, mt.body_px, warn=True)
    else:
        out.append(
            Label(
                title,
                None,
                tr("staff.override.title") + " · " + tr("staff.override.pick"),
                mt.body_px,
                bold=True,
                align="left",
            )
        )
    cells = []
    n_cols = 1 if mt.portrait else 2
    n_rows = -(-(len(OVERRIDE_REASONS) + 1) // n_cols)
    for row in r.rows([1] * n_rows, mt.gap):
        cells += row.cols([1] * n_cols, mt.gap)
    for cell, reason in zip(cells, OVERRIDE_REASONS, strict=False):
        out.append(
            Button(
                cell,
                f"reason:{reason}",
                tr(f"staff.override.reason.{reason}"),
                "selected" if st.reason == reason else "neutral",
                mt.small_px,
                selected=st.reason == reason,
            )
        )
    out.append(
        Button(
            cells[len(OVERRIDE_REASONS)], "override:confirm", tr("staff.override.confirm"), "sign", mt.body_px
        )
    )
    return out


_STAFF_TABS = {
    "queue": _queue,
    "alerts": _alerts,
    "health": _health,
    "parked": _parked,
    "override": _override,
}
