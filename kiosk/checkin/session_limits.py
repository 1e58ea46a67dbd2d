"""What bounds a check-in session besides its state deadlines (used by the engine).

`Lifeline`: the service's stop request (SIGTERM) and the systemd watchdog beat. Every loop
in which the engine waits asks `stopping()`, which also beats, so a stop ends a session
within one poll and the watchdog hears from a kiosk that waits in a long state.

`FaceBudget`: failed face comparisons per pass over a sliding window. Each comparison is a
chance for an impostor, so the budget belongs to the pass, not to the tap. Expired entries
are dropped on every call, so the table holds only passes that failed within the window.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kiosk.checkin.ports import Clock


class Lifeline:
    """`stop`: a threading.Event (or None); `heartbeat`: called on every check (or None)."""

    def __init__(self, stop: Any = None, heartbeat: Callable[[], object] | None = None) -> None:
        self.stop, self.heartbeat = stop, heartbeat

    def stopping(self) -> bool:
        """Beat the watchdog; True once a stop was requested."""
        if self.heartbeat is not None:
            self.heartbeat()
        return self.stop is not None and self.stop.is_set()

    def pause(self, clock: Clock, seconds: float, step: float) -> bool:
        """Sleep `seconds` in slices of `step`, beating; False when a stop cut it short."""
        end = clock.monotonic() + seconds
        while not self.stopping():
            left = end - clock.monotonic()
            if left <= 0:
                return True
            clock.sleep(min(step, left))
        return False


class FaceBudget:
    """Failed comparisons per pass id within the last `window_s` seconds (monotonic)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._failures: dict[bytes, list[float]] = {}

    def __len__(self) -> int:
        """How many passes currently hold failures (after the last pruning)."""
        return len(self._failures)

    def failures(self, pass_id: bytes, now: float) -> int:
        """The pass's failed comparisons still inside the window; prunes every pass."""
        for pid, times in list(self._failures.items()):
            recent = [t for t in times if now - t < self.window_s]
            if recent:
                self._failures[pid] = recent
            else:
                del self._failures[pid]
        return len(self._failures.get(pass_id, ()))

    def failed(self, pass_id: bytes, now: float) -> None:
        """Count one failed comparison for the pass."""
        self._failures.setdefault(pass_id, []).append(now)
