"""The drawing shell: widgets draw through a PygameCanvas onto a pygame Surface.

`text` fits a string into its box (wrap at spaces, shrink down to a minimum size) and keeps
a `TextRecord` per call: the tests read them to prove, on every screen in every language,
that no text was clipped, no glyph is missing from the font, and every text/background
pair has a WCAG contrast of at least 4.5:1.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygame

from kiosk.ui import theme as T
from kiosk.ui.widgets import Rect

log = logging.getLogger(__name__)

# DejaVu (Debian fonts-dejavu-core) covers Latin-1 and far beyond; pygame's built-in font
# lacks glyphs such as "¿" and "…" (tests/ui/test_glyphs.py shows which)
FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSans.ttf"),
)


def find_font(configured: Path | None = None) -> Path | None:
    """The font file to use: the configured one, else DejaVu Sans, else None (pygame's own)."""
    for p in ((configured,) if configured else ()) + FONT_CANDIDATES:
        if p is not None and p.is_file():
            return p
    return None


def bold_of(path: Path | None) -> Path | None:
    if path is None:
        return None
    b = path.with_name(path.stem + "-Bold" + path.suffix)
    return b if b.is_file() else path


@dataclass(frozen=True)
class TextRecord:
    text: str
    fg: T.RGB
    bg: T.RGB
    rect: Rect
    size: int
    clipped: bool
    missing: str  # characters the font has no glyph for


class FontBook:
    """pygame fonts by (size, bold), loaded once."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.bold_path = bold_of(path)
        self._fonts: dict[tuple[int, bool], pygame.font.Font] = {}
        self._ft: Any = None
        self._known: set[str] = set()  # characters already found to have a glyph

    def get(self, size: int, bold: bool = False) -> pygame.font.Font:
        key = (size, bold)
        f = self._fonts.get(key)
        if f is None:
            p = self.bold_path if bold else self.path
            f = pygame.font.Font(str(p) if p else None, size)
            if p is None and bold:
                f.set_bold(True)
            self._fonts[key] = f
        return f

    def missing_glyphs(self, text: str) -> str:
        """The characters of `text` this font has no glyph for.

        pygame.freetype reports None metrics for a missing glyph (pygame.font's SDL_ttf
        quietly measures the .notdef box instead, so it cannot tell)."""
        import pygame.freetype

        if self._ft is None:
            pygame.freetype.init()
            self._ft = pygame.freetype.Font(str(self.path) if self.path else None, 20)
        chars = sorted({ch for ch in text if not ch.isspace()} - self._known)
        metrics = self._ft.get_metrics("".join(chars))
        self._known |= {ch for ch, m in zip(chars, metrics, strict=True) if m is not None}
        return "".join(ch for ch in sorted(set(text)) if not ch.isspace() and ch not in self._known)


def wrap(font: pygame.font.Font, text: str, width: int) -> list[str] | None:
    """Greedy word wrap; None when a single word is wider than `width`."""
    lines: list[str] = []
    for para in text.split("\n"):
        cur = ""
        for word in para.split(" "):
            cand = word if not cur else cur + " " + word
            if font.size(cand)[0] <= width:
                cur = cand
                continue
            if font.size(word)[0] > width:
                return None
            lines.append(cur)
            cur = word
        lines.append(cur)
    return lines


class PygameCanvas:
    """A Canvas over one pygame Surface; `records` holds what `text` drew since `reset`."""

    def __init__(self, surface: pygame.Surface, fonts: FontBook) -> None:
        self.surface = surface
        self.fonts = fonts
        self.records: list[TextRecord] = []

    def reset(self) -> None:
        self.records = []

    def fill(self, rect: Rect, color: T.RGB, radius: int = 0) -> None:
        pygame.draw.rect(self.surface, color, pygame.Rect(*rect), border_radius=radius)

    def outline(self, rect: Rect, color: T.RGB, width: int = 2, radius: int = 0) -> None:
        pygame.draw.rect(self.surface, color, pygame.Rect(*rect), width, border_radius=radius)

    def line(self, points: list[tuple[int, int]], color: T.RGB, width: int) -> None:
        if len(points) >= 2:
            pygame.draw.lines(self.surface, color, False, points, width)
            for p in (points[0], points[-1]):  # round caps, so strokes look drawn by a finger
                pygame.draw.circle(self.surface, color, p, max(1, width // 2))

    def circle(self, centre: tuple[int, int], r: int, color: T.RGB, width: int = 0) -> None:
        pygame.draw.circle(self.surface, color, centre, r, width)

    def ellipse(self, rect: Rect, color: T.RGB, width: int = 0) -> None:
        pygame.draw.ellipse(self.surface, color, pygame.Rect(*rect), width)

    def image(self, rect: Rect, rgb: Any) -> None:
        """An RGB numpy image (H, W, 3), mirrored and scaled to cover `rect`, centre-cropped."""
        import numpy as np

        arr = np.ascontiguousarray(np.asarray(rgb)[:, ::-1].swapaxes(0, 1))
        img = pygame.surfarray.make_surface(arr)
        iw, ih = img.get_size()
        s = max(rect.w / iw, rect.h / ih)
        img = pygame.transform.smoothscale(img, (max(1, int(iw * s)), max(1, int(ih * s))))
        sx, sy = (img.get_width() - rect.w) // 2, (img.get_height() - rect.h) // 2
        self.surface.blit(img, (rect.x, rect.y), pygame.Rect(sx, sy, rect.w, rect.h))

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
    ) -> None:
        """Draw `text` in `rect` at the largest size ≤ `size` that fits (wrapping at spaces)."""
        if not text:
            return
        size = max(size, min_size)
        chosen: tuple[int, list[str]] | None = None
        # text in several lines (a list) reads best unwrapped: give up a quarter of the size
        # for that before wrapping any line
        paragraphs = text.count("\n") + 1
        floors = (
            ((max(min_size, size * 3 // 4), paragraphs), (min_size, None))
            if paragraphs > 1
            else ((min_size, None),)
        )
        for floor, want in floors:
            s = size
            while s >= floor and chosen is None:
                font = self.fonts.get(s, bold)
                lines = wrap(font, text, rect.w)
                if (
                    lines is not None
                    and len(lines) * font.get_linesize() <= rect.h
                    and (want is None or len(lines) == want)
                ):
                    chosen = (s, lines)
                s = s - max(1, s // 12)
            if chosen is not None:
                break
        clipped = chosen is None
        if chosen is None:
            font = self.fonts.get(min_size, bold)
            lines = wrap(font, text, 10**6) or [text]
            chosen = (min_size, lines)
        s, lines = chosen
        font = self.fonts.get(s, bold)
        # the colour actually behind the text (not what the caller believes), for the record
        sw, sh = self.surface.get_size()
        px, py = min(max(rect.x + 1, 0), sw - 1), min(max(rect.y + 1, 0), sh - 1)
        bg = tuple(self.surface.get_at((px, py)))[:3]  # type: ignore[assignment]
        lh = font.get_linesize()
        total = len(lines) * lh
        y = rect.y + (max(0, (rect.h - total) // 2) if valign == "center" else 0)
        clip = self.surface.get_clip()
        self.surface.set_clip(pygame.Rect(*rect))
        for ln in lines:
            img = font.render(ln, True, fg, bg)
            if align == "left":
                x = rect.x
            elif align == "right":
                x = rect.x + rect.w - img.get_width()
            else:
                x = rect.x + (rect.w - img.get_width()) // 2
            self.surface.blit(img, (x, y))
            y += lh
        self.surface.set_clip(clip)
        self.records.append(TextRecord(text, fg, bg, rect, s, clipped, self.fonts.missing_glyphs(text)))
