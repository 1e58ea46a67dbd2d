"""Whether the system clock is synchronised. A Pi has no real-time clock: until NTP has set
it, QR time-window presentations are refused (docs/design-notes.md)."""
from __future__ import annotations

import subprocess
import time


def clock_synced() -> bool | None:
    """Whether the system clock is NTP-synchronised (None when it cannot be told)."""
    try:
        out = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                             capture_output=True, text=True, timeout=5)
        if out.returncode == 0 and out.stdout.strip() in ("yes", "no"):
            return out.stdout.strip() == "yes"
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:  # adjtimex via the kernel: STA_UNSYNC clear means synchronised
        import ctypes

        class Timex(ctypes.Structure):
            _fields_ = [("modes", ctypes.c_uint), ("pad", ctypes.c_long * 40)]
        libc = ctypes.CDLL(None, use_errno=True)
        t = Timex()
        state = libc.adjtimex(ctypes.byref(t))
        return state != 5 if state >= 0 else None  # 5 = TIME_ERROR (unsynchronised)
    except Exception:
        return None


class ClockSyncState:
    """`clock_synced()` asked at most once a minute; once synchronised it stays so.

    Where the state cannot be told (no timedatectl, a container) the clock is trusted:
    `kiosk doctor` shows that as a warning for IT.
    """

    def __init__(self, probe=clock_synced, recheck_s: float = 60.0) -> None:
        self._probe, self._recheck_s = probe, recheck_s
        self._synced: bool | None = None
        self._checked = float("-inf")

    def __call__(self) -> bool:
        if self._synced is not True and time.monotonic() - self._checked > self._recheck_s:
            self._synced = self._probe()
            self._checked = time.monotonic()
        return self._synced is not False
