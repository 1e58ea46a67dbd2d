"""The wallet simulator: plays the patient's phone for demos and tests.

A wallet makes its own Ed25519 key (the issuer never holds it), carries the pass it was
issued, shows a fresh QR presentation, and answers a kiosk's NFC challenge by signing a
statement it builds itself (docs/design-notes.md).
"""
from __future__ import annotations

import time
from pathlib import Path

from nacl.signing import SigningKey, VerifyKey

from kiosk.errors import CannotCreateError, KioskError
from kiosk.protocol import keys, patient_pass, presentation

KEY_FILE, PUB_FILE, PASS_FILE = "patient.key", "patient.pub", "pass.cose"


class WalletError(KioskError):
    """The wallet cannot do what was asked (no pass yet, a statement for another site)."""


class Wallet:
    """A patient's phone: its key and (once enrolled) its pass."""

    def __init__(self, key: SigningKey, pass_bytes: bytes | None = None) -> None:
        self.key = key
        self._pass = pass_bytes

    @classmethod
    def create(cls, folder: Path | None = None) -> Wallet:
        """A new wallet; with `folder`, its key is written there (0600)."""
        w = cls(SigningKey.generate())
        if folder is not None:
            folder = Path(folder)
            if (folder / KEY_FILE).exists():
                raise CannotCreateError(f"{folder}: a wallet already exists there; refusing to replace its key")
            keys.save_private_key(folder / KEY_FILE, w.key)
            keys.save_public_key(folder / PUB_FILE, w.public_key)
        return w

    @classmethod
    def load(cls, folder: Path) -> Wallet:
        """Load a wallet folder (key, and pass when enrolled)."""
        folder = Path(folder)
        key = keys.load_signing_key(folder / KEY_FILE)
        p = folder / PASS_FILE
        return cls(key, p.read_bytes() if p.exists() else None)

    @property
    def public_key(self) -> VerifyKey:
        return self.key.verify_key

    @property
    def pass_bytes(self) -> bytes:
        if self._pass is None:
            raise WalletError("this wallet holds no pass yet; enrol it first")
        return self._pass

    def store_pass(self, pass_bytes: bytes, folder: Path | None = None) -> None:
        """Accept an issued pass (it must certify this wallet's key)."""
        p = patient_pass.decode(pass_bytes)
        if p.patient_key is None or bytes(p.patient_key) != bytes(self.public_key):
            raise WalletError("the pass certifies another wallet's key")
        self._pass = pass_bytes
        if folder is not None:
            (Path(folder) / PASS_FILE).write_bytes(pass_bytes)

    @property
    def _decoded(self) -> patient_pass.PatientPass:
        return patient_pass.decode(self.pass_bytes)

    def sign_nfc(self, site: str, kiosk: str, nonce: bytes) -> tuple[bytes, bytes]:
        """Answer a kiosk's NFC challenge: (statement, signature)."""
        p = self._decoded
        if site != p.site:
            raise WalletError("the kiosk belongs to another site than this pass")
        if not 16 <= len(nonce) <= 64:
            raise WalletError("the kiosk's nonce has a bad length")
        stmt = presentation.nfc_statement(site, kiosk, nonce, p.pass_hash)
        return stmt, presentation.sign_statement(self.key, stmt)

    def sign_consent(self, site: str, kiosk: str, nonce: bytes, body_hash: bytes) -> tuple[bytes, bytes]:
        """Sign a consent body on a second tap: (statement, signature)."""
        if site != self._decoded.site:
            raise WalletError("the kiosk belongs to another site than this pass")
        if len(body_hash) != 32 or not 16 <= len(nonce) <= 64:
            raise WalletError("bad consent challenge")
        stmt = presentation.consent_statement(site, kiosk, nonce, body_hash)
        return stmt, presentation.sign_statement(self.key, stmt)

    def qr_text(self, now: float | None = None) -> str:
        """The QR presentation for the current 30-second window."""
        return presentation.qr_presentation_text(self.pass_bytes, self.key, time.time() if now is None else now)

    def qr_png(self, path: Path, now: float | None = None, scale: int = 6) -> None:
        """Render the QR presentation as a PNG (as the phone would show it)."""
        import segno

        segno.make(self.qr_text(now), error="m", micro=False).save(str(path), scale=scale, border=4)
