"""Hostile phones and cards through the emulator, and the exclusive port.

A tapped phone is untrusted: whatever it answers, a read or a signature ends in a clean
NfcError after a bounded number of exchanges or when its deadline passes. pytest-timeout
bounds a regression to a hang; the assertions count exchanges, never time.
"""
from __future__ import annotations

import time

import pytest
from nfc_fakes import realistic_pass

from kiosk.errors import NfcError
from kiosk.hardware.nfc import apdu as A
from kiosk.hardware.nfc import pass_app
from kiosk.hardware.nfc import reader as reader_mod
from kiosk.hardware.nfc.emulator import EmulatedCard, Pn532Emulator, phone_card
from kiosk.hardware.nfc.reader import NfcReader
from kiosk.hardware.nfc.type4 import Type4Tag, pass_message

pytestmark = pytest.mark.timeout(90)

NONCE = b"n" * 16


class HostilePhone:
    """Selects like our pass application, then misbehaves as told.

    `size`: the pass size SELECT declares; `read`: bytes per READ BINARY answer;
    `sign`: the R-APDU for SIGN and every GET RESPONSE; `delay`: seconds per answer.
    """

    def __init__(self, *, size: int = 10, read: int | None = None, sign: bytes = b"\x61\x01",
                 delay: float = 0.0) -> None:
        self.size, self.read, self.sign, self.delay = size, read, sign, delay
        self.reads = 0
        self.signs = 0

    def reset(self) -> None:
        pass

    def process(self, command: bytes) -> bytes:
        if self.delay:
            time.sleep(self.delay)
        c = A.CommandApdu.decode(command)
        if c.ins == A.INS_SELECT:
            ok = c.data == pass_app.AID
            return (bytes([pass_app.VERSION]) + self.size.to_bytes(2, "big") + b"\x90\x00"
                    if ok else b"\x6a\x82")
        if c.ins == A.INS_READ_BINARY:
            self.reads += 1
            n = self.read if self.read is not None else (c.le or 256)
            return b"x" * n + b"\x90\x00"
        self.signs += 1  # SIGN, then GET RESPONSE forever
        return self.sign


class DribblingTag(Type4Tag):
    """A Type 4 tag that answers each READ BINARY of the NDEF file with one byte."""

    def __init__(self, message: bytes, delay: float = 0.0) -> None:
        super().__init__(message)
        self.delay = delay
        self.reads = 0

    def process(self, command: bytes) -> bytes:
        answer = super().process(command)
        c = A.CommandApdu.decode(command)
        if c.ins == A.INS_READ_BINARY and self._file is self.ndef_file and (c.p1 or c.p2 >= 2):
            self.reads += 1
            if self.delay:
                time.sleep(self.delay)
            return answer[:1] + b"\x90\x00"
        return answer


@pytest.fixture
def fast_emulator():
    emu = Pn532Emulator(115200, pace=False)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


def _phone(app: object) -> EmulatedCard:
    return EmulatedCard(app, b"\x08\x01\x02\x03")  # type: ignore[arg-type]


def _tapped(emu: Pn532Emulator, app: HostilePhone, **kw: float):
    r = NfcReader(emu.path, 115200, timeout=0.5, **kw)
    emu.place(_phone(app))
    cred = r.wait_for_credential(5)
    assert cred is not None and cred.kind == "phone"
    return r, cred


def test_sign_answering_6101_without_data_forever(fast_emulator) -> None:
    phone = HostilePhone(sign=b"\x61\x01")
    r, cred = _tapped(fast_emulator, phone)
    with r:
        with pytest.raises(NfcError) as e:
            cred.sign_presentation("clinic", "kiosk-1", NONCE)
        assert e.value.reason == "card-error"
        assert phone.signs <= 2  # SIGN, then the first empty GET RESPONSE ends it


@pytest.mark.parametrize("part", [1, reader_mod.CHUNK])
def test_sign_with_endless_61ff_chain(fast_emulator, part) -> None:
    phone = HostilePhone(sign=b"s" * part + b"\x61\xff")
    r, cred = _tapped(fast_emulator, phone)
    with r:
        with pytest.raises(NfcError) as e:
            cred.sign_consent("clinic", "kiosk-1", NONCE, b"h" * 32)
        assert e.value.reason == "card-error"
        assert phone.signs <= reader_mod.MAX_GET_RESPONSES + 1


