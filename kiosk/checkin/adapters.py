"""Adapters binding the engine's ports to the real modules (NFC reader, camera, vision, outbox).

Kept apart from the engine so that the state machine imports no hardware or vision library.
Each adapter turns what its module raises into the project's errors the engine expects:
HardwareError for a failed device, FormatError for a credential that does not decode.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from nacl.public import PrivateKey

from kiosk.checkin.ports import Clock, Credential, FaceReading, MatchResult, SystemClock
from kiosk.errors import FormatError, NfcError, VerificationError
from kiosk.protocol import cbor, credentials, presentation, sealing
from kiosk.protocol.credentials import shc

log = logging.getLogger(__name__)

# NfcError reasons that mean "the patient, not the reader": pulled the phone too early, a
# card without a pass, a phone that refused. The reader itself is fine.
_PATIENT_SIDE = {"card-lost", "card-error", "not-a-pass", "declined", "cannot-sign", "bad-request"}


class NfcAdapter:
    """The PN532 reader as a CredentialSource ("nfc") and as the second-tap ConsentSigner.

    A phone left on the reader is not a new check-in: the same pass is ignored until it has
    been out of the field for `repeat_guard_s`.

    `anchor` gives the newest signed checkpoint note this kiosk holds (None before its first
    receipt): the nonce commits to it, so the presentation provably postdates it.
    """

    name = "nfc"

    def __init__(self, reader: Any, site: str, kiosk: str, *, repeat_guard_s: float = 3.0,
                 clock: Clock | None = None, anchor: Callable[[], bytes | None] = lambda: None) -> None:
        self.reader, self.site, self.kiosk = reader, site, kiosk
        self.anchor = anchor
        self.repeat_guard_s = repeat_guard_s
        self.clock = clock or SystemClock()
        self._last: tuple[bytes, float] | None = None  # (pass hash, last seen) — no pass kept
        self._lock = threading.Lock()

    def _seen(self, pass_bytes: bytes) -> bool:
        """Remember this pass as seen now; True if it was seen within the guard time."""
        h = hashlib.sha256(pass_bytes).digest()
        now = self.clock.monotonic()
        repeat = self._last is not None and self._last[0] == h and now - self._last[1] < self.repeat_guard_s
        self._last = (h, now)
        return repeat

    def poll(self, timeout_s: float) -> Credential | None:
        """A tapped phone (signed over a fresh nonce) or card; None when nothing new came."""
        with self._lock:
            try:
                cred = self.reader.wait_for_credential(timeout_s)
                if cred is None or self._seen(cred.pass_bytes):
                    return None
                if cred.kind == "card":
                    return Credential("nfc", presentation.Presentation("card", cred.pass_bytes))
                nonce, anchor = self._challenge()
                stmt, sig = cred.sign_presentation(self.site, self.kiosk, nonce)
            except NfcError as e:
                if e.reason in _PATIENT_SIDE:
                    log.info("NFC read abandoned: %s", e.reason)
                    return None
                raise
            pres = presentation.Presentation("nfc", cred.pass_bytes, stmt, sig, anchor)
            return Credential("nfc", pres, nonce, self)

    def _challenge(self) -> tuple[bytes, tuple[bytes, bytes] | None]:
        """A fresh nonce, committed to the newest checkpoint held when there is one."""
        note = self.anchor()
        if note is None:
            return os.urandom(16), None
        seed, cp = os.urandom(16), presentation.checkpoint_hash(note)
        return presentation.anchored_nonce(seed, cp), (seed, cp)

    def read_badge(self, timeout_s: float) -> bytes | None:
        """A staff badge's UID (staff sign-in), sharing the reader with the engine's polls."""
        with self._lock:
            try:
                return self.reader.read_uid(timeout_s)
            except NfcError as e:
                log.info("badge read abandoned: %s", e.reason)
                return None

    def sign_consent(self, pass_bytes: bytes, body_hash: bytes, timeout_s: float) -> tuple[bytes, bytes] | None:
        """Wait for the same patient's phone and have it sign the consent statement."""
        with self._lock:
            try:
                cred = self.reader.wait_for_credential(max(timeout_s, 0.05))
                if cred is None or cred.kind != "phone" or cred.pass_bytes != pass_bytes:
                    return None  # nothing, a card, or somebody else's phone
                self._seen(cred.pass_bytes)
                nonce = os.urandom(16)
                stmt, sig = cred.sign_consent(self.site, self.kiosk, nonce, body_hash)
            except NfcError as e:
                if e.reason in _PATIENT_SIDE:
                    return None
                raise
        # the phone must have answered *this* challenge, not replayed an older signature
        m = cbor.loads(stmt, "consent statement")
        if not isinstance(m, dict) or m.get("nonce") != nonce:
            raise VerificationError("consent statement answers another challenge", reason="stale")
        return stmt, sig


