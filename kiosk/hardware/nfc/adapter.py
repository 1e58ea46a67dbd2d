"""The PN532 reader as the engine's credential source ("nfc") and its consent and badge taps.

The engine imports no hardware library: this adapter turns what the reader raises into the
errors the engine expects (HardwareError for a failed device, FormatError for a credential that
does not decode, VerificationError for a statement that answers another challenge).
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from kiosk.checkin.ports import Clock, Credential, SystemClock
from kiosk.errors import NfcError, VerificationError
from kiosk.protocol import cbor, presentation

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
