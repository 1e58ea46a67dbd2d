"""Hypothesis: random bytes give clean results, never an undocumented exception."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nfc_fakes import FakeWallet, realistic_pass

from kiosk.errors import FormatError
from kiosk.hardware.nfc import apdu as A
from kiosk.hardware.nfc import frames as F
from kiosk.hardware.nfc import type4
from kiosk.hardware.nfc.pass_app import AID, PassApplication, encode_sign_data

FRAME_TYPES = (F.Ack, F.Nack, F.ErrorFrame, F.InformationFrame, F.ChecksumError)


@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=64))
def test_parser_never_raises(data: bytes, step: int) -> None:
    p = F.FrameParser()
    for i in range(0, len(data), step):
        for f in p.feed(data[i:i + step]):
            assert isinstance(f, FRAME_TYPES)


# Garbage between frames that cannot hold a frame itself: no 0x00 inside (so no 00 FF start
# code), and no leading 0xFF, which after the previous frame's 00 postamble would start one
# (00 FF FF 00 is a NACK: hypothesis found that stream, and the parser was right to see it).
_no_zero = st.binary(max_size=40).map(lambda b: bytes(x for x in b if x != 0x00).lstrip(b"\xff"))


@given(st.lists(st.tuples(_no_zero, st.binary(min_size=0, max_size=300)), max_size=5),
       st.integers(min_value=1, max_value=50))
def test_frames_survive_garbage_and_chunking(items, step) -> None:
    stream = b""
    for garbage, payload in items:
        stream += garbage + F.encode_information(0xD5, payload)
    p = F.FrameParser()
    out = []
    for i in range(0, len(stream), step):
        out += p.feed(stream[i:i + step])
    assert out == [F.InformationFrame(0xD5, pl, len(pl) + 1 > 254) for _, pl in items]


@given(st.binary(min_size=1, max_size=300), st.integers(min_value=1, max_value=255))
def test_corrupted_data_checksum_is_reported(payload: bytes, flip: int) -> None:
    frame = bytearray(F.encode_information(0xD5, payload))
    frame[-2] ^= flip
    assert F.parse_all(bytes(frame) + F.ACK) == [F.ChecksumError(len(payload) + 1), F.Ack()]


@given(st.binary(max_size=600))
def test_command_apdu_decode_is_clean(raw: bytes) -> None:
    try:
        c = A.CommandApdu.decode(raw)
    except FormatError:
        return
    assert c.encode() == raw or A.CommandApdu.decode(c.encode()) == c


@given(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.integers(0, 255),
       st.binary(max_size=700), st.one_of(st.none(), st.integers(1, 65536)))
def test_command_apdu_round_trip(cla, ins, p1, p2, data, le) -> None:
    c = A.CommandApdu(cla, ins, p1, p2, data, le)
    assert A.CommandApdu.decode(c.encode()) == c


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300)
@given(st.lists(st.binary(max_size=300), max_size=6), st.booleans())
def test_pass_app_answers_everything(commands: list[bytes], select_first: bool) -> None:
    app = PassApplication(FakeWallet(realistic_pass(300)))
    if select_first:
        assert app.process(A.select_aid(AID).encode())[-2:] == b"\x90\x00"
    for c in commands:
        r = app.process(c)
        assert isinstance(r, bytes) and len(r) >= 2


_header = st.sampled_from([(0x00, 0xA4), (0x00, 0xB0), (0x00, 0xC0), (0x80, 0x2A), (0x80, 0x00)])


@settings(max_examples=300)
@given(_header, st.integers(0, 255), st.integers(0, 255), st.binary(max_size=120),
       st.one_of(st.none(), st.integers(1, 256)))
def test_pass_app_structured_commands(header, p1, p2, data, le) -> None:
    app = PassApplication(FakeWallet(realistic_pass(300)))
    app.process(A.select_aid(AID).encode())
    r = app.process(A.CommandApdu(header[0], header[1], p1, p2, data, le).encode())
    assert len(r) >= 2 and r[-2] in (0x90, 0x61, 0x62, 0x67, 0x69, 0x6A, 0x6B, 0x6D, 0x6E)


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["site", "kiosk", "nonce", "body_hash", "x"]),
                       st.one_of(st.text(max_size=40), st.binary(max_size=40), st.integers())),
       st.integers(0, 1))
def test_sign_with_hostile_cbor(m: dict, p1: int) -> None:
    import cbor2

    app = PassApplication(FakeWallet(realistic_pass(100)))
    app.process(A.select_aid(AID).encode())
    r = app.process(A.CommandApdu(0x80, 0x2A, p1, 0, cbor2.dumps(m) or b"\x00", 240).encode())
    assert r[-2:] in (b"\x90\x00", b"\x6A\x80", b"\x69\x85") or r[-2] == 0x61


@given(st.binary(max_size=500))
def test_ndef_decode_is_clean(raw: bytes) -> None:
    try:
        records = type4.decode_message(raw)
    except FormatError:
        return
    assert type4.encode_message(records) == raw or records


def test_sign_data_encoder_matches_parser() -> None:
    app = PassApplication(FakeWallet(realistic_pass(100)))
    app.process(A.select_aid(AID).encode())
    data = encode_sign_data("clinic", "kiosk-1", b"n" * 16)
    r = app.process(A.CommandApdu(0x80, 0x2A, 0, 0, data, 240).encode())
    assert r[-2:] == b"\x90\x00"