def test_read_binary_one_byte_at_a_time(fast_emulator) -> None:
    phone = HostilePhone(size=reader_mod.MAX_PASS, read=1)
    with NfcReader(fast_emulator.path, 115200, timeout=0.5) as r:
        fast_emulator.place(_phone(phone))
        with pytest.raises(NfcError) as e:
            r.wait_for_credential(5)
        assert e.value.reason == "card-error"
        assert phone.reads <= reader_mod._read_cap(reader_mod.MAX_PASS)  # not 8192


def test_slow_dribbling_phone_is_cut_off_by_the_read_deadline(fast_emulator) -> None:
    # within the exchange cap this phone would keep the reader ~70 × 0.05 s
    phone = HostilePhone(size=reader_mod.MAX_PASS, read=1, delay=0.05)
    with NfcReader(fast_emulator.path, 115200, timeout=0.5, card_timeout=0.3) as r:
        fast_emulator.place(_phone(phone))
        with pytest.raises(NfcError) as e:
            r.wait_for_credential(0.1)
        assert e.value.reason == "card-error"
        assert phone.reads < reader_mod._read_cap(reader_mod.MAX_PASS) // 2


def test_slow_sign_chain_is_cut_off_by_the_sign_deadline(fast_emulator) -> None:
    phone = HostilePhone(sign=b"s" + b"\x61\xff", delay=0.05)
    r, cred = _tapped(fast_emulator, phone)
    with r:
        with pytest.raises(NfcError) as e:
            cred.sign_presentation("clinic", "kiosk-1", NONCE, timeout=0.2)
        assert e.value.reason == "card-error"
        assert phone.signs < reader_mod.MAX_GET_RESPONSES


def test_dribbling_type4_card_is_cut_off_by_the_read_deadline(fast_emulator) -> None:
    # type4.read_ndef has no exchange cap of its own: 8 KB one byte at a time is 8000
    # exchanges; the read deadline ends it
    tag = DribblingTag(pass_message(realistic_pass(8000)), delay=0.01)
    with NfcReader(fast_emulator.path, 115200, timeout=0.5, card_timeout=0.5) as r:
        fast_emulator.place(EmulatedCard(tag, b"\x04\x01\x02\x03\x04\x05\x06", sens_res=b"\x00\x44"))
        with pytest.raises(NfcError) as e:
            r.wait_for_credential(0.1)
        assert e.value.reason == "card-error"
        assert 0 < tag.reads < 4000


def test_short_poll_still_reads_a_full_pass(emulator, wallet) -> None:
    # the engine polls with 0.1 s; reading an 8 KB pass at 115200 baud takes longer
    # than that, and has its own deadline
    wallet.pass_bytes = realistic_pass(reader_mod.MAX_PASS)
    with NfcReader(emulator.path, 115200, timeout=1.0) as r:
        emulator.place(phone_card(wallet))
        cred = None
        for _ in range(50):
            cred = r.wait_for_credential(0.1)
            if cred is not None:
                break
        assert cred is not None and cred.pass_bytes == wallet.pass_bytes
        statement, sig = cred.sign_presentation("clinic", "kiosk-1", NONCE)
        assert statement and len(sig) == pass_app.SIGNATURE_LEN


# --- the port is exclusive ----------------------------------------------------------------
def test_second_reader_on_the_same_port_is_port_busy(emulator) -> None:
    with NfcReader(emulator.path, 115200, timeout=0.5) as first:
        with pytest.raises(NfcError) as e:
            NfcReader(emulator.path, 115200, timeout=0.5)
        assert e.value.reason == "port-busy"
        assert "in use by another process (is kiosk.service running?)" in e.value.message
        assert first.firmware_version() == "PN532 v1.6"  # the holder is undisturbed
    with NfcReader(emulator.path, 115200, timeout=0.5) as again:  # free once closed
        assert again.firmware_version() == "PN532 v1.6"


def test_cli_probe_while_the_port_is_held(emulator, capsys, monkeypatch) -> None:
    import kiosk.log
    from kiosk.cli import main

    monkeypatch.setattr(kiosk.log, "setup_logging", lambda verbose=False: None)
    with NfcReader(emulator.path, 115200, timeout=0.5):
        code = main(["nfc", "probe", "--port", emulator.path, "--baudrate", "115200",
                     "--timeout", "1"])
    assert code != 0
    assert "is kiosk.service running?" in capsys.readouterr().err
