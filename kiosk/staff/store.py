"""The kiosk's staff file (SQLite): staff members, their lock-outs, and today's ticket queue.

A staff member is a pseudonymous id (what the ledger names, e.g. "s-0042"), the SHA-256 of
their badge's UID, an argon2id PIN hash, a role and an active flag. The display name stays
in this file on the kiosk and never goes on the wire.

Lock-out: after `free_tries` wrong PINs in a row, each further wrong PIN locks the member
for base × 2^(n − free_tries) seconds, capped; it is stored as a wall-clock time, so a
restart does not lift it. An administrator clears it (`kiosk staff reset`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import CannotCreateError, NoInputError, StoreError, UsageError
from kiosk.staff import pin as P

STAFF_ID_RE = re.compile(r"\A[a-z0-9][a-z0-9-]{0,31}\Z")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS staff (
  staff_id TEXT PRIMARY KEY, name TEXT NOT NULL, badge_hash BLOB NOT NULL UNIQUE,
  pin_hash BLOB NOT NULL, role TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 1,
  failures INTEGER NOT NULL DEFAULT 0, locked_until REAL NOT NULL DEFAULT 0, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tickets (
  day TEXT NOT NULL, number INTEGER NOT NULL, ticket TEXT NOT NULL, at REAL NOT NULL,
  channel TEXT NOT NULL, PRIMARY KEY (day, number));
"""


def badge_hash(uid: bytes) -> bytes:
    return hashlib.sha256(b"kiosk-staff-badge-v1" + uid).digest()


@dataclass(frozen=True)
class StaffMember:
    staff_id: str
    name: str
    role: str
    active: bool
    failures: int
    locked_until: float


@dataclass(frozen=True)
class PinResult:
    ok: bool
    tries_left: int = 0
    locked_s: float = 0.0
    reason: str = ""  # ok | wrong-pin | locked | disabled | unknown


@dataclass(frozen=True)
class Ticket:
    ticket: str
    at: float
    channel: str


@dataclass(frozen=True)
class LockoutPolicy:
    free_tries: int = 3
    base_s: float = 30.0
    max_s: float = 3600.0

    def delay(self, failures: int) -> float:
        """Seconds locked after the `failures`-th wrong PIN in a row (0 while tries are free)."""
        if failures < self.free_tries:
            return 0.0
        return min(self.max_s, self.base_s * 2 ** (failures - self.free_tries))


