"""Logging set-up. Log records name events and ids, never personal or biometric data."""
from __future__ import annotations

import logging
import os
import sys
from typing import Any


class _CurrentStderr(logging.StreamHandler):
    """Writes to `sys.stderr` as it is when a record is emitted, not as it was at set-up: a
    caller that runs `kiosk` in-process (the tests, anything embedding it) swaps stderr and
    closes the old one, and a handler kept on it would fail on every later record."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr (journald adds time and unit under systemd)."""
    level = logging.DEBUG if verbose or os.environ.get("KIOSK_DEBUG") else logging.INFO
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("INVOCATION_ID"):  # not under systemd: add our own time
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=level, format=fmt, handlers=[_CurrentStderr()], force=True)
