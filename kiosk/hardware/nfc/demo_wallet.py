"""A stand-in phone wallet for `kiosk nfc emulate` and the benchmark, until the real
wallet simulator (kiosk/wallet/) is plugged in. It builds the DESIGN.md §7 statements with
a throw-away Ed25519 key; its pass is whatever bytes it is given (random by default), so
nothing it signs verifies against a real issuer.
"""
from __future__ import annotations

import hashlib
import secrets

import cbor2
from nacl.signing import SigningKey


class DemoWallet:
    """Implements `pass_app.PhoneWallet` with a random key."""

    def __init__(self, pass_bytes: bytes | None = None, site: str | None = None) -> None:
        self.pass_bytes = pass_bytes if pass_bytes is not None else secrets.token_bytes(800)
        self.site = site  # when set, a SIGN for another site is refused
        self._key = SigningKey.generate()
        self.public_key = bytes(self._key.verify_key)

    def _signed(self, statement: dict) -> tuple[bytes, bytes]:
        if self.site is not None and statement["site"] != self.site:
            raise PermissionError("site is not this pass's")
        blob = cbor2.dumps(statement, canonical=True)
        return blob, self._key.sign(blob).signature

    def sign_nfc(self, site: str, kiosk: str, nonce: bytes) -> tuple[bytes, bytes]:
        """`{ctx: "kiosk-nfc-v1", site, kiosk, nonce, pass_hash}`, signed."""
        return self._signed({"ctx": "kiosk-nfc-v1", "site": site, "kiosk": kiosk, "nonce": nonce,
                             "pass_hash": hashlib.sha256(self.pass_bytes).digest()})

    def sign_consent(self, site: str, kiosk: str, nonce: bytes,
                     body_hash: bytes) -> tuple[bytes, bytes]:
        """`{ctx: "kiosk-consent-v1", site, kiosk, nonce, body_hash}`, signed."""
        return self._signed({"ctx": "kiosk-consent-v1", "site": site, "kiosk": kiosk,
                             "nonce": nonce, "body_hash": body_hash})
