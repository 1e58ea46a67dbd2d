"""Building blocks the patient and the staff screens share: a message, an information panel."""

from __future__ import annotations

from collections.abc import Callable

from kiosk.ui import theme as T
from kiosk.ui.model import UiModel
from kiosk.ui.widgets import Box, Button, Label, Picto, Rect, Widget

Tr = Callable[..., str]  # a message id (and its parameters) -> the text in the screen's language


def message(
    rect: Rect, text: str, mt: T.Metrics, size: int | None = None, warn: bool = False
) -> list[Widget]:
    bg = T.WARN_BG if warn else T.BG
    out: list[Widget] = [Box(rect, None, bg, 8)] if warn else []
    out.append(Label(rect.inset(6 if warn else 0), None, text, size or mt.body_px, T.INK, bg))
    return out


def info(
    m: UiModel,
    mt: T.Metrics,
    r: Rect,
    tr: Tr,
    picto: str,
    title: str,
    lines: list[str],
    ok_button: bool = False,
) -> list[Widget]:
    """A pictogram, a title, a few lines and (for results) an OK button."""
    out: list[Widget] = []
    if ok_button:
        ok, r = bottom_button(r, mt, "result:ok", tr("staff.ok"), "primary")
        out.append(ok)
    if mt.portrait:
        pic, text = r.rows([2, 3], mt.gap)
    else:
        pic, text = r.cols([1, 2], mt.gap)
    out.append(Picto(pic.inset(mt.gap), None, picto))
    title_r, rest = text.take_top(min(text.h // 2, mt.title_px * 3), mt.gap)
    out.append(Label(title_r, None, title, mt.title_px, bold=True, min_size=mt.body_px // 2 + 6))
    if lines:
        for row, line in zip(rest.rows([1] * len(lines), mt.gap), lines, strict=True):
            out.append(Label(row, None, line, mt.body_px, T.INK, min_size=12))
    return out


def bottom_button(r: Rect, mt: T.Metrics, action: str, label: str, style: str) -> tuple[Button, Rect]:
    """A button centred along the bottom of `r` (a third of its width, at least three touch
    targets wide), and the rest of `r` above it."""
    btn, rest = r.take_bottom(mt.touch, mt.gap)
    bw = max(mt.touch * 3, btn.w // 3)
    return Button(Rect(btn.x + (btn.w - bw) // 2, btn.y, bw, btn.h), action, label, style, mt.body_px), rest
