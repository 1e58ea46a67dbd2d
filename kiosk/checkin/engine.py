"""The check-in state machine: plain Python over ports, no UI or hardware imports.

idle → credential (NFC or QR, first wins) → pass → face (quality guidance, 1:1 match,
limited attempts) → liveness (pluggable; default "not configured", recorded) → consent
(terms in the patient's language, accept/decline + finger signature, optional second tap)
→ record (check-in + consent leaves in one outbox transaction) → done → idle.

Every state has a deadline (EngineTable) measured on the injected clock, so tests run the
timeouts on a fake clock. Every failure ends the session with an `Outcome` and an event the
UI turns into words; a failed device raises a staff alert and the engine goes on with the
channels that still work. A stop request (SIGTERM) ends a session within one poll as
CANCELLED; a session writes its one outbox transaction or nothing.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nacl.signing import SigningKey

from kiosk.checkin import events as E
from kiosk.checkin import records
from kiosk.checkin.ports import (
    Clock,
    Credential,
    CredentialSource,
    FaceMatcher,
    FaceSource,
    LivenessCheck,
    NotConfiguredLiveness,
    PassChecker,
    RecordSink,
    SystemClock,
    UiPort,
)
from kiosk.checkin.session_limits import FaceBudget, Lifeline
from kiosk.config import ConsentTable, EngineTable
from kiosk.errors import FormatError, HardwareError, KioskError, Reason, Verdict, VerificationError
from kiosk.protocol import consent as consent_format
from kiosk.protocol import entry, presentation
from kiosk.protocol.consent import ConsentTerms, text_sha256
from kiosk.protocol.patient_pass import PatientPass

log = logging.getLogger(__name__)

# session outcomes (stable strings: the demo, tests and staff mode read them)
CHECKED_IN = "checked-in"
CONSENT_DECLINED = "consent-declined"      # checked in; the consent is recorded as deny
PASS_REFUSED = "pass-refused"
FACE_MISMATCH = "face-mismatch"
NOBODY = "nobody"
WALKED_AWAY = "walked-away"
NO_BIOMETRIC_CONSENT = "no-biometric-consent"
LIVENESS_FAILED = "liveness-failed"
HARDWARE_FAILURE = "hardware-failure"
RECORD_FAILED = "record-failed"
CANCELLED = "cancelled"
NO_CREDENTIAL = "no-credential"            # idle timeout: the attract screen starts again
OUT_OF_SERVICE = "out-of-service"
STOPPING = "kiosk-stopping"                # the reason of a session cut short by a stop request
FOREIGN_CREDENTIAL = "foreign-credential"  # another issuer's credential: the front desk confirms
LIVENESS_ATTEMPTS = 2                      # the challenge, and one guided retry
_CROWD = "face.too_many"  # the quality gate's id for several faces in view


@dataclass(frozen=True)
class Outcome:
    """How a session ended. `entries` are the entry hashes written (empty when none)."""

    status: str
    reason: str = ""
    channel: str | None = None
    entries: tuple[bytes, ...] = ()
    consent: str | None = None  # "permit" | "deny" when recorded
    patient_signed: bool = False
    liveness: str | None = None


class _End(Exception):
    """Ends a session early with an outcome (internal control flow)."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


@dataclass
class _Session:
    credential: Credential
    captured: float              # wall time the credential was read: signed into the leaves
    pass_: PatientPass | None = None
    enrolled: Any = None
    face_attempts: int = 0
    liveness: Any = None
    extra: dict = field(default_factory=dict)


