"""Logging set-up. Log records name events and ids, never personal or biometric data."""
from __future__ import annotations

import logging
import os
import sys


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr (journald adds time and unit under systemd)."""
    level = logging.DEBUG if verbose or os.environ.get("KIOSK_DEBUG") else logging.INFO
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("INVOCATION_ID"):  # not under systemd: add our own time
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=level, format=fmt, stream=sys.stderr, force=True)
