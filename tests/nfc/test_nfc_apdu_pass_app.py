"""ISO 7816-4 APDU cases and the phone's pass application, status word by status word."""
from __future__ import annotations

import cbor2
import pytest
from nacl.signing import VerifyKey
from nfc_fakes import FakeWallet, realistic_pass

from kiosk.errors import FormatError
from kiosk.hardware.nfc import apdu as A
from kiosk.hardware.nfc.pass_app import AID, PassApplication, encode_sign_data

H = bytes.fromhex


@pytest.mark.parametrize("raw,expect", [
    (H("00A40400"), A.CommandApdu(0, 0xA4, 4, 0)),                                    # case 1
    (H("00B0000000"), A.CommandApdu(0, 0xB0, 0, 0, le=256)),                          # 2S
    (H("00A4000C02E103"), A.CommandApdu(0, 0xA4, 0, 0x0C, H("E103"))),                # 3S
    (H("00a4040007d276000085010100"), A.CommandApdu(0, 0xA4, 4, 0, H("d2760000850101"), 256)),  # 4S
    (H("00B00000000000"), A.CommandApdu(0, 0xB0, 0, 0, le=65536)),                    # 2E
    (H("00B000000001F4"), A.CommandApdu(0, 0xB0, 0, 0, le=500)),                      # 2E
    (H("80100000000003AABBCC"), A.CommandApdu(0x80, 0x10, 0, 0, H("AABBCC"))),        # 3E
    (H("80100000000003AABBCC0100"), A.CommandApdu(0x80, 0x10, 0, 0, H("AABBCC"), 256)),  # 4E
])
def test_apdu_cases(raw: bytes, expect: A.CommandApdu) -> None:
    assert A.CommandApdu.decode(raw) == expect


@pytest.mark.parametrize("raw", [b"", H("00A404"), H("00A4040002AA"), H("00A4040000"[:10] + "00"),
                                 H("00A404000000"), H("00A40400000000AA")])
def test_apdu_malformed(raw: bytes) -> None:
    with pytest.raises(FormatError):
        A.CommandApdu.decode(raw)


def test_nfcpy_select_bytes() -> None:  # from nfcpy issue 132's Type 4 trace
    assert A.select_file(H("E103")).encode() == H("00a4000c02e103")
    assert A.CommandApdu(0, 0xA4, 4, 0, H("d2760000850101")).encode() == H("00a4040007d2760000850101")


def _app(pass_len: int = 760, site: str = "clinic") -> tuple[PassApplication, FakeWallet]:
    w = FakeWallet(realistic_pass(pass_len), site)
    return PassApplication(w), w


def sw(r: bytes) -> int:
    return int.from_bytes(r[-2:], "big")


def test_select_and_read_pass_in_chunks() -> None:
    app, w = _app()
    r = app.process(A.select_aid(AID).encode())
    assert sw(r) == 0x9000 and r[:-2] == b"\x01" + (760).to_bytes(2, "big")
    got = b""
    while len(got) < 760:
        r = app.process(A.read_binary(len(got), 0xF0).encode())
        assert sw(r) in (0x9000, 0x6282)
        got += r[:-2]
    assert got == w.pass_bytes
    assert sw(app.process(A.read_binary(760, 16).encode())) == 0x6B00
    r = app.process(A.read_binary(700, 0xF0).encode())
    assert sw(r) == 0x6282 and len(r) == 62


def test_sign_presentation_and_consent() -> None:
    app, w = _app()
    app.process(A.select_aid(AID).encode())
    out, r = b"", app.process(A.CommandApdu(0x80, 0x2A, 0, 0, encode_sign_data("clinic", "k1", b"N" * 16), 64).encode())
    while sw(r) & 0xFF00 == 0x6100:  # 61xx + GET RESPONSE
        out += r[:-2]
        r = app.process(A.CommandApdu(0, 0xC0, 0, 0, le=64).encode())
    out += r[:-2]
    assert sw(r) == 0x9000
    statement, sig = out[:-64], out[-64:]
    VerifyKey(bytes(w.key.verify_key)).verify(statement, sig)
    m = cbor2.loads(statement)
    assert m["ctx"] == "kiosk-nfc-v1" and m["nonce"] == b"N" * 16
    sign = encode_sign_data("clinic", "k1", b"N" * 20, b"h" * 32)
    r = app.process(A.CommandApdu(0x80, 0x2A, 1, 0, sign, 256).encode())
    assert sw(r) == 0x9000 and cbor2.loads(r[:-66])["ctx"] == "kiosk-consent-v1"


@pytest.mark.parametrize("setup,command,expect", [
    (False, A.select_aid(b"\xF0NOTOURS").encode(), 0x6A82),
    (True, H("00CA000000"), 0x6D00),
    (True, H("A0A4040000"), 0x6E00),
    (True, H("00A4"), 0x6700),
    (True, A.CommandApdu(0, 0xA4, 0x02, 0, AID).encode(), 0x6A86),
    (True, A.CommandApdu(0x80, 0x2A, 0x02, 0, encode_sign_data("clinic", "k", b"n" * 16)).encode(), 0x6A86),
    (False, A.CommandApdu(0x80, 0x2A, 0, 0, encode_sign_data("clinic", "k", b"n" * 16)).encode(), 0x6985),
    (False, A.read_binary(0, 16).encode(), 0x6985),
    (True, A.CommandApdu(0x80, 0x2A, 0, 0, encode_sign_data("elsewhere", "k", b"n" * 16)).encode(), 0x6985),
    (True, A.CommandApdu(0x80, 0x2A, 0, 0, encode_sign_data("clinic", "k", b"n" * 15)).encode(), 0x6A80),
    (True, A.CommandApdu(0x80, 0x2A, 0, 0, encode_sign_data("clinic", "k", b"n" * 33)).encode(), 0x6A80),
    (True, A.CommandApdu(0x80, 0x2A, 1, 0, encode_sign_data("clinic", "k", b"n" * 16)).encode(), 0x6A80),
    (True, A.CommandApdu(0x80, 0x2A, 0, 0, b"\xff\xff").encode(), 0x6A80),
    (True, A.CommandApdu(0x80, 0x2A, 0, 0).encode(), 0x6700),
    (True, A.CommandApdu(0, 0xC0, 0, 0, le=16).encode(), 0x6985),
])
def test_status_words(setup: bool, command: bytes, expect: int) -> None:
    app, _ = _app()
    if setup:
        app.process(A.select_aid(AID).encode())
    assert sw(app.process(command)) == expect


def test_unexpected_wallet_failure_is_6f00() -> None:
    app, w = _app()

    def boom(*a):
        raise RuntimeError("wallet bug")

    w.sign_nfc = boom  # type: ignore[method-assign]
    app.process(A.select_aid(AID).encode())
    r = app.process(A.CommandApdu(0x80, 0x2A, 0, 0, encode_sign_data("clinic", "k", b"n" * 16)).encode())
    assert sw(r) == 0x6F00
