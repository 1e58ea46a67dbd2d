"""systemd's notify protocol (sd_notify(3)) for Type=notify units: READY, WATCHDOG, STOPPING.

One module for both services (kiosk and gateway). Outside systemd every call is a no-op.
"""
from __future__ import annotations

import os
import socket


def sd_notify(state: str) -> bool:
    """Send one datagram if systemd asked for it (NOTIFY_SOCKET); False otherwise."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):  # an abstract socket
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall(state.encode())
        return True
    except OSError:
        return False


def watchdog_period_s() -> float | None:
    """The unit's WatchdogSec in seconds (WATCHDOG_USEC), or None without a watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    try:
        return int(usec) / 1e6 if usec else None
    except ValueError:
        return None
