"""The real driver through the emulator on a pty, with every injected fault.

Each fault ends in a retry that succeeds or a clean NfcError — never a hang past its
timeout (pytest-timeout bounds each test generously), never another exception.
"""
from __future__ import annotations

import time

import cbor2
import pytest
from nacl.signing import VerifyKey
from nfc_fakes import realistic_pass

from kiosk.errors import NfcError
from kiosk.hardware.nfc.emulator import Fault, phone_card, type4_card
from kiosk.hardware.nfc.pn532 import Pn532
from kiosk.hardware.nfc.reader import NfcReader
from kiosk.hardware.nfc.transport import SerialTransport

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def reader(emulator):
    r = NfcReader(emulator.path, 115200, timeout=1.0)
    yield r
    r.close()


def test_firmware_and_phone_presentation(emulator, reader, wallet, nonce) -> None:
    assert reader.firmware_version() == "PN532 v1.6"
    emulator.place(phone_card(wallet))
    cred = reader.wait_for_credential(5)
    assert cred is not None and cred.kind == "phone" and cred.pass_bytes == wallet.pass_bytes
    statement, sig = cred.sign_presentation("clinic", "kiosk-1", nonce)
    VerifyKey(bytes(wallet.key.verify_key)).verify(statement, sig)
    assert cbor2.loads(statement)["nonce"] == nonce
    statement, sig = cred.sign_consent("clinic", "kiosk-1", nonce, b"h" * 32)
    assert cbor2.loads(statement)["ctx"] == "kiosk-consent-v1"
    assert repr(wallet.pass_bytes[:8])[2:-1] not in repr(cred)  # no pass bytes in repr


def test_card_credential_cannot_sign(emulator, reader, nonce) -> None:
    blob = realistic_pass(880)
    emulator.place(type4_card(blob))
    cred = reader.wait_for_credential(5)
    assert cred is not None and cred.kind == "card" and cred.pass_bytes == blob
    with pytest.raises(NfcError):
        cred.sign_presentation("clinic", "kiosk-1", nonce)


def test_empty_field_times_out_cleanly(reader) -> None:
    t = time.monotonic()
    assert reader.wait_for_credential(0.5) is None
    assert time.monotonic() - t < 30  # bounded, not a speed claim


def test_wallet_refusal_is_declined(emulator, reader, wallet, nonce) -> None:
    emulator.place(phone_card(wallet))
    cred = reader.wait_for_credential(5)
    with pytest.raises(NfcError) as e:
        cred.sign_presentation("another-site", "kiosk-1", nonce)
    assert e.value.reason == "declined"


def test_stale_credential(emulator, reader, wallet, nonce) -> None:
    emulator.place(phone_card(wallet))
    first = reader.wait_for_credential(5)
    second = reader.wait_for_credential(5)
    assert second is not None
    with pytest.raises(NfcError):
        first.sign_presentation("clinic", "kiosk-1", nonce)


@pytest.mark.parametrize("fault", [Fault.CORRUPT_CHECKSUM, Fault.DROP_ACK, Fault.NOISE])
def test_link_faults_are_recovered(emulator, reader, wallet, nonce, fault) -> None:
    emulator.place(phone_card(wallet))
    emulator.inject(fault, count=2)
    cred = reader.wait_for_credential(5)
    assert cred.pass_bytes == wallet.pass_bytes
    emulator.inject(fault, count=1)
    statement, sig = cred.sign_presentation("clinic", "kiosk-1", nonce)
    VerifyKey(bytes(wallet.key.verify_key)).verify(statement, sig)


def test_persistent_corruption_gives_clean_error(emulator, reader) -> None:
    emulator.inject(Fault.CORRUPT_CHECKSUM, count=1000)
    with pytest.raises(NfcError) as e:
        reader.firmware_version()
    assert e.value.reason in ("link-error", "timeout")
    emulator._faults.clear()
    assert reader.firmware_version() == "PN532 v1.6"  # the link recovers afterwards


def test_slow_card_within_timeout_succeeds(emulator, wallet) -> None:
    with NfcReader(emulator.path, 115200, timeout=2.0) as r:
        emulator.place(phone_card(wallet))
        emulator.inject(Fault.SLOW_CARD, delay=0.4)
        assert r.wait_for_credential(5).pass_bytes == wallet.pass_bytes


