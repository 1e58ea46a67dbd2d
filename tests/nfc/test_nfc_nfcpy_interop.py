"""nfcpy (an independent PN532 host) against our emulator over a pty (INTEROP.md)."""
from __future__ import annotations

import os
import uuid

import pytest
from nfc_fakes import realistic_pass

from kiosk.hardware.nfc.emulator import Pn532Emulator, type4_card

nfc = pytest.importorskip("nfc")
pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def linked_emulator():
    if not os.access("/dev", os.W_OK):
        pytest.skip("/dev is not writable: nfcpy needs a /dev/NAME link to the pty")
    name = "kiosknfc-" + uuid.uuid4().hex[:8]
    emu = Pn532Emulator(115200, link=f"/dev/{name}")
    emu.start()
    try:
        yield emu, name
    finally:
        emu.stop()
    assert not os.path.lexists(f"/dev/{name}")


def test_nfcpy_reads_firmware_and_type4_ndef(linked_emulator) -> None:
    emu, name = linked_emulator
    blob = realistic_pass(820)
    emu.place(type4_card(blob))
    clf = nfc.ContactlessFrontend(f"tty:{name}:pn532")
    try:
        assert "PN532v1.6" in str(clf.device)
        tag = clf.connect(rdwr={"on-connect": lambda tag: False})
        assert tag is not None and tag.ndef is not None
        (record,) = tag.ndef.records
        assert record.type == "urn:nfc:ext:kiosk.example:pass"
        assert record.data == blob
    finally:
        clf.close()
    assert emu.counters.commands[0x00] == 1  # the 263-byte Diagnose line test
    # nfcpy raises the line to 921600 baud where stty allows, and sets 115200 on close
    if emu.counters.commands[0x10]:
        assert emu.baud_history[:2] == [115200, 921600]
