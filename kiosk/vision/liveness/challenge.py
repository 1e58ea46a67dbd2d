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
    """A sequence of fields and a head turn ("turn-left" or "turn-right", the patient's side)
    asked for as field `turn_from` goes on: the turn overlaps the last fields, which are all
    full colour fields (their test is a colour ratio, which a turning head does not upset; the
    half fields need the face still and frontal, so they all come before)."""

    fields: tuple[Field, ...]
    turn: str
    turn_from: int = -1

    @property
    def turn_index(self) -> int:
        return len(self.fields) if self.turn_from < 0 else self.turn_from

    @property
    def seconds(self) -> float:
        return sum(f.seconds for f in self.fields)


def draw(rng: random.Random | None = None, field_s: float = MIN_FIELD_S, colours: int = 3,
         overlap: int = 2) -> Challenge:
    """A new challenge: the dim baseline, full white, one left and one right half white field
    and `colours - overlap` colour fields in random order, then `overlap` more colour fields
    during which the head turn is asked (at least one colour without blue and one without
    red, so each channel moves; never the same field twice in a row), and a turn side."""
    rng = rng or random.SystemRandom()
    field_s = max(MIN_FIELD_S, field_s)
    overlap = max(0, min(overlap, colours))
    warm = [c for c in PALETTE if c[2] < 100]
    cool = [c for c in PALETTE if c[0] < 100]
    first = rng.choice(warm)
    picks = [first, rng.choice([c for c in cool if c != first])]  # two different colours
    rest = [c for c in PALETTE if c not in picks and c != WHITE]
    picks += rng.sample(rest, max(0, colours - 2))
    rng.shuffle(picks)
    still: list[tuple[RGB, str]] = [(DIM, "full"), (WHITE, "full"), (WHITE, "left"), (WHITE, "right")]
    still += [(c, "full") for c in picks[:colours - overlap]]
    turning = [(c, "full") for c in picks[colours - overlap:]]
    for _ in range(100):
        rng.shuffle(still)
        rng.shuffle(turning)
        items = still + turning
        if all(items[i] != items[i + 1] for i in range(len(items) - 1)):
            break
    fields = tuple(Field(c, r, field_s) for c, r in items)
    return Challenge(fields, rng.choice(("turn-left", "turn-right")), len(still) if turning else -1)
