"""Type 4 Tag: NDEF codec (checked against ndeflib, test-only) and the tag/reader sides."""
from __future__ import annotations

import ndef
import pytest
from nfc_fakes import realistic_pass

from kiosk.errors import FormatError
from kiosk.hardware.nfc import type4


@pytest.mark.parametrize("n", [0, 10, 255, 256, 900])
def test_pass_record_matches_ndeflib(n: int) -> None:
    blob = realistic_pass(n)
    msg = type4.pass_message(blob)
    (rec,) = list(ndef.message_decoder(msg))
    assert rec.type == "urn:nfc:ext:kiosk.example:pass" and rec.data == blob
    ours = b"".join(ndef.message_encoder([ndef.Record("urn:nfc:ext:kiosk.example:pass", "", blob)]))
    assert ours == msg
    assert type4.extract_pass(msg) == blob


def test_real_uri_record_decodes() -> None:
    # NDEF bytes from NXP linux_libnfc-nci issue 63 (a URI record, "nxp.com/demoboard/OM5578")
    raw = bytes.fromhex("D1 01 19 55 01 6E 78 70 2E 63 6F 6D 2F 64 65 6D 6F 62 6F 61 72 64 2F 4F 4D 35 35 37 38")
    (rec,) = type4.decode_message(raw)
    assert rec.tnf == 1 and rec.type == b"U" and rec.payload.endswith(b"OM5578")
    assert type4.extract_pass(raw) is None


def test_multi_record_and_errors() -> None:
    recs = [type4.NdefRecord(1, b"T", b"\x02enhi"), type4.NdefRecord(4, type4.PASS_TYPE, b"P" * 300, b"id")]
    msg = type4.encode_message(recs)
    assert type4.decode_message(msg) == recs
    assert type4.extract_pass(msg) == b"P" * 300
    for bad in (msg[:-1], msg + b"\x00", b"\x19\x01", bytes([msg[0] & ~0x80]) + msg[1:]):
        with pytest.raises(FormatError):
            type4.decode_message(bad)


def test_reader_reads_tag_side() -> None:
    blob = realistic_pass(850)
    tag = type4.Type4Tag(type4.pass_message(blob))
    seen: list[bytes] = []

    def exchange(c: bytes) -> bytes:
        seen.append(c)
        return tag.process(c)

    assert type4.extract_pass(type4.read_ndef(exchange)) == blob
    # NDEF Tag Application Select with Le=00 (NFC Forum T4T 2.0 §5.4.2), as nfcpy sends it
    assert seen[0] == bytes.fromhex("00a4040007d276000085010100")
    assert seen[1] == bytes.fromhex("00a4000c02e103")


def test_tag_refuses_reads_before_select() -> None:
    tag = type4.Type4Tag(type4.pass_message(b"x"))
    assert tag.process(bytes.fromhex("00b000000f"))[-2:] == b"\x69\x85"
    assert tag.process(bytes.fromhex("00a4000c02e103"))[-2:] == b"\x69\x85"
    assert tag.process(bytes.fromhex("00a4040007d2760000850102"))[-2:] == b"\x6a\x82"
