"""A small widget set: button, auto-fitting label, keypad, signature pad, modal, pictograms.

Layout (rectangles, hit testing, what a touch means) is plain Python; `draw` takes a
`Canvas` (kiosk.ui.canvas), the only place that touches pygame. Every text is drawn through
`Canvas.text`, which fits it into its box and records (text, colours, clipped, missing glyphs)
so the tests can check contrast and clipping on every screen.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from kiosk.ui import theme as T


class Rect(NamedTuple):
    x: int
    y: int
    w: int
    h: int

    def contains(self, pos: tuple[int, int]) -> bool:
        return self.x <= pos[0] < self.x + self.w and self.y <= pos[1] < self.y + self.h

    def inset(self, d: int) -> Rect:
        return Rect(self.x + d, self.y + d, max(0, self.w - 2 * d), max(0, self.h - 2 * d))

    def rows(self, weights: list[float], gap: int = 0) -> list[Rect]:
        """Split top to bottom in proportion to `weights`."""
        free = self.h - gap * (len(weights) - 1)
        out, y = [], self.y
        for i, wt in enumerate(weights):
            h = round(free * wt / sum(weights)) if i < len(weights) - 1 else self.y + self.h - y
            out.append(Rect(self.x, y, self.w, h))
            y += h + gap
        return out

    def cols(self, weights: list[float], gap: int = 0) -> list[Rect]:
        """Split left to right in proportion to `weights`."""
        free = self.w - gap * (len(weights) - 1)
        out, x = [], self.x
        for i, wt in enumerate(weights):
            w = round(free * wt / sum(weights)) if i < len(weights) - 1 else self.x + self.w - x
            out.append(Rect(x, self.y, w, self.h))
            x += w + gap
        return out

    def take_top(self, h: int, gap: int = 0) -> tuple[Rect, Rect]:
        return Rect(self.x, self.y, self.w, h), Rect(self.x, self.y + h + gap, self.w, self.h - h - gap)

    def take_bottom(self, h: int, gap: int = 0) -> tuple[Rect, Rect]:
        return (Rect(self.x, self.y + self.h - h, self.w, h), Rect(self.x, self.y, self.w, self.h - h - gap))


class Canvas(Protocol):
    """What widgets draw on (kiosk.ui.canvas.PygameCanvas)."""

    def fill(self, rect: Rect, color: T.RGB, radius: int = 0) -> None: ...
    def outline(self, rect: Rect, color: T.RGB, width: int = 2, radius: int = 0) -> None: ...
    def line(self, points: list[tuple[int, int]], color: T.RGB, width: int) -> None: ...
    def circle(self, centre: tuple[int, int], r: int, color: T.RGB, width: int = 0) -> None: ...
    def ellipse(self, rect: Rect, color: T.RGB, width: int = 0) -> None: ...
    def image(self, rect: Rect, rgb: Any) -> None: ...
    def text(
        self,
        rect: Rect,
        text: str,
        size: int,
        fg: T.RGB,
        bg: T.RGB,
        *,
        align: str = "center",
        bold: bool = False,
        min_size: int = 12,
        valign: str = "center",
    ) -> None: ...


@dataclass
class Widget(ABC):
    """Something on a screen: where it is, what a touch on it means, how it draws itself."""

    rect: Rect
    action: str | None = None

    @abstractmethod
    def draw(self, c: Canvas) -> None:
        """Draw onto `c` (the only contact with pygame is through the canvas)."""

    @property
    def touchable(self) -> bool:
        return self.action is not None


@dataclass
class Box(Widget):
    color: T.RGB = T.PANEL
    radius: int = 8

    def draw(self, c: Canvas) -> None:
        c.fill(self.rect, self.color, self.radius)


@dataclass
class Label(Widget):
    """Text that shrinks (down to `min_size`) and wraps to fit its box."""

    text: str = ""
    size: int = 24
    fg: T.RGB = T.INK
    bg: T.RGB = T.BG
    align: str = "center"
    bold: bool = False
    min_size: int = 14
    valign: str = "center"

    def draw(self, c: Canvas) -> None:
        c.text(
            self.rect,
            self.text,
            self.size,
            self.fg,
            self.bg,
            align=self.align,
            bold=self.bold,
            min_size=self.min_size,
            valign=self.valign,
        )


_STYLES: dict[str, tuple[T.RGB, T.RGB]] = {
    "primary": (T.PRIMARY, T.WHITE),
    "sign": (T.SIGN, T.WHITE),
    "danger": (T.DANGER, T.WHITE),
    "neutral": (T.NEUTRAL, T.INK),
    "selected": (T.PRIMARY, T.WHITE),
}


@dataclass
class Button(Widget):
    text: str = ""
    style: str = "primary"
    size: int = 24
    selected: bool = False

    def draw(self, c: Canvas) -> None:
        bg, fg = _STYLES[self.style]
        radius = min(self.rect.h // 4, 16)
        c.fill(self.rect, bg, radius)
        if self.selected or self.style == "neutral":
            c.outline(self.rect, T.FOCUS if self.selected else T.MUTED, 3 if self.selected else 2, radius)
        pad = max(6, self.rect.h // 8)
        c.text(self.rect.inset(pad), self.text, self.size, fg, bg, bold=True, min_size=12)


def keypad(rect: Rect, gap: int, size: int, ok_text: str, del_text: str) -> list[Widget]:
    """A 4×3 PIN keypad: 1–9, delete, 0, OK; actions "key:<digit>", "key:del", "key:ok"."""
    out: list[Widget] = []
    labels = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "del", "0", "ok"]
    for r, row in enumerate(rect.rows([1, 1, 1, 1], gap)):
        for k, cell in enumerate(row.cols([1, 1, 1], gap)):
            key = labels[r * 3 + k]
            text = {"del": del_text, "ok": ok_text}.get(key, key)
            style = "sign" if key == "ok" else "neutral" if key == "del" else "primary"
            out.append(Button(cell, f"key:{key}", text, style, size))
    return out


@dataclass
class SignaturePad(Widget):
    """The finger signature box. Strokes are [[x, y, t_ms], ...] in screen pixels."""

    strokes: list[list[list[int]]] = field(default_factory=list)
    hint: str = ""
    hint_size: int = 20

    def draw(self, c: Canvas) -> None:
        c.fill(self.rect, T.PAD_BG, 8)
        c.outline(self.rect, T.MUTED, 2, 8)
        base = self.rect.y + self.rect.h * 3 // 4
        c.line([(self.rect.x + 20, base), (self.rect.x + self.rect.w - 20, base)], T.MUTED, 2)
        if not self.strokes and self.hint:
            c.text(
                Rect(self.rect.x + 8, self.rect.y + 8, self.rect.w - 16, base - self.rect.y - 12),
                self.hint,
                self.hint_size,
                T.MUTED,
                T.PAD_BG,
                min_size=12,
            )
        for s in self.strokes:
            pts = [(p[0], p[1]) for p in s]
            if len(pts) == 1:
                c.circle(pts[0], 2, T.PAD_INK)
            elif pts:
                c.line(pts, T.PAD_INK, 4)


@dataclass
class Modal(Widget):
    """A dialog over the screen: a panel, a title, a body, and its own buttons (children)."""

    title: str = ""
    body: str = ""
    title_size: int = 28
    body_size: int = 20
    buttons: list[Widget] = field(default_factory=list)
    body_align: str = "center"

    def draw(self, c: Canvas) -> None:
        c.fill(self.rect, T.WHITE, 12)
        c.outline(self.rect, T.INK, 3, 12)
        inner = self.rect.inset(max(10, self.rect.w // 40))
        btn_h = max((b.rect.h for b in self.buttons), default=0)
        title_h = self.title_size * 2 if self.title else 0
        title_r, rest = inner.take_top(title_h)
        body_r = Rect(rest.x, rest.y, rest.w, rest.h - btn_h - 10)
        if self.title:
            c.text(title_r, self.title, self.title_size, T.INK, T.WHITE, bold=True)
        if self.body:
            c.text(
                body_r,
                self.body,
                self.body_size,
                T.INK,
                T.WHITE,
                align=self.body_align,
                valign="top" if self.body_align == "left" else "center",
                min_size=12,
            )
        for b in self.buttons:
            b.draw(c)


@dataclass
class Picto(Widget):
    """Large pictograms drawn from primitives: phone-nfc, qr, face, seat, desk, check, warn."""

    kind: str = "check"

    def draw(self, c: Canvas) -> None:
        r = self.rect
        s = min(r.w, r.h)
        cx, cy = r.x + r.w // 2, r.y + r.h // 2
        k = self.kind
        if k == "phone-nfc":
            ph = Rect(cx - s // 5, cy - s * 2 // 5, s * 2 // 5, s * 4 // 5)
            c.fill(ph, T.INK, s // 14)
            c.fill(ph.inset(max(3, s // 30)), T.PANEL, s // 20)
            for i in range(1, 4):
                arc = Rect(ph.x + ph.w + s // 40, cy - i * s // 12, i * s // 10, 2 * i * s // 12)
                c.ellipse(arc, T.PRIMARY, max(3, s // 40))
        elif k == "qr":
            q = Rect(cx - s * 2 // 5, cy - s * 2 // 5, s * 4 // 5, s * 4 // 5)
            c.fill(q, T.WHITE, 4)
            c.outline(q, T.INK, 3, 4)
            cell = q.w // 9
            pattern = [
                "111101111",
                "101100101",
                "111010111",
                "000101000",
                "110111011",
                "001010100",
                "111100101",
                "101011110",
                "111101011",
            ]
            for yy, row in enumerate(pattern):
                for xx, bit in enumerate(row):
                    if bit == "1":
                        c.fill(
                            Rect(
                                q.x + cell // 2 + xx * cell * 8 // 9,
                                q.y + cell // 2 + yy * cell * 8 // 9,
                                cell * 8 // 9,
                                cell * 8 // 9,
                            ),
                            T.INK,
                        )
        elif k == "face":
            c.ellipse(Rect(cx - s // 3, cy - s * 2 // 5, s * 2 // 3, s * 4 // 5), T.PRIMARY, max(4, s // 25))
            c.circle((cx - s // 8, cy - s // 10), max(3, s // 22), T.INK)
            c.circle((cx + s // 8, cy - s // 10), max(3, s // 22), T.INK)
            c.line(
                [(cx - s // 8, cy + s // 6), (cx, cy + s // 5), (cx + s // 8, cy + s // 6)],
                T.INK,
                max(3, s // 30),
            )
        elif k == "seat":
            w = max(4, s // 14)
            c.line([(cx - s // 4, cy - s // 3), (cx - s // 4, cy + s // 3)], T.SIGN, w)
            c.line([(cx - s // 4, cy + s // 20), (cx + s // 4, cy + s // 20)], T.SIGN, w)
            c.line([(cx + s // 4, cy + s // 20), (cx + s // 4, cy + s // 3)], T.SIGN, w)
        elif k == "check":
            w = max(5, s // 10)
            c.circle((cx, cy), s * 2 // 5, T.SIGN, w // 2)
            c.line([(cx - s // 5, cy), (cx - s // 20, cy + s // 7), (cx + s // 5, cy - s // 7)], T.SIGN, w)
        elif k in ("warn", "desk"):
            w = max(4, s // 16)
            col = T.DANGER if k == "warn" else T.PRIMARY
            pts = [
                (cx, cy - s * 2 // 5),
                (cx + s * 2 // 5, cy + s // 3),
                (cx - s * 2 // 5, cy + s // 3),
                (cx, cy - s * 2 // 5),
            ]
            if k == "desk":
                c.circle((cx, cy - s // 5), s // 7, col, w)
                pts = [
                    (cx - s // 3, cy + s // 3),
                    (cx - s // 4, cy + s // 20),
                    (cx + s // 4, cy + s // 20),
                    (cx + s // 3, cy + s // 3),
                ]
                c.line(pts, col, w)
                c.line([(cx - s * 2 // 5, cy + s // 3), (cx + s * 2 // 5, cy + s // 3)], T.INK, w)
            else:
                c.line(pts, col, w)
                c.line([(cx, cy - s // 8), (cx, cy + s // 8)], col, w)
                c.circle((cx, cy + s // 4), max(3, w // 2 + 1), col)


@dataclass
class Preview(Widget):
    """The live camera picture (mirrored, like a mirror) with an oval showing where the face goes."""

    frame: Any = None

    def draw(self, c: Canvas) -> None:
        c.fill(self.rect, T.INK, 8)
        if self.frame is not None:
            c.image(self.rect, self.frame)
        r = self.rect
        oval = Rect(r.x + r.w // 4, r.y + r.h // 10, r.w // 2, r.h * 8 // 10)
        c.ellipse(oval, T.FOCUS, 4)


@dataclass
class QrCode(Widget):
    """A QR code (segno) drawn as dark modules on white, with its quiet zone, filling the square."""

    text: str = ""

    def draw(self, c: Canvas) -> None:
        import segno

        matrix = segno.make(self.text, error="m", micro=False).matrix
        n = len(matrix) + 8  # 4 modules of quiet zone each side
        cell = max(1, min(self.rect.w, self.rect.h) // n)
        c.fill(Rect(self.rect.x, self.rect.y, cell * n, cell * n), T.WHITE)
        for y, row in enumerate(matrix):
            for x, bit in enumerate(row):
                if bit:
                    c.fill(
                        Rect(self.rect.x + (x + 4) * cell, self.rect.y + (y + 4) * cell, cell, cell), T.INK
                    )


@dataclass
class Field(Widget):
    """A liveness light field: a flat colour, nothing else (the camera reads it back)."""

    color: T.RGB = T.WHITE

    def draw(self, c: Canvas) -> None:
        c.fill(self.rect, self.color)


def flatten(widgets: list[Widget]) -> list[Widget]:
    """Widgets and their children (a modal's buttons), in draw order."""
    out: list[Widget] = []
    for w in widgets:
        out.append(w)
        if isinstance(w, Modal):
            out.extend(w.buttons)
    return out


def hit(widgets: list[Widget], pos: tuple[int, int]) -> Widget | None:
    """The topmost touchable widget under `pos`; a modal swallows touches outside its buttons."""
    modal = next((w for w in reversed(widgets) if isinstance(w, Modal)), None)
    pool = modal.buttons if modal is not None else widgets
    for w in reversed(pool):
        if w.touchable and w.rect.contains(pos):
            return w
    return None