class QrAdapter:
    """QR codes the camera sees, as a CredentialSource ("qr").

    With `foreign`, credentials of other issuers (EU DCC "HC1:", SMART Health Card "shc:/")
    are read too, as presentation kind "foreign"; the chunks of a chunked health card
    ("shc:/C/N/...", shown one after another or side by side) are collected until all N
    are seen. Chunks of another card, or more than one card can have, start over.
    """

    name = "qr"

    def __init__(self, camera: Any, qr_reader: Any | None = None, *, foreign: bool = False) -> None:
        if qr_reader is None:
            from kiosk.vision.qr import PASS_PREFIX, QrReader

            qr_reader = QrReader((PASS_PREFIX, *credentials.PREFIXES) if foreign else PASS_PREFIX)
        self.camera, self.qr = camera, qr_reader
        self._chunks: dict[int, str] = {}
        self._of = 0

    def poll(self, timeout_s: float) -> Credential | None:
        """Look at one frame; a new pass QR in it becomes a credential (FormatError if bad)."""
        frame = self.camera.read()  # CameraError is a HardwareError: the engine tells staff
        for text in self.qr.read(frame.image):
            if credentials.detect(text) is None:
                return Credential("qr", presentation.from_qr_text(text))
            texts = self._collect(text)
            if texts:
                return Credential("qr", presentation.Presentation(presentation.KIND_FOREIGN,
                                                                  "\n".join(texts).encode("utf-8")))
        return None

    def _collect(self, text: str) -> list[str] | None:
        """The texts of one whole credential once every chunk has been seen, else None."""
        index = shc.chunk_index(text)
        if index is None:
            return [text]
        c, n = index
        if n != self._of or not 1 <= c <= n or n > shc.MAX_CHUNKS:
            self._chunks, self._of = {}, n
        self._chunks[c] = text
        if len(self._chunks) < n:
            return None
        texts = [self._chunks[i] for i in sorted(self._chunks)]
        self._chunks, self._of = {}, 0
        return texts


class FaceAdapter:
    """Camera + FacePipeline as the engine's FaceSource."""

    def __init__(self, camera: Any, pipeline: Any) -> None:
        self.camera, self.pipeline = camera, pipeline
        # the UI's live preview: called with each RGB frame (kept in memory by the UI only)
        self.preview: Any = None

    def read(self, want_template: bool = True) -> FaceReading:
        frame = self.camera.read()
        if self.preview is not None:
            self.preview(frame.image)
        obs = self.pipeline.process(frame, want_template=want_template)
        if obs.ok:
            return FaceReading(True, None, obs.template, obs.t_ns, frame, obs.landmarks, obs.faces)
        return FaceReading(obs.faces > 0, obs.message_id, None, obs.t_ns, frame, obs.landmarks, obs.faces)

    def reset(self) -> None:
        self.pipeline.reset()


class TemplateMatcher:
    """Opens the sealed template with the kiosk's sealing key(s); decides with FaceVerifier.

    `frames`: good frames of one track fused into one decision (`vision.session_frames`).
    """

    def __init__(self, sealing_keys: list[PrivateKey], threshold: float, frames: int = 1) -> None:
        from kiosk.vision.verify import FaceVerifier

        self.sealing_keys = list(sealing_keys)
        self.verifier = FaceVerifier(threshold, frames)
        self.frames_per_decision = self.verifier.frames

    def enrolled_template(self, sealed: tuple[tuple[bytes, bytes], ...]) -> Any:
        from kiosk.vision.template import template_from_bytes

        raw = sealing.open_sealed([list(x) for x in sealed], self.sealing_keys)
        return template_from_bytes(raw)

    def decide(self, enrolled: Any, lives: Sequence[Any]) -> MatchResult:
        try:
            d = self.verifier.verify_session(enrolled, lives)
        except (FormatError, ValueError):
            return MatchResult(False, float("inf"))
        return MatchResult(d.match, d.distance)


class OutboxSink:
    """The outbox as the RecordSink: one transaction per session, then wake the publisher."""

    def __init__(self, outbox: Any, publisher: Any | None = None) -> None:
        self.outbox, self.publisher = outbox, publisher

    def write_session(self, records: list[tuple[bytes, bytes, dict | None]]) -> None:
        # the publisher sends while the outbox syncs the session (see Outbox.add_session)
        self.outbox.add_session(records, on_committed=self.publisher.wake
                                if self.publisher is not None else None)
