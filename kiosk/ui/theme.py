"""Colours and sizes: WCAG 2.x contrast and touch targets computed from the panel's DPI."""

from __future__ import annotations

import math
from dataclasses import dataclass

RGB = tuple[int, int, int]

# every text colour sits on a background it was checked against (tests/ui/test_contrast.py)
BG = (250, 250, 247)
INK = (20, 24, 28)
MUTED = (70, 76, 84)  # secondary text on BG: 9:1
PRIMARY = (11, 83, 158)  # buttons with white text: 7.6:1
SIGN = (22, 101, 52)  # the distinct "Sign" action: 7.1:1
DANGER = (153, 27, 27)  # alerts: 8.3:1 with white
NEUTRAL = (226, 230, 235)  # secondary buttons with INK text
WHITE = (255, 255, 255)
PANEL = (236, 240, 245)  # cards/rows on BG, INK text
WARN_BG = (255, 243, 205)  # warning banners, INK text
PAD_BG = WHITE  # the signature pad
PAD_INK = (10, 30, 90)
FOCUS = (245, 158, 11)  # outlines only, never behind text

MIN_CONTRAST = 4.5  # WCAG 2.1 SC 1.4.3 (AA) for normal text


def _channel(c: int) -> float:
    s = c / 255.0
    return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4


def luminance(rgb: RGB) -> float:
    """WCAG relative luminance (sRGB)."""
    r, g, b = (_channel(x) for x in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: RGB, b: RGB) -> float:
    """WCAG contrast ratio, 1..21."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


# panels the kiosk ships with: native size → dots per inch
# the official 7" Touch Display (800×480, 154 mm × 86 mm active area) and Touch Display 2 (7", 720×1280)
PANEL_DPI = {(800, 480): 133.0, (720, 1280): 210.0}
DEFAULT_DPI = 133.0
TOUCH_MM = 12.0


def px_for_mm(mm: float, dpi: float) -> int:
    return math.ceil(mm / 25.4 * dpi)


@dataclass(frozen=True)
class Metrics:
    """Sizes for one screen: touch target minimum, margins, font sizes (px)."""

    width: int
    height: int
    dpi: float

    @classmethod
    def for_size(cls, size: tuple[int, int], dpi: float | None = None) -> Metrics:
        return cls(size[0], size[1], dpi or PANEL_DPI.get(size, DEFAULT_DPI))

    @property
    def portrait(self) -> bool:
        return self.height > self.width

    @property
    def touch(self) -> int:
        """The smallest side of any touch target: 12 mm at this panel's DPI."""
        return px_for_mm(TOUCH_MM, self.dpi)

    @property
    def margin(self) -> int:
        return max(8, px_for_mm(3.0, self.dpi))

    @property
    def gap(self) -> int:
        return max(6, px_for_mm(2.0, self.dpi))

    def font(self, mm: float) -> int:
        """A font size whose cap height is about `mm` on this panel (cap height ≈ 0.7 em)."""
        return max(12, round(px_for_mm(mm, self.dpi) / 0.7))

    @property
    def title_px(self) -> int:
        return self.font(6.0)

    @property
    def body_px(self) -> int:
        return self.font(3.6)

    @property
    def small_px(self) -> int:
        return self.font(2.8)