def test_slow_card_past_timeout_is_clean_error(emulator, wallet) -> None:
    with NfcReader(emulator.path, 115200, timeout=0.3) as r:
        emulator.place(phone_card(wallet))
        emulator.inject(Fault.SLOW_CARD, delay=20.0)
        t = time.monotonic()
        with pytest.raises(NfcError) as e:
            r.wait_for_credential(5)
        assert e.value.reason == "timeout"
        assert time.monotonic() - t < 15.0  # the driver aborted; it did not wait the card out
        assert r.firmware_version() == "PN532 v1.6"  # and the chip still answers


@pytest.mark.parametrize("status", [0x01, 0x13, 0x27])
def test_card_pulled_mid_transfer(emulator, reader, wallet, status) -> None:
    emulator.place(phone_card(wallet))
    emulator.inject(Fault.PULL_CARD, after=2, status=status)  # during the pass read
    with pytest.raises(NfcError) as e:
        reader.wait_for_credential(5)
    assert e.value.reason in ("card-lost", "card-error")
    assert emulator.card is None
    assert reader.wait_for_credential(0.3) is None


def test_phone_pulled_before_signing(emulator, reader, wallet, nonce) -> None:
    emulator.place(phone_card(wallet))
    cred = reader.wait_for_credential(5)
    emulator.remove()
    with pytest.raises(NfcError) as e:
        cred.sign_presentation("clinic", "kiosk-1", nonce)
    assert e.value.reason == "card-lost"


def test_bad_nonce_is_refused_before_the_radio(emulator, reader, wallet) -> None:
    emulator.place(phone_card(wallet))
    cred = reader.wait_for_credential(5)
    with pytest.raises(NfcError):
        cred.sign_presentation("clinic", "kiosk-1", b"short")
    assert wallet.calls == 0


def test_unknown_command_error_frame_and_extended_diagnose(emulator) -> None:
    t = SerialTransport(emulator.path, 115200, 1.0)
    try:
        chip = Pn532(t, timeout=0.5, retries=1)
        data = bytes(i & 0xFF for i in range(262))
        assert chip.diagnose_echo(data) == data  # extended frames both ways
        with pytest.raises(NfcError):
            chip.command(0x7E)  # not a PN532 command: the syntax-error frame, then give up
        assert chip.get_firmware_version().ic == 0x32
    finally:
        t.close()


def test_garbage_before_command_is_ignored_by_chip(emulator) -> None:
    t = SerialTransport(emulator.path, 115200, 1.0)
    try:
        t.write(b"\x55\x55\x12\x00\xff\x07\x07" + bytes(5))  # wake-up, then a broken start
        chip = Pn532(t, timeout=0.5)
        assert str(chip.get_firmware_version()) == "PN532 v1.6"
    finally:
        t.close()


def test_no_device_is_clean_error() -> None:
    with pytest.raises(NfcError) as e:
        NfcReader("/dev/does-not-exist-nfc", 115200, 0.2)
    assert e.value.reason == "port-unavailable"


def test_silent_line_is_clean_error(emulator) -> None:
    emulator.stop()  # pty still there, nobody answers
    t = time.monotonic()
    with pytest.raises(NfcError):
        NfcReader(emulator.path, 115200, 0.2)
    assert time.monotonic() - t < 30


def test_baud_rate_change(emulator) -> None:
    t = SerialTransport(emulator.path, 115200, 1.0)
    try:
        chip = Pn532(t, timeout=0.5)
        chip.set_serial_baud_rate(921600)
        t.baudrate = 921600
        assert chip.get_firmware_version().version == 1
        deadline = time.monotonic() + 5
        while emulator.baudrate != 921600 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert emulator.baudrate == 921600
    finally:
        t.close()


def test_cli_probe(emulator, capsys, monkeypatch) -> None:
    import kiosk.log
    from kiosk.cli import main

    monkeypatch.setattr(kiosk.log, "setup_logging", lambda verbose=False: None)

    assert main(["nfc", "probe", "--port", emulator.path, "--baudrate", "115200", "--timeout", "1"]) == 0
    assert "PN532 v1.6" in capsys.readouterr().out
    assert main(["nfc", "probe", "--port", "/dev/nope-nfc", "--baudrate", "115200", "--timeout", "1"]) != 0


def test_no_secrets_in_logs(emulator, reader, wallet, nonce, caplog) -> None:
    import logging

    caplog.set_level(logging.DEBUG, logger="kiosk")
    emulator.place(phone_card(wallet))
    emulator.inject(Fault.CORRUPT_CHECKSUM)
    cred = reader.wait_for_credential(5)
    _, sig = cred.sign_presentation("clinic", "kiosk-1", nonce)
    text = caplog.text
    for secret in (wallet.pass_bytes[:16].hex(), nonce.hex(), sig.hex()[:32]):
        assert secret not in text
