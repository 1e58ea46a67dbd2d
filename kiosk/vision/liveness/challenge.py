"""The random challenge: which fields the screen shows, for how long, and which way to turn.

Drawn fresh for every attempt from the OS's random source, so a recording made during another
challenge answers the wrong sequence. The palette avoids saturated red (WCAG 2.3.1: a "red
flash" is a transition to or from a colour whose red share R/(R+G+B) is 0.8 or more) and every
field lasts at least `MIN_FIELD_S`, so the screen changes fewer than three times a second.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

RGB = tuple[int, int, int]

MIN_FIELD_S = 0.34  # < 3 changes per second (WCAG 2.3.1 general flash threshold)
DIM: RGB = (20, 20, 20)      # the baseline: the face lit by the room alone
WHITE: RGB = (255, 255, 255)
# colours with distinct chromaticities, none saturated red
PALETTE: tuple[RGB, ...] = ((40, 90, 255), (40, 255, 90), (0, 230, 255), (255, 230, 0), (230, 60, 255),
                            (255, 170, 40), WHITE)


def red_share(c: RGB) -> float:
    """R / (R + G + B): 0.8 or more is saturated red in WCAG's sense."""
    return c[0] / max(1, sum(c))


@dataclass(frozen=True)
class Field:
    color: RGB
    region: str  # "full" | "left" | "right"
    seconds: float


@dataclass(frozen=True)
class Challenge:
    """A sequence of fields, then a head turn ("turn-left" or "turn-right", the patient's side)."""

    fields: tuple[Field, ...]
    turn: str

    @property
    def seconds(self) -> float:
        return sum(f.seconds for f in self.fields)


def draw(rng: random.Random | None = None, field_s: float = MIN_FIELD_S, colours: int = 3) -> Challenge:
    """A new challenge: the dim baseline, `colours` full colour fields (at least one without
    blue and one without red, so each channel moves), full white, two left and two right half
    white fields, in random order (never the same field twice in a row), and a turn side."""
    rng = rng or random.SystemRandom()
    field_s = max(MIN_FIELD_S, field_s)
    warm = [c for c in PALETTE if c[2] < 100]
    cool = [c for c in PALETTE if c[0] < 100]
    picks = [rng.choice(warm), rng.choice(cool)]
    rest = [c for c in PALETTE if c not in picks and c != WHITE]
    picks += rng.sample(rest, max(0, colours - 2))
    items: list[tuple[RGB, str]] = [(DIM, "full"), (WHITE, "full")] + [(c, "full") for c in picks]
    items += [(WHITE, "left"), (WHITE, "left"), (WHITE, "right"), (WHITE, "right")]
    for _ in range(100):
        rng.shuffle(items)
        if all(items[i] != items[i + 1] for i in range(len(items) - 1)):
            break
    fields = tuple(Field(c, r, field_s) for c, r in items)
    return Challenge(fields, rng.choice(("turn-left", "turn-right")))
