"""Exact binomial intervals (Clopper–Pearson) and the Rate every figure is reported as."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def _betacf(a: float, b: float, x: float) -> float:
    # continued fraction of the incomplete beta function (modified Lentz)
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-13:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln) * _betacf(a, b, x) / a
    return 1.0 - math.exp(ln) * _betacf(b, a, 1.0 - x) / b


def _beta_ppf(q: float, a: float, b: float) -> float:
    lo, hi = 0.0, 1.0
    for _ in range(200):  # bisection: slow but sure, and these are a handful of calls
        mid = (lo + hi) / 2
        if betainc(a, b, mid) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-15:
            break
    return (lo + hi) / 2


def clopper_pearson(x: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper–Pearson) two-sided interval of a binomial rate x/n."""
    if n <= 0:
        return math.nan, math.nan
    if not 0 <= x <= n:
        raise ValueError("need 0 <= x <= n")
    alpha = 1.0 - confidence
    lo = 0.0 if x == 0 else _beta_ppf(alpha / 2, x, n - x + 1)
    hi = 1.0 if x == n else _beta_ppf(1 - alpha / 2, x + 1, n - x)
    return lo, hi


@dataclass(frozen=True)
class Rate:
    """x events in n trials, with the Clopper–Pearson 95 % interval."""

    x: int
    n: int

    @property
    def rate(self) -> float:
        return self.x / self.n if self.n else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        return clopper_pearson(self.x, self.n)

    def as_dict(self) -> dict[str, Any]:
        lo, hi = self.interval
        return {"x": self.x, "n": self.n, "rate": self.rate, "ci95": [lo, hi]}

    def __str__(self) -> str:
        if not self.n:
            return "n/a (0 trials)"
        lo, hi = self.interval
        return f"{100 * self.rate:.3f} % ({self.x:,}/{self.n:,}; 95 % CI {100 * lo:.3f}–{100 * hi:.3f} %)"
