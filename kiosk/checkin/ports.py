"""The engine's ports: small interfaces the check-in state machine talks through.

The engine imports none of pygame, dlib, cv2, pyserial or paho: each port has a real
adapter beside the part it adapts (`kiosk.hardware.nfc.adapter`, `kiosk.vision.adapters`,
`kiosk.net.sink`, the UI in `kiosk.ui`), wired by `kiosk.app.runtime`, and fakes in the tests. Ports raise only
`kiosk.errors.KioskError` subclasses (HardwareError for a failed device), so the engine can
tell staff and go on with what still works.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from kiosk.checkin.events import Event, UiInput
from kiosk.errors import Verdict
from kiosk.protocol.presentation import Presentation


class Clock(Protocol):
    """Time for the engine: monotonic for timeouts, wall time for records and passes."""

    def monotonic(self) -> float: ...
    def monotonic_ns(self) -> int: ...
    def time(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


@runtime_checkable
class ConsentSigner(Protocol):
    """The phone's second tap: a patient-key signature over the consent statement."""

    def sign_consent(self, pass_bytes: bytes, body_hash: bytes, timeout_s: float) -> tuple[bytes, bytes] | None:
        """Wait up to `timeout_s` for the same phone; return (statement, signature) or None."""
        ...


@dataclass(frozen=True)
class Credential:
    """What a credential source read: the presentation and how it came.

    channel: "nfc" or "qr" (the source); `presentation.kind` is "nfc", "qr" or "card".
    nonce: the challenge this kiosk sent (NFC phone), so freshness can check it.
    consent_signer: how to ask this patient's phone for the optional consent signature.
    """

    channel: str
    presentation: Presentation
    nonce: bytes | None = None
    consent_signer: ConsentSigner | None = None


class CredentialSource(Protocol):
    """A channel that delivers credentials: the NFC reader, QR codes seen by the camera."""

    name: str  # "nfc" | "qr"

    def poll(self, timeout_s: float) -> Credential | None:
        """A credential if one arrives within `timeout_s`, else None; HardwareError on failure.

        FormatError for a credential that was read but does not decode (shown as refused).
        """
        ...


@dataclass(frozen=True)
class FaceReading:
    """One frame's verdict from the face pipeline (nothing kept beyond the session).

    present: a face is in view. guidance: a quality message id ("face.come_closer") or None
    when the frame passed the gates. template: the live template (opaque to the engine)
    when the frame passed. t_ns: the frame's monotonic capture time. frame, landmarks,
    faces: the camera frame, the subject's landmarks and the number of faces seen, for the
    liveness step (memory only).
    """

    present: bool
    guidance: str | None = None
    template: Any = None
    t_ns: int = 0
    frame: Any = field(default=None, repr=False)
    landmarks: Any = field(default=None, repr=False)
    faces: int = 0


class FaceSource(Protocol):
    """Camera + face pipeline: the next frame's reading."""

    def read(self, want_template: bool = True) -> FaceReading:
        """Process the next frame (its template only when wanted and the frame passed the
        quality gates); CameraError when the camera fails."""
        ...

    def reset(self) -> None:
        """Forget tracking state between sessions."""
        ...


@dataclass(frozen=True)
class MatchResult:
    """A 1:1 decision. The distance stays in memory: next to an identity it is biometric."""

    match: bool
    distance: float


class FaceMatcher(Protocol):
    """Opens the template sealed in a pass and decides whether live templates belong to it.

    One decision (one attempt of the pass's budget) fuses `frames_per_decision` good frames
    of the same tracked face (kiosk.vision.verify.verify_session).
    """

    frames_per_decision: int

    def enrolled_template(self, sealed: tuple[tuple[bytes, bytes], ...]) -> Any:
        """The enrolled template; VerificationError when no copy opens with our sealing key."""
        ...

    def decide(self, enrolled: Any, lives: Sequence[Any]) -> MatchResult:
        """One attempt's decision over the live templates of one track."""
        ...


class PassChecker(Protocol):
    """Verifies a presentation with the kiosk's issuers, revocation list and clock state."""

    def check(self, credential: Credential) -> Verdict:
        """The verdict; on success `data["pass"]` is the PatientPass."""
        ...


class RecordSink(Protocol):
    """The outbox: all records of one session in one transaction, then wake the publisher."""

    def write_session(self, records: list[tuple[bytes, bytes, dict | None]]) -> None:
        """Store [(leaf, body, presentation map)] atomically; StoreError on failure."""
        ...


class UiPort(Protocol):
    """What the engine needs of a UI (pygame later, HeadlessDriver now)."""

    def emit(self, event: Event) -> None:
        """Show / say this. Must not block for long."""
        ...

    def poll_input(self, timeout_s: float) -> UiInput | None:
        """The patient's next input, if one comes within `timeout_s`."""
        ...

    def show_field(self, color: tuple[int, int, int], region: str) -> int:
        """Fill `region` ("full", "left", "right") with `color` now; return the monotonic ns
        at which it was on screen (liveness aligns frames with it)."""
        ...


@dataclass(frozen=True)
class LivenessResult:
    """status: "not-configured" (turned off in the config; recorded as such), "live",
    "attack", "inconclusive". `detail` is PHI-free (method, counts, scores without identity).
    `templates`: live templates from frames captured during the challenge, so the 1:1 match
    uses the same frames (memory only, never recorded)."""

    status: str
    method: str = "none"
    detail: dict[str, Any] = field(default_factory=dict)
    templates: tuple[Any, ...] = field(default=(), repr=False)

    @property
    def passed(self) -> bool:
        """Whether the session may go on: a live verdict, or no check configured at all."""
        return self.status in ("live", "not-configured")


class LivenessCheck(Protocol):
    """The liveness step: screen light challenges read back by the camera, a head turn.

    `required`: False only for the explicit "none" setting, which every record states."""

    method: str
    required: bool

    def run(self, faces: FaceSource, ui: UiPort, clock: Clock) -> LivenessResult: ...


class NotConfiguredLiveness:
    """Liveness turned off (`engine.liveness = "none"`): no check runs, and every record says so."""

    method = "none"
    required = False

    def run(self, faces: FaceSource, ui: UiPort, clock: Clock) -> LivenessResult:
        return LivenessResult("not-configured", "none")
