"""PIN hashing: argon2id (PyNaCl / libsodium), tuned for a Raspberry Pi.

opslimit 3, memlimit 64 MiB: 0.13 s per verification on the x86-64 build machine, about
0.5 s measured-by-ratio on a Pi 4 — short enough for a person at the desk, and run in a
thread so the screen never stalls. libsodium's MODERATE (256 MiB) takes 4× longer and
would hold a quarter of a 1 GB Pi's memory next to the camera and dlib. A PIN has few
digits, so the hash only slows an offline guesser who stole the staff file; what stops
online guessing is the badge plus the lock-out (kiosk.staff.store).
"""

from __future__ import annotations

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id

OPSLIMIT = 3
MEMLIMIT = 64 * 1024 * 1024
PIN_MIN, PIN_MAX = 4, 8


def check_pin_syntax(pin: str) -> None:
    """ValueError unless `pin` is 4–8 digits."""
    if not (pin.isdigit() and PIN_MIN <= len(pin) <= PIN_MAX and pin.isascii()):
        raise ValueError(f"a PIN is {PIN_MIN} to {PIN_MAX} digits")


def hash_pin(pin: str, opslimit: int = OPSLIMIT, memlimit: int = MEMLIMIT) -> bytes:
    """The argon2id string (salt and parameters inside) for `pin`."""
    check_pin_syntax(pin)
    return argon2id.str(pin.encode("ascii"), opslimit=opslimit, memlimit=memlimit)


def verify_pin(stored: bytes, pin: str) -> bool:
    """True when `pin` matches the stored argon2id string."""
    try:
        return argon2id.verify(stored, pin.encode("ascii", "replace"))
    except nacl.exceptions.InvalidkeyError:
        return False