class CheckinEngine:
    """Runs check-in sessions one after another over the given ports."""

    def __init__(self, *, site: str, kiosk: str, kiosk_key: SigningKey, engine: EngineTable,
                 consent: ConsentTable, sources: list[CredentialSource], faces: FaceSource | None,
                 matcher: FaceMatcher, checker: PassChecker, sink: RecordSink, ui: UiPort,
                 liveness: LivenessCheck | None = None, clock: Clock | None = None,
                 default_language: str = "en", consent_signer: Any = None) -> None:
        self.site, self.kiosk, self.kiosk_key = site, kiosk, kiosk_key
        self.cfg, self.consent_cfg = engine, consent
        self.sources = list(sources)
        self.faces, self.matcher, self.checker, self.sink, self.ui = faces, matcher, checker, sink, ui
        self.liveness = liveness or NotConfiguredLiveness()
        self.clock = clock or SystemClock()
        self.default_language = default_language if default_language in consent.text else next(iter(consent.text))
        # a QR-phone patient may still tap to sign the consent: the NFC source signs for them
        self.consent_signer = consent_signer
        self._broken: dict[str, float] = {}   # device name → monotonic time to try it again
        self._face_budget = FaceBudget(engine.face_lockout_s)  # failed comparisons per pass
        self._life = Lifeline()  # stop request + watchdog beat of the current run
        self.state = "idle"

    # --- helpers ---------------------------------------------------------------------
    def _emit(self, msg_id: str, **params: Any) -> None:
        self.ui.emit(E.Event(msg_id, params, self.clock.monotonic_ns()))

    def _enter(self, state: str) -> None:
        self.state = state
        self._emit(E.STATE, state=state)

    def _device_failed(self, name: str, err: KioskError) -> None:
        """Tell staff once per failure and rest the device for a while."""
        if name not in self._broken:
            log.warning("%s failed: %s", name, err.reason)
            self._emit(E.STAFF_ALERT, kind=f"{name}-failure")
        self._broken[name] = self.clock.monotonic() + self.cfg.hardware_retry_s

    def _usable(self, name: str) -> bool:
        until = self._broken.get(name)
        if until is None:
            return True
        if self.clock.monotonic() >= until:
            del self._broken[name]  # try it again; a new failure alerts again
            return True
        return False

    def _check_stop(self, s: _Session) -> None:
        """Beat the watchdog; end the session (nothing written) if the service is stopping."""
        if self._life.stopping():
            self._emit(E.SEE_FRONT_DESK, reason=STOPPING)
            raise _End(Outcome(CANCELLED, STOPPING, s.credential.channel))

    def _pause(self, seconds: float) -> None:
        """Sleep, beating the watchdog; returns early on a stop request."""
        self._life.pause(self.clock, seconds, self.cfg.poll_interval_s)

    # --- the loop ----------------------------------------------------------------------
    def run_forever(self, stop: Any = None, on_outcome: Any = None,
                    heartbeat: Callable[[], object] | None = None) -> None:
        """Run sessions until `stop` (a threading.Event) is set.

        `heartbeat` is called from every waiting loop (at least every poll interval, camera
        frame or second-tap poll), e.g. to send systemd's WATCHDOG=1.
        """
        while stop is None or not stop.is_set():
            out = self.run_once(stop=stop, heartbeat=heartbeat)
            if on_outcome is not None:
                on_outcome(out)

    def run_once(self, stop: Any = None, heartbeat: Callable[[], object] | None = None) -> Outcome:
        """One session from the attract screen back to idle; a set `stop` cuts it short."""
        self._life = Lifeline(stop, heartbeat)
        self._enter("idle")
        try:
            cred = self._wait_credential()
            if cred is None:
                return Outcome(NO_CREDENTIAL)
            session = _Session(cred, self.clock.time())
            return self._session(session)
        except _End as end:
            return end.outcome
        finally:
            if self.faces is not None:
                with contextlib.suppress(KioskError):
                    self.faces.reset()
            self._enter("idle")

    def _session(self, s: _Session) -> Outcome:
        self._check_pass(s)
        self._capture_face(s)
        self._liveness(s)
        permit, language, text, strokes = self._consent(s)
        return self._record(s, permit, language, text, strokes)

    # --- credential ------------------------------------------------------------------
    def _wait_credential(self) -> Credential | None:
        self._enter("credential")
        channels = [src.name for src in self.sources if self._usable(src.name)]
        self._emit(E.TAP_OR_SHOW_QR, channels=channels)
        deadline = self.clock.monotonic() + self.cfg.credential_timeout_s
        while self.clock.monotonic() < deadline:
            if self._life.stopping():
                return None
            active = [src for src in self.sources if self._usable(src.name)]
            if not active:
                self._emit(E.OUT_OF_SERVICE)
                self._pause(self.cfg.poll_interval_s * 10)
                raise _End(Outcome(OUT_OF_SERVICE))
            for src in active:
                try:
                    cred = src.poll(self.cfg.poll_interval_s)
                except FormatError as e:
                    # read, but not a pass: the patient sees "refused", staff see nothing odd
                    self._emit(E.PASS_REFUSED, reason=Reason.MALFORMED.value)
                    raise _End(Outcome(PASS_REFUSED, Reason.MALFORMED.value, src.name)) from e
                except HardwareError as e:
                    self._device_failed(src.name, e)
                    continue
                if cred is not None:
                    self._emit(E.READING, channel=cred.channel)
                    return cred
        return None

    # --- pass ------------------------------------------------------------------------
    def _check_pass(self, s: _Session) -> None:
        self._enter("pass")
        self._emit(E.CHECKING_PASS)
        channel = s.credential.channel
        try:
            v = self.checker.check(s.credential)
        except KioskError as e:
            v = Verdict.bad(Reason.MALFORMED, e.message)
        if not v.ok:
            if v.reason in (Reason.REVOCATION_LIST_STALE, Reason.CLOCK_UNSYNCED):
                self._emit(E.STAFF_ALERT, kind=v.reason.value)
            self._emit(E.PASS_REFUSED, reason=v.reason.value)
            raise _End(Outcome(PASS_REFUSED, v.reason.value, channel))
        if "foreign" in v.data:
            self._foreign(s, v.data["foreign"])
        s.pass_ = v.data["pass"]
        if not s.pass_.has_template:
            # no biometric consent at enrolment: the front desk confirms identity (docs/design-notes.md)
            self._emit(E.SEE_FRONT_DESK, reason=NO_BIOMETRIC_CONSENT)
            raise _End(Outcome(NO_BIOMETRIC_CONSENT, NO_BIOMETRIC_CONSENT, channel))
        if self.faces is None or not self._usable("camera"):
            self._emit(E.SEE_FRONT_DESK, reason="camera-unavailable")
            raise _End(Outcome(HARDWARE_FAILURE, "camera-unavailable", channel))
        try:
            s.enrolled = self.matcher.enrolled_template(s.pass_.sealed_templates)
        except (VerificationError, FormatError):
            # sealed to a key this kiosk lacks: provisioning is wrong, not the patient
            self._emit(E.STAFF_ALERT, kind="sealing-key-mismatch")
            self._emit(E.SEE_FRONT_DESK, reason="template-unreadable")
            raise _End(Outcome(PASS_REFUSED, "template-unreadable", channel)) from None

    def _foreign(self, s: _Session, cred: Any) -> None:
        """A verified credential of another issuer: identity claimed, not bound to a face
        template and never our pass. Staff confirm it; nothing is recorded here."""
        self._emit(E.STAFF_CONFIRM_IDENTITY, **cred.summary(), claimed=cred.subject)
        self._emit(E.SEE_FRONT_DESK, reason=FOREIGN_CREDENTIAL)
        raise _End(Outcome(FOREIGN_CREDENTIAL, cred.format, s.credential.channel))

    # --- face ------------------------------------------------------------------------
    def _capture_face(self, s: _Session) -> None:
        channel = s.credential.channel
        assert self.faces is not None and s.pass_ is not None
        # each comparison is a chance for an impostor: the budget belongs to the pass, so
        # tapping again does not buy more tries (FMR per comparison × budget bounds it)
        pass_id = s.pass_.pass_id
        max_attempts = self.cfg.max_face_attempts - self._face_budget.failures(pass_id, self.clock.monotonic())
        if max_attempts <= 0:
            self._emit(E.STAFF_ALERT, kind="face-locked")
            self._emit(E.SEE_FRONT_DESK, reason="face-locked")
            raise _End(Outcome(FACE_MISMATCH, "face-locked", channel))
        self._enter("face")
        self._emit(E.FACE_START)
        deadline = self.clock.monotonic() + self.cfg.face_timeout_s
        seen_at: float | None = None
        last_guidance: str | None = E.FACE_START
        # one attempt = one decision over this many good frames of the same tracked face
        need = max(1, int(self.matcher.frames_per_decision))
        lives: list[Any] = []
        while True:
            self._check_stop(s)
            now = self.clock.monotonic()
            if now >= deadline:
                if seen_at is None:
                    self._emit(E.FACE_NOBODY)
                    raise _End(Outcome(NOBODY, "face-timeout", channel))
                self._emit(E.SEE_FRONT_DESK, reason="face-capture-timeout")
                raise _End(Outcome(FACE_MISMATCH if s.face_attempts else WALKED_AWAY,
                                   "face-capture-timeout", channel))
            try:
                r = self.faces.read()
            except HardwareError as e:
                self._device_failed("camera", e)
                self._emit(E.SEE_FRONT_DESK, reason="camera-unavailable")
                raise _End(Outcome(HARDWARE_FAILURE, "camera-failure", channel)) from None
            now = self.clock.monotonic()
            if r.present:
                seen_at = now
            elif seen_at is not None and now - seen_at > self.cfg.absent_timeout_s:
                self._emit(E.WALKED_AWAY)
                raise _End(Outcome(WALKED_AWAY, "face-lost", channel))
            if r.guidance and r.guidance != last_guidance:
                self._emit(r.guidance)
            last_guidance = r.guidance
            if not r.present or r.guidance == _CROWD:
                lives.clear()  # the track is lost or someone else is in view: frames of one face only
            if r.template is None:
                continue
            lives.append(r.template)
            if len(lives) < need:
                continue
            s.face_attempts += 1
            m = self.matcher.decide(s.enrolled, lives)
            lives = []
            if m.match:
                self._emit(E.FACE_MATCHED)
                return
            self._face_budget.failed(pass_id, self.clock.monotonic())
            if s.face_attempts >= max_attempts:
                self._emit(E.FACE_MISMATCH)
                self._emit(E.SEE_FRONT_DESK, reason="face-mismatch")
                raise _End(Outcome(FACE_MISMATCH, "face-mismatch", channel))
            self._emit(E.FACE_RETRY, attempt=s.face_attempts, max=max_attempts)
            last_guidance = None
            self._pause(self.cfg.retry_pause_s)

    # --- liveness --------------------------------------------------------------------
    def _liveness(self, s: _Session) -> None:
        """The liveness challenge, one guided retry, then the 1:1 match on the challenge's frames.

        The match already made in the face step only opens the door: the decision that counts
        is made on templates from frames captured during the challenge, so a live person
        cannot be swapped for a photo between the two steps."""
        self._enter("liveness")
        assert self.faces is not None and s.pass_ is not None
        channel = s.credential.channel
        if self.liveness.method != "none":
            self._emit(E.LIVENESS_START, method=self.liveness.method)
        attempts = 0
        while True:
            self._check_stop(s)
            attempts += 1
            try:
                result = self.liveness.run(self.faces, self.ui, self.clock)
            except HardwareError as e:
                self._device_failed("camera", e)
                self._emit(E.SEE_FRONT_DESK, reason="camera-unavailable")
                raise _End(Outcome(HARDWARE_FAILURE, "camera-failure", channel)) from None
            s.liveness = result
            if result.status == "not-configured":
                self._emit(E.LIVENESS_NOT_CONFIGURED)
                return
            s.extra["liveness_attempts"] = attempts
            if result.passed and result.templates:
                break
            if attempts >= LIVENESS_ATTEMPTS:
                # never a lock-out: the front desk can confirm the patient (staff override)
                self._emit(E.LIVENESS_FAILED)
                self._emit(E.SEE_FRONT_DESK, reason="liveness-failed")
                raise _End(Outcome(LIVENESS_FAILED, result.status, channel, liveness=result.status))
            self._emit(E.LIVENESS_RETRY, attempt=attempts, max=LIVENESS_ATTEMPTS)
            self._pause(self.cfg.retry_pause_s)
        m = self.matcher.decide(s.enrolled, list(result.templates))
        if not m.match:
            self._face_budget.failed(s.pass_.pass_id, self.clock.monotonic())
            self._emit(E.FACE_MISMATCH)
            self._emit(E.SEE_FRONT_DESK, reason="face-mismatch")
            raise _End(Outcome(FACE_MISMATCH, "face-changed", channel, liveness=result.status))

    # --- consent ---------------------------------------------------------------------
    def _show_consent(self, language: str) -> str:
        text = self.consent_cfg.text[language]
        self._emit(E.CONSENT_SHOW, document_id=self.consent_cfg.document_id, version=self.consent_cfg.version,
                   language=language, text_sha256=text_sha256(text).hex())
        return text

    def _consent(self, s: _Session) -> tuple[bool, str, str, list]:
        self._enter("consent")
        language = self.default_language
        text = self._show_consent(language)
        strokes: list = []
        deadline = self.clock.monotonic() + self.cfg.consent_timeout_s
        while True:
            self._check_stop(s)
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                # nobody touched the screen for the whole consent timeout: gone
                self._emit(E.WALKED_AWAY)
                raise _End(Outcome(WALKED_AWAY, "consent-timeout", s.credential.channel))
            inp = self.ui.poll_input(min(self.cfg.poll_interval_s, remaining))
            if inp is None:
                continue
            deadline = self.clock.monotonic() + self.cfg.consent_timeout_s  # someone is there
            if inp.kind == E.LANGUAGE and inp.language in self.consent_cfg.text:
                language = inp.language
                text = self._show_consent(language)
            elif inp.kind == E.STROKES:
                strokes.extend([list(map(list, st)) for st in inp.strokes])
            elif inp.kind == E.CLEAR:
                strokes = []
            elif inp.kind == E.CANCEL:
                raise _End(Outcome(CANCELLED, "patient-cancelled", s.credential.channel))
            elif inp.kind == E.ACCEPT:
                if not strokes:
                    self._emit(E.CONSENT_SIGN_PLEASE)
                    continue
                return True, language, text, strokes
            elif inp.kind == E.DECLINE:
                return False, language, text, strokes

    def _patient_signature(self, s: _Session, body: bytes) -> bytes:
        """The optional second tap: the patient's key signs the consent body's hash."""
        signer = s.credential.consent_signer or self.consent_signer
        if s.credential.presentation.kind == "card" or signer is None or self.cfg.consent_tap_timeout_s <= 0:
            return body
        assert s.pass_ is not None
        signed_hash = consent_format.signed_body_hash(body)
        self._emit(E.CONSENT_TAP_TO_SIGN, timeout_s=self.cfg.consent_tap_timeout_s)
        deadline = self.clock.monotonic() + self.cfg.consent_tap_timeout_s
        while self.clock.monotonic() < deadline:
            self._check_stop(s)  # before the write: a stopped session records nothing
            inp = self.ui.poll_input(0)
            if inp is not None and inp.kind in (E.SKIP, E.CANCEL):
                self._emit(E.CONSENT_PATIENT_SIG_SKIPPED, reason="patient-skipped")
                return body
            try:
                got = signer.sign_consent(s.pass_.raw, signed_hash,
                                          min(self.cfg.poll_interval_s * 5, deadline - self.clock.monotonic()))
            except HardwareError as e:
                self._device_failed("nfc", e)
                self._emit(E.CONSENT_PATIENT_SIG_SKIPPED, reason="reader-failure")
                return body
            except KioskError:
                continue  # another phone or a refused SIGN: keep waiting for the right one
            if got is None:
                continue
            stmt, sig = got
            v = presentation.verify_consent_signature(s.pass_, stmt, sig, site=self.site, kiosk=self.kiosk,
                                                      body_hash=signed_hash)
            if v.ok:
                self._emit(E.CONSENT_PATIENT_SIGNED)
                s.extra["patient_signed"] = True
                return consent_format.with_patient_sig(body, stmt, sig)
            self._emit(E.CONSENT_PATIENT_SIG_SKIPPED, reason=v.reason.value)
            return body
        self._emit(E.CONSENT_PATIENT_SIG_SKIPPED, reason="timeout")
        return body

    # --- record ----------------------------------------------------------------------
    def _record(self, s: _Session, permit: bool, language: str, text: str, strokes: list) -> Outcome:
        assert s.pass_ is not None
        now = self.clock.time()
        when = dt.datetime.fromtimestamp(now, dt.UTC)
        terms = ConsentTerms(self.consent_cfg.document_id, self.consent_cfg.version, self.consent_cfg.organization,
                             tuple(self.consent_cfg.purpose), tuple(self.consent_cfg.actions),
                             tuple(self.consent_cfg.actors), self.consent_cfg.valid_days)
        content = records.consent_content(terms, patient=s.pass_.patient, permit=permit, when=when,
                                          language=language, text=text, strokes=strokes,
                                          signature_png=records.signature_png(strokes),
                                          signer=records.signer_of(s.credential.channel,
                                                                   s.credential.presentation, permit))
        body, _ = entry.make_body(content)
        body = self._patient_signature(s, body)
        if self.clock.time() - s.captured > self.cfg.max_capture_age_s:
            # the gateway would refuse these records as stale: say so now, not "checked in"
            self._emit(E.SEE_FRONT_DESK, reason="session-too-long")
            raise _End(Outcome(CANCELLED, "session-too-long", s.credential.channel))
        self._enter("record")
        self._emit(E.SAVING)
        facts = records.SessionFacts(self.site, self.kiosk, s.credential.channel, s.credential.presentation,
                                     s.pass_, s.face_attempts, s.liveness.status, s.liveness.method,
                                     int(now * 1000), int(s.captured * 1000), self.liveness.required,
                                     int(s.extra.get("liveness_attempts", 0)))
        recs, hashes = records.make_session_records(facts, self.kiosk_key, body)
        try:
            self.sink.write_session(recs)
        except KioskError as e:
            log.error("outbox write failed: %s", e.reason)
            self._emit(E.STAFF_ALERT, kind="outbox-failure")
            self._emit(E.RECORD_FAILED)
            raise _End(Outcome(RECORD_FAILED, "outbox-failure", s.credential.channel)) from None
        self._enter("done")
        consent = "permit" if permit else "deny"
        self._emit(E.DONE, entries=[h.hex()[:12] for h in hashes], consent=consent)
        log.info("check-in recorded: entries %s", ", ".join(h.hex()[:12] for h in hashes))
        if self.cfg.done_display_s > 0:
            self._pause(self.cfg.done_display_s)  # written already: a stop only cuts the display
        return Outcome(CHECKED_IN if permit else CONSENT_DECLINED, "", s.credential.channel, tuple(hashes),
                       consent, bool(s.extra.get("patient_signed")), s.liveness.status)
