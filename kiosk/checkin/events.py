"""Engine events and UI inputs: message ids and parameters, never English text (docs/design-notes.md).

The UI translates a message id into words, speech and pictures in the patient's language;
the engine never composes a sentence. Every event carries a monotonic timestamp in ns so a
UI (and, later, liveness) can line events up with camera frames.

Parameters hold no personal data: reasons, counts, channels, document ids, hashes of texts
shown, and entry-hash prefixes. Never a patient id, a name, a distance or a template.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# --- what the engine says (message ids) -------------------------------------------------
STATE = "engine.state"                      # {state}: for UIs that draw per state
TAP_OR_SHOW_QR = "checkin.tap_or_show_qr"   # {channels: [...]} the attract screen
READING = "checkin.reading"                 # {channel}: a credential arrived, hold on
CHECKING_PASS = "checkin.checking_pass"
PASS_REFUSED = "checkin.pass_refused"       # {reason}: a Reason value
SEE_FRONT_DESK = "checkin.see_front_desk"   # {reason}: the automatic path cannot help
WALKED_AWAY = "checkin.walked_away"
SAVING = "checkin.saving"
DONE = "checkin.done"                       # {entries: [hex prefixes], consent: permit|deny}
CONSENT_RECEIPT = "checkin.receipt"         # {entry, link}: the verified consent receipt for the wallet
RECORD_FAILED = "checkin.record_failed"
OUT_OF_SERVICE = "checkin.out_of_service"   # neither credential channel works

FACE_START = "face.look_at_camera"          # start of capture (same id the quality gate uses)
FACE_NOBODY = "face.nobody"                 # nobody came in front of the camera in time
FACE_RETRY = "face.retry"                   # {attempt, max}
FACE_MISMATCH = "face.mismatch"
FACE_MATCHED = "face.matched"
# guidance ids from the quality gate (kiosk.vision.quality) are passed through unchanged:
# face.none, face.too_many, face.come_closer, face.look_at_camera, face.more_light,
# face.too_bright, face.hold_still

LIVENESS_START = "liveness.start"         # {method}: "hold still, the screen will flash colours"
LIVENESS_TURN = "liveness.turn"           # {direction}: "turn-left" | "turn-right" (the patient's side)
LIVENESS_RETRY = "liveness.retry"         # {attempt, max}: once more, holding still, then turn
LIVENESS_NOT_CONFIGURED = "liveness.not_configured"
LIVENESS_FAILED = "liveness.failed"

CONSENT_SHOW = "consent.show"               # {document_id, version, language, text_sha256}
CONSENT_SIGN_PLEASE = "consent.sign_please"  # "accept" needs a finger signature first
CONSENT_TAP_TO_SIGN = "consent.tap_to_sign"  # {timeout_s}: optional second tap
CONSENT_PATIENT_SIGNED = "consent.patient_signed"
CONSENT_PATIENT_SIG_SKIPPED = "consent.patient_sig_skipped"  # {reason}

STAFF_ALERT = "staff.alert"                 # {kind}: nfc-failure, camera-failure, ...
# a verified credential of another issuer (EU DCC, SMART Health Card): identity claimed, not
# bound to a face template, so staff confirm it (override entry). {format, issuer, key_id,
# content, issued_at, expires_at, claimed}: the one event with personal data, `claimed` a
# ClaimedIdentity whose repr withholds it; only the staff screen reads its fields
STAFF_CONFIRM_IDENTITY = "staff.confirm_identity"

ALL_EVENTS = (STATE, TAP_OR_SHOW_QR, READING, CHECKING_PASS, PASS_REFUSED, SEE_FRONT_DESK,
              WALKED_AWAY, SAVING, DONE, CONSENT_RECEIPT, RECORD_FAILED, OUT_OF_SERVICE, FACE_START,
              FACE_NOBODY, FACE_RETRY, FACE_MISMATCH, FACE_MATCHED, LIVENESS_START, LIVENESS_TURN,
              LIVENESS_RETRY, LIVENESS_NOT_CONFIGURED,
              LIVENESS_FAILED, CONSENT_SHOW, CONSENT_SIGN_PLEASE, CONSENT_TAP_TO_SIGN,
              CONSENT_PATIENT_SIGNED, CONSENT_PATIENT_SIG_SKIPPED, STAFF_ALERT, STAFF_CONFIRM_IDENTITY)


@dataclass(frozen=True)
class Event:
    """One thing the engine wants shown or said: a message id, parameters, monotonic ns."""

    id: str
    params: dict[str, Any] = field(default_factory=dict)
    t_ns: int = 0


# --- what the patient does (UI inputs) --------------------------------------------------
ACCEPT, DECLINE, STROKES, CLEAR, LANGUAGE, CANCEL, SKIP = (
    "accept", "decline", "strokes", "clear", "language", "cancel", "skip")
INPUT_KINDS = (ACCEPT, DECLINE, STROKES, CLEAR, LANGUAGE, CANCEL, SKIP)

Stroke = list[list[int]]  # [[x, y, t_ms], ...] in screen pixels, ms since the consent screen


@dataclass(frozen=True)
class UiInput:
    """A touch decision, signature strokes, a language choice, a cancel, or "skip" (no 2nd tap)."""

    kind: str
    strokes: tuple[Stroke, ...] = ()
    language: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in INPUT_KINDS:
            raise ValueError(f"unknown UI input kind {self.kind!r}")