class StaffStore:
    """The staff file at `path` (created 0600)."""

    def __init__(self, path: Path, policy: LockoutPolicy | None = None, now=time.time) -> None:
        self.path = Path(path)
        self.policy = policy or LockoutPolicy()
        self._now = now
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise StoreError(f"{self.path}: cannot open the staff file ({e})") from None

    def close(self) -> None:
        self._db.close()

    # --- members ---------------------------------------------------------------------------
    def add(
        self,
        staff_id: str,
        name: str,
        badge_uid: bytes,
        pin: str,
        role: str = "staff",
        opslimit: int = P.OPSLIMIT,
        memlimit: int = P.MEMLIMIT,
    ) -> None:
        if not STAFF_ID_RE.match(staff_id):
            raise UsageError("a staff id is 1-32 characters of a-z, 0-9 and '-' (pseudonymous: no names)")
        if role not in ("staff", "admin"):
            raise UsageError("role must be staff or admin")
        if not badge_uid:
            raise UsageError("the badge UID is empty")
        try:
            h = P.hash_pin(pin, opslimit, memlimit)
        except ValueError as e:
            raise UsageError(str(e)) from None
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO staff (staff_id, name, badge_hash, pin_hash, role, created) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (staff_id, name, badge_hash(badge_uid), h, role, self._now()),
                )
            except sqlite3.IntegrityError:
                raise CannotCreateError(f"staff id {staff_id} or this badge is already registered") from None

    def members(self) -> list[StaffMember]:
        rows = self._db.execute(
            "SELECT staff_id, name, role, active, failures, locked_until FROM staff ORDER BY staff_id"
        ).fetchall()
        return [StaffMember(r[0], r[1], r[2], bool(r[3]), r[4], r[5]) for r in rows]

    def get(self, staff_id: str) -> StaffMember | None:
        return next((m for m in self.members() if m.staff_id == staff_id), None)

    def by_badge(self, uid: bytes) -> StaffMember | None:
        r = self._db.execute("SELECT staff_id FROM staff WHERE badge_hash = ?", (badge_hash(uid),)).fetchone()
        return self.get(r[0]) if r else None

    def _set(self, staff_id: str, sql: str, args: tuple) -> None:
        with self._lock:
            n = self._db.execute(f"UPDATE staff SET {sql} WHERE staff_id = ?", (*args, staff_id)).rowcount
        if n == 0:
            raise NoInputError(f"no staff member {staff_id} (kiosk staff list)")

    def disable(self, staff_id: str) -> None:
        self._set(staff_id, "active = 0", ())

    def enable(self, staff_id: str) -> None:
        self._set(staff_id, "active = 1", ())

    def reset(self, staff_id: str, new_pin: str | None = None) -> None:
        """The administrator's reset: the lock-out lifted, optionally a new PIN."""
        if new_pin is not None:
            try:
                h = P.hash_pin(new_pin)
            except ValueError as e:
                raise UsageError(str(e)) from None
            self._set(staff_id, "failures = 0, locked_until = 0, pin_hash = ?", (h,))
        else:
            self._set(staff_id, "failures = 0, locked_until = 0", ())

    # --- sign-in ---------------------------------------------------------------------------
    def verify(self, staff_id: str, pin: str) -> PinResult:
        """Check a PIN (slow: argon2id; call it off the render loop)."""
        r = self._db.execute(
            "SELECT pin_hash, active, failures, locked_until FROM staff WHERE staff_id = ?", (staff_id,)
        ).fetchone()
        if r is None:
            return PinResult(False, reason="unknown")
        pin_hash, active, failures, locked_until = r
        if not active:
            return PinResult(False, reason="disabled")
        now = self._now()
        if locked_until > now:
            return PinResult(False, 0, locked_until - now, "locked")  # refused before any hashing
        if P.verify_pin(pin_hash, pin):
            with self._lock:
                self._db.execute(
                    "UPDATE staff SET failures = 0, locked_until = 0 WHERE staff_id = ?", (staff_id,)
                )
            return PinResult(True, reason="ok")
        failures += 1
        delay = self.policy.delay(failures)
        with self._lock:
            self._db.execute(
                "UPDATE staff SET failures = ?, locked_until = ? WHERE staff_id = ?",
                (failures, now + delay if delay else 0, staff_id),
            )
        if delay:
            return PinResult(False, 0, delay, "locked")
        return PinResult(False, self.policy.free_tries - failures, 0.0, "wrong-pin")

    # --- the day's tickets ------------------------------------------------------------------
    def next_ticket(self, channel: str, at: float, prefix: str = "A") -> Ticket:
        """The next short number of the day ("A-17"), stored with its time and channel."""
        day = dt.date.fromtimestamp(at).isoformat()
        with self._lock:
            (n,) = self._db.execute(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM tickets WHERE day = ?", (day,)
            ).fetchone()
            t = f"{prefix}-{n}"
            self._db.execute("INSERT INTO tickets VALUES (?, ?, ?, ?, ?)", (day, n, t, at, channel))
        return Ticket(t, at, channel)

    def tickets(self, at: float) -> list[Ticket]:
        day = dt.date.fromtimestamp(at).isoformat()
        rows = self._db.execute(
            "SELECT ticket, at, channel FROM tickets WHERE day = ? ORDER BY number DESC", (day,)
        ).fetchall()
        return [Ticket(*r) for r in rows]
