"""The connector interface: one arrival in, one answer out; no PHI in either's text."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Arrival:
    """A check-in to report: the log entry and the patient's EHR identifier."""

    entry_hash: bytes
    ehr_system: str       # identifier system, e.g. the clinic's MRN OID (urn:oid:...)
    ehr_value: str        # the patient's identifier in the EHR (PHI: never logged)
    arrived_ms: int       # the check-in's `created` time
    kiosk: str


@dataclass(frozen=True)
class EhrAnswer:
    """What the EHR said. `status` is one of STATUSES; `detail` names no patient."""

    status: str
    detail: str = ""
    refs: dict[str, str] = field(default_factory=dict)  # e.g. appointment/encounter ids, ack id

    @property
    def retry(self) -> bool:
        return self.status in RETRY


# arrived: done. The others are failures; RETRY ones are tried again with backoff.
STATUSES = ("arrived", "no-mapping", "no-appointment", "conflict", "refused", "unavailable",
            "auth-refused", "error")
RETRY = frozenset({"no-appointment", "conflict", "unavailable", "auth-refused", "error"})


class EhrConnector(Protocol):
    kind: str  # "fhir" | "hl7v2"

    def notify(self, arrival: Arrival) -> EhrAnswer:
        """Tell the EHR; never raises for the EHR's own failures (they are answers)."""
