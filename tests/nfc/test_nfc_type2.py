"""Type 2 Tags (NTAG215/216): the tag model, our reader and writer, `kiosk issuer write-card`."""
from __future__ import annotations

import json
import os
import uuid

import ndef
import pytest
from nfc_fakes import realistic_pass

from kiosk.cli import main
from kiosk.errors import FormatError
from kiosk.hardware.nfc import type2, type4
from kiosk.hardware.nfc.emulator import Pn532Emulator, crc_a, type2_card
from kiosk.hardware.nfc.reader import NfcReader
from kiosk.issuer.issuer import Issuer, write_pass_files

pytestmark = pytest.mark.timeout(120)


def test_crc_a_matches_the_iso_14443_3_example() -> None:
    # ISO/IEC 14443-3 Annex B: CRC_A of 00 00 is 1E A0; of 12 34 is 26 CF
    assert crc_a(b"\x00\x00") == b"\xa0\x1e" and crc_a(b"\x12\x34") == b"\x26\xcf"


def test_tag_memory_like_the_datasheet() -> None:
    tag = type2.Type2Tag(bytes.fromhex("04a1b2c3d4e5f6"), type2.NTAG215)
    page0 = tag.command(b"\x30\x00")
    assert page0[:3] == bytes.fromhex("04a1b2") and page0[3] == 0x88 ^ 0x04 ^ 0xA1 ^ 0xB2
    assert page0[12:16] == bytes.fromhex("e1103e00")  # NTAG215 CC: 496-byte data area
    assert tag.command(b"\x60") == bytes.fromhex("0004040201001103")
    assert tag.command(b"\x30\x86")[4:] == tag.command(b"\x30\x00")[:12]  # READ wraps at the end
    assert tag.command(b"\x30\x87") == type2.NAK_ARGUMENT
    assert len(tag.command(b"\x3a\x04\x81")) == 504  # the whole user memory
    assert tag.command(b"\xa2\x04ABCD") == type2.ACK and tag.command(b"\x30\x04")[:4] == b"ABCD"
    assert tag.command(b"\x1a\x00") is None and tag.command(b"\x30\x04") is None  # muted
    tag.reset()
    assert tag.command(b"\xa2\x03\x00\x00\x00\x0f") == type2.ACK  # OTP: bits only set
    assert tag.command(b"\x30\x03")[:4] == bytes.fromhex("e1103e0f")
    assert tag.command(b"\xa2\x02\x00\x00\xff\xff") == type2.ACK
    assert tag.command(b"\xa2\x05WXYZ") == type2.NAK_WRITE  # locked by the static lock bits


@pytest.mark.parametrize("model,n", [(type2.NTAG215, 300), (type2.NTAG216, 840), (type2.NTAG215, 10)])
def test_reader_and_writer_over_the_tag_side(model, n: int) -> None:
    tag = type2.Type2Tag(bytes.fromhex("04000000000001"), model)
    msg = type4.pass_message(realistic_pass(n))

    def exchange(c: bytes) -> bytes:
        a = tag.command(c)
        assert a is not None and a != type2.NAK_WRITE
        return b"" if isinstance(a, int) else a

    info = type2.identify(exchange, exchange)
    assert info.model is model and info.writable
    assert type2.read_ndef(exchange, exchange) == b""  # factory state: empty NDEF TLV
    type2.write_ndef(exchange, msg, info)
    assert type2.read_ndef(exchange, exchange) == msg == type2.read_ndef(exchange)  # FAST_READ and READ
    (rec,) = list(ndef.message_decoder(type2.read_ndef(exchange)))
    assert rec.type == "urn:nfc:ext:kiosk.example:pass"
    type2.lock(exchange, info)
    assert not type2.identify(exchange).writable
    with pytest.raises(FormatError):
        type2.write_ndef(exchange, msg, type2.identify(exchange))


@pytest.mark.parametrize("model,most", [(type2.NTAG213, 142), (type2.NTAG215, 492)])
def test_a_message_too_large_for_the_tag_is_refused_naming_the_limit(model, most: int) -> None:
    tag = type2.Type2Tag(bytes.fromhex("04000000000001"), model)

    def exchange(c: bytes) -> bytes:
        a = tag.command(c)
        return b"" if isinstance(a, int) else a

    info = type2.identify(exchange, exchange)
    assert info.model is model
    with pytest.raises(FormatError, match=f"does not fit this {model.name}: its data area is "
                                          f"{model.cc_size * 8} bytes, a message {most} bytes at most"):
        type2.write_ndef(exchange, b"x" * (most + 1), info)
    type2.write_ndef(exchange, b"x" * most, info)
    assert type2.read_ndef(exchange, exchange) == b"x" * most
    assert type2.NTAG215.ndef_capacity == 492 and type2.NTAG216.ndef_capacity == 868


