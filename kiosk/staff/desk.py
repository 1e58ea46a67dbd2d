"""The front desk's view of the kiosk: queue, alerts, health, parked records, overrides.

Built over the running kiosk (`Desk.from_runtime`) or over fakes in the tests; the UI
model calls it and never reaches into the runtime itself. PIN checks run in a thread of
their own (argon2id takes a noticeable fraction of a second on a Pi).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kiosk.checkin import records
from kiosk.errors import KioskError
from kiosk.staff.store import PinResult, StaffStore, Ticket

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    """A staff alert. `detail` is for the staff screen only (a claimed identity to confirm):
    kept in memory until acknowledged, never logged or written."""

    id: int
    kind: str
    at: float
    detail: dict = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class HealthRow:
    """One line of the health tab: a name (message id suffix), a value, and whether it is fine."""

    name: str
    value: tuple[str, dict] | str
    ok: bool | None


class Desk:
    """Staff-side services. `health_fn`, `parked_fn`, `retry_fn`, `override_sink` may be None."""

    def __init__(
        self,
        store: StaffStore,
        *,
        site: str,
        kiosk: str,
        kiosk_key: Any = None,
        override_sink: Any = None,
        health_fn: Callable[[], list[HealthRow]] | None = None,
        parked_fn: Callable[[], list] | None = None,
        retry_fn: Callable[[], int] | None = None,
        badge_reader: Any = None,
        ticket_prefix: str = "A",
    ) -> None:
        self.store = store
        self.site, self.kiosk, self.kiosk_key = site, kiosk, kiosk_key
        self.override_sink = override_sink
        self._health, self._parked, self._retry = health_fn, parked_fn, retry_fn
        self.badge_reader = badge_reader
        self.ticket_prefix = ticket_prefix
        self._alerts: list[Alert] = []
        self._next_alert = 1
        self._lock = threading.Lock()
        self.overrides: list[bytes] = []  # entry hashes written this run

    # --- alerts (every staff.alert until acknowledged) ---------------------------------------
    def alert(self, kind: str, at: float, detail: dict | None = None) -> None:
        with self._lock:
            self._alerts.append(Alert(self._next_alert, kind, at, dict(detail or {})))
            self._next_alert += 1

    def alerts(self) -> list[Alert]:
        with self._lock:
            return list(self._alerts)

    def ack(self, alert_id: int) -> None:
        with self._lock:
            self._alerts = [a for a in self._alerts if a.id != alert_id]

    # --- queue -------------------------------------------------------------------------------
    def next_ticket(self, channel: str, at: float) -> str:
        return self.store.next_ticket(channel, at, self.ticket_prefix).ticket

    def queue(self, now: float) -> list[Ticket]:
        return self.store.tickets(now)

    # --- health, parked ----------------------------------------------------------------------
    def health(self) -> list[HealthRow]:
        if self._health is None:
            return []
        try:
            return self._health()
        except Exception as e:  # a health probe must never take the staff screen down
            log.warning("health probe failed: %s", e)
            return [HealthRow("outbox", ("staff.health.unknown", {}), None)]

    def parked(self) -> list:
        return self._parked() if self._parked else []

    def retry_parked(self) -> int:
        return self._retry() if self._retry else 0

    # --- sign-in -----------------------------------------------------------------------------
    def verify_async(self, staff_id: str, pin: str, done: Callable[[PinResult], None]) -> threading.Thread:
        """Check the PIN in a thread; `done(result)` is called from that thread."""

        def work() -> None:
            try:
                res = self.store.verify(staff_id, pin)
            except KioskError as e:
                log.error("PIN check failed: %s", e.reason)
                res = PinResult(False, reason="unknown")
            done(res)

        t = threading.Thread(target=work, name="staff-pin", daemon=True)
        t.start()
        return t

    # --- override ----------------------------------------------------------------------------
    def override(self, staff_id: str, reason: str, at: float) -> str | None:
        """Check a patient in at the desk: a kiosk-signed staff-override entry; its ticket."""
        if self.override_sink is None or self.kiosk_key is None:
            return None
        t = self.store.next_ticket("desk", at, self.ticket_prefix)
        rec, eh = records.make_override_record(
            site=self.site,
            kiosk=self.kiosk,
            kiosk_key=self.kiosk_key,
            staff_id=staff_id,
            reason=reason,
            ticket=t.ticket,
            created_ms=int(at * 1000),
        )
        try:
            self.override_sink.write_session([rec])
        except KioskError as e:
            log.error("override not written: %s", e.reason)
            return None
        self.overrides.append(eh)
        log.info("staff override %s by %s: %s", eh.hex()[:12], staff_id, reason)
        return t.ticket

    # --- over a running kiosk ----------------------------------------------------------------
    def attach(
        self, cfg: Any, rt: Any, clock_synced: Callable[[], bool | None], badge_reader: Any = None
    ) -> None:
        """Serve the running kiosk: its key and outbox for overrides, its health, its reader."""
        from kiosk.net.sink import OutboxSink

        self.kiosk_key = rt.engine.kiosk_key
        self.override_sink = OutboxSink(rt.outbox, rt.publisher)
        self._health = lambda: runtime_health(cfg, rt, clock_synced)
        self._parked, self._retry = rt.outbox.parked, rt.outbox.unpark
        self.badge_reader = badge_reader


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{int(seconds)} s"
    if seconds < 7200:
        return f"{int(seconds // 60)} min"
    return f"{seconds / 3600:.1f} h"


def runtime_health(cfg: Any, rt: Any, clock_synced: Callable[[], bool | None]) -> list[HealthRow]:
    """Reader, camera, broker, gateway, outbox, alarms, revocation list, disk, clock."""
    rows: list[HealthRow] = []
    eng = rt.engine
    broken = getattr(eng, "_broken", {})
    names = [s.name for s in eng.sources]
    for name, dev in (("reader", "nfc"), ("camera", "camera")):
        present = (dev in names) if dev == "nfc" else eng.faces is not None
        ok = present and dev not in broken
        rows.append(HealthRow(name, ("staff.health.ok" if ok else "staff.health.failed", {}), ok))
    ph = rt.publisher.health() if rt.publisher is not None else None
    connected = bool(ph and ph.connected)
    rows.append(
        HealthRow(
            "broker", ("staff.health.connected" if connected else "staff.health.offline", {}), connected
        )
    )
    seen = ph.log_size_seen if ph else None
    rows.append(
        HealthRow(
            "gateway",
            f"log size {seen}" if seen is not None else ("staff.health.unknown", {}),
            seen is not None,
        )
    )
    depth = rt.outbox.depth()
    oldest = rt.outbox.oldest_age_s()
    rows.append(
        HealthRow(
            "outbox",
            ("staff.health.waiting", {"depth": depth, "age": _age(oldest or 0)}),
            depth == 0 or (oldest or 0) < 600,
        )
    )
    alarms = rt.outbox.alarms()
    rows.append(HealthRow("alarms", str(len(alarms)) if alarms else ("staff.health.none", {}), not alarms))
    rl = rt.revocations()
    if rl is None:
        rows.append(HealthRow("revocations", ("staff.health.unknown", {}), False))
    else:
        age = time.time() - rl.issued
        rows.append(
            HealthRow("revocations", ("staff.health.age", {"age": _age(age)}), time.time() < rl.next_update)
        )
    try:
        du = shutil.disk_usage(cfg.paths.state_dir)
        free = du.free / du.total
        rows.append(HealthRow("disk", ("staff.health.free", {"free": f"{free:.0%}"}), free > 0.1))
    except OSError:
        rows.append(HealthRow("disk", ("staff.health.unknown", {}), None))
    synced = clock_synced()
    rows.append(
        HealthRow("clock", ("staff.health.synced" if synced else "staff.health.unsynced", {}), bool(synced))
    )
    return rows
