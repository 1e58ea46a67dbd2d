"""The clock-sync gate for QR passes."""
from __future__ import annotations

from kiosk.clock_sync import ClockSyncState


def test_clock_state_refuses_until_synchronised_then_stays():
    answers = iter([False, True, False])
    state = ClockSyncState(probe=lambda: next(answers), recheck_s=0.0)
    assert state() is False
    assert state() is True
    assert state() is True  # once synchronised, not asked again


def test_unknown_clock_state_is_trusted():
    assert ClockSyncState(probe=lambda: None)() is True