def card_pass_folder(tmp_path, name: str = "clinic-issuer"):
    iss = Issuer.init(tmp_path / "issuer", "clinic", name)
    enrolled = iss.enroll(None, bytes(256))
    card = tmp_path / "card"
    card.mkdir()
    write_pass_files(card, enrolled.pass_bytes)
    return card, enrolled.pass_bytes


def test_card_pass_fits_an_ntag215_with_margin_not_an_ntag213(tmp_path) -> None:
    _, pass_bytes = card_pass_folder(tmp_path)
    size = len(type4.pass_message(pass_bytes))
    assert (len(pass_bytes), size) == (376, 400)  # docs/design-notes.md "Card passes"
    assert type2.NTAG213.ndef_capacity < size <= type2.NTAG215.ndef_capacity - 80
    # a long issuer name still fits
    _, long_pass = card_pass_folder(tmp_path / "long", "Community Health Centre, North District, Issuer")
    assert len(type4.pass_message(long_pass)) <= type2.NTAG215.ndef_capacity - 40


def test_write_card_command_then_the_kiosk_reads_the_card(tmp_path, capsys) -> None:
    card, pass_bytes = card_pass_folder(tmp_path)
    with Pn532Emulator(115200) as emu:
        emu.place(type2_card(model="NTAG213"))
        assert main(["issuer", "write-card", str(card), "--port", emu.path, "--wait", "3"]) == 65
        assert "does not fit this NTAG213: its data area is 144 bytes" in capsys.readouterr().err
        emu.place(type2_card(model="NTAG215"))
        assert main(["issuer", "write-card", str(card), "--port", emu.path, "--wait", "3", "--lock"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["model"] == "NTAG215" and out["locked"] and out["pass_bytes"] == len(pass_bytes)
        with NfcReader(emu.path) as reader:
            cred = reader.wait_for_credential(3)
        assert cred is not None and (cred.kind, cred.pass_bytes) == ("card", pass_bytes)
        assert main(["issuer", "write-card", str(card), "--port", emu.path, "--wait", "3",
                     "--overwrite"]) == 65  # locked: read-only
        assert "read-only" in capsys.readouterr().err
        emu.remove()
        assert main(["issuer", "write-card", str(card), "--port", emu.path, "--wait", "0.3"]) == 69
        assert "no Type 2 tag" in capsys.readouterr().err
        assert emu.counters.commands[0x42] > 0  # GET_VERSION / FAST_READ went through InCommunicateThru


def test_nfcpy_reads_a_card_written_by_write_card(tmp_path, capsys) -> None:
    nfc = pytest.importorskip("nfc")
    if not os.access("/dev", os.W_OK):
        pytest.skip("/dev is not writable: nfcpy needs a /dev/NAME link to the pty")
    card, pass_bytes = card_pass_folder(tmp_path)
    name = "kiosknfc-" + uuid.uuid4().hex[:8]
    with Pn532Emulator(115200, link=f"/dev/{name}") as emu:
        emu.place(type2_card(model="NTAG215"))
        assert main(["issuer", "write-card", str(card), "--port", emu.path, "--wait", "3", "--lock"]) == 0
        capsys.readouterr()
        clf = nfc.ContactlessFrontend(f"tty:{name}:pn532")
        try:
            tag = clf.connect(rdwr={"on-connect": lambda tag: False})
            # "NXP NTAG215" from GET_VERSION; nfcpy gives that probe 10 ms, which a loaded
            # machine can miss (it then says "NXP MIFARE Ultralight" and reads the same NDEF)
            assert tag is not None and tag.product.startswith("NXP"), tag.product
            assert tag.ndef is not None and not tag.ndef.is_writeable
            (record,) = tag.ndef.records
            assert record.type == "urn:nfc:ext:kiosk.example:pass" and record.data == pass_bytes
        finally:
            clf.close()
    assert not os.path.lexists(f"/dev/{name}")
