"""Fixtures for the NFC tests: a fake phone wallet and an emulator on a pty."""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import cbor2
import pytest
from nacl.signing import SigningKey

from kiosk.hardware.nfc.emulator import Pn532Emulator


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


@pytest.fixture
def wallet() -> FakeWallet:
    return FakeWallet(realistic_pass())


@pytest.fixture
def emulator() -> Iterator[Pn532Emulator]:
    emu = Pn532Emulator(115200)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def nonce() -> bytes:
    return os.urandom(16)
