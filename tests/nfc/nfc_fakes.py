"""Test doubles for the NFC tests (imported by name: tests/ has no packages)."""
from __future__ import annotations

import hashlib

import cbor2
from nacl.signing import SigningKey


class FakeWallet:
    """A tiny `PhoneWallet`: signs the §7 statements with a nacl key."""

    def __init__(self, pass_bytes: bytes, site: str = "clinic") -> None:
        self.pass_bytes = pass_bytes
        self.site = site
        self.key = SigningKey.generate()
        self.calls = 0

    def _sign(self, statement: dict) -> tuple[bytes, bytes]:
        self.calls += 1
        if statement["site"] != self.site:
            raise PermissionError("not my site")
        blob = cbor2.dumps(statement, canonical=True)
        return blob, self.key.sign(blob).signature

    def sign_nfc(self, site: str, kiosk: str, nonce: bytes) -> tuple[bytes, bytes]:
        return self._sign({"ctx": "kiosk-nfc-v1", "site": site, "kiosk": kiosk, "nonce": nonce,
                           "pass_hash": hashlib.sha256(self.pass_bytes).digest()})

    def sign_consent(self, site: str, kiosk: str, nonce: bytes,
                     body_hash: bytes) -> tuple[bytes, bytes]:
        return self._sign({"ctx": "kiosk-consent-v1", "site": site, "kiosk": kiosk,
                           "nonce": nonce, "body_hash": body_hash})


def realistic_pass(n: int = 760) -> bytes:
    """Stand-in COSE bytes of a realistic size (the tests never decode them)."""
    return bytes((i * 37 + 11) & 0xFF for i in range(n))
