"""Fixtures for the NFC tests: a fake phone wallet and an emulator on a pty."""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from nfc_fakes import FakeWallet, realistic_pass

from kiosk.hardware.nfc.emulator import Pn532Emulator


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
