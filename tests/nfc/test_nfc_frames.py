"""Frames byte-for-byte against UM0701-02's examples and real PN532 logs."""
from __future__ import annotations

import re

import pytest

from kiosk.hardware.nfc import frames as F

H = bytes.fromhex


def test_get_firmware_version_command_and_response() -> None:
    # UM0701-02 §7.2.2 and the PN532 v1.6 answer from nfcpy issue 131 (a real device)
    assert F.encode_command(0x02) == H("00 00 FF 02 FE D4 02 2A 00")
    assert F.encode_response(0x02, H("32 01 06 07")) == H("00 00 FF 06 FA D5 03 32 01 06 07 E8 00")
    (f,) = F.parse_all(H("00 00 FF 06 FA D5 03 32 01 06 07 E8 00"))
    assert f == F.InformationFrame(0xD5, H("03 32 01 06 07"))


def test_sam_configuration() -> None:
    # UM0701-02 §7.2.10 example (normal mode, timeout 1 s, IRQ) and libnfc's 1-byte form
    assert F.encode_command(0x14, H("01 14 01")) == H("00 00 FF 05 FB D4 14 01 14 01 02 00")
    assert F.encode_command(0x14, H("01")) == H("00 00 ff 03 fd d4 14 01 17 00")
    assert F.encode_command(0x14, H("01 00 00")) == H("0000ff05fbd4140100001700")  # nfcpy
    assert F.encode_response(0x14) == H("00 00 FF 02 FE D5 15 16 00")


def test_in_list_passive_target() -> None:
    # UM0701-02 §7.3.5: one target, 106 kbps type A; libnfc issue 86 TX/RX
    assert F.encode_command(0x4A, H("01 00")) == H("00 00 FF 04 FC D4 4A 01 00 E1 00")
    assert F.encode_response(0x4A, H("00")) == H("00 00 ff 03 fd d5 4b 00 e0 00")
    assert F.encode_command(0x4A, H("01 01 00 ff ff 00 00")) == \
        H("00 00 ff 09 f7 d4 4a 01 01 00 ff ff 00 00 e2 00")


def test_other_logged_commands() -> None:
    assert F.encode_command(0x00, b"\x00libnfc") == H("00 00 ff 09 f7 d4 00 00 6c 69 62 6e 66 63 be 00")
    assert F.encode_command(0x12, H("14")) == H("00 00 ff 03 fd d4 12 14 06 00")
    assert F.encode_command(0x10, H("07")) == H("0000ff03fdd410071500")  # 921600 baud
    assert F.encode_response(0x10) == H("0000ff02fed5111a00")
    assert F.encode_command(0x44, H("00")) == H("00 00 ff 03 fd d4 44 00 e8 00")
    assert F.encode_response(0x44, H("00")) == H("00 00 ff 03 fd d5 45 00 e6 00")


def test_ack_nack_error_frames() -> None:
    # UM0701-02 §6.2.1.3–§6.2.1.5
    assert H("00 00 FF 00 FF 00") == F.ACK
    assert H("00 00 FF FF 00 00") == F.NACK
    assert H("00 00 FF 01 FF 7F 81 00") == F.ERROR_FRAME
    assert F.parse_all(F.ACK + F.NACK + F.ERROR_FRAME) == [F.Ack(), F.Nack(), F.ErrorFrame()]


def test_extended_frame() -> None:
    # UM0701-02 §6.2.1.2: 00 00 FF FF FF LENM LENL LCS TFI ... DCS 00
    data = b"\x00" + bytes(range(256)) + bytes(range(6))  # nfcpy's 263-byte line test
    frame = F.encode_command(0x00, data)
    assert frame[:8] == H("00 00 FF FF FF 01 09 F6")
    assert len(frame) == 8 + 265 + 2
    (f,) = F.parse_all(frame)
    assert isinstance(f, F.InformationFrame) and f.extended and f.params == data
    assert F.encode_information(0xD4, b"\x02", extended=True) == H("00 00 FF FF FF 00 02 FE D4 02 2A 00")


def test_checksum_error_is_distinct_and_parser_resyncs() -> None:
    good = F.encode_response(0x02, H("32 01 06 07"))
    bad = good[:-2] + b"\x00" + good[-1:]
    out = F.parse_all(b"\x98\x80\x98" + bad + b"\x12\x34" + F.ACK + good)
    assert out == [F.ChecksumError(6), F.Ack(), F.InformationFrame(0xD5, H("03 32 01 06 07"))]
    # a bad length checksum is not a frame: the parser finds the next real start code
    assert F.parse_all(H("00 00 FF 05 05") + good) == [F.InformationFrame(0xD5, H("03 32 01 06 07"))]


def test_byte_at_a_time() -> None:
    stream = F.ACK + F.encode_response(0x4A, H("00")) + F.NACK
    p = F.FrameParser()
    out = [f for b in stream for f in p.feed(bytes([b]))]
    assert out == [F.Ack(), F.InformationFrame(0xD5, H("4b 00")), F.Nack()]


def _hex_lines(text: str, tag: str) -> list[bytes]:
    out = []
    for line in text.splitlines():
        m = re.search(tag + r"\s*((?:[0-9a-fA-F]{2}\s*)+)$", line)
        if m:
            out.append(bytes.fromhex(m.group(1)))
    return out


def test_frames_from_real_logs(shared_data) -> None:
    logs = shared_data / "nfc" / "github_issue_logs"
    issue86 = (logs / "libnfc_issue86_pn532_uart_inlistpassivetarget_frames.log").read_text()
    txs = _hex_lines(issue86, "TX:")
    rxs = _hex_lines(issue86, "RX:")
    assert txs and rxs
    for tx in txs:  # every host frame decodes and re-encodes to the same bytes
        (f,) = F.parse_all(tx)
        assert isinstance(f, F.InformationFrame) and f.tfi == F.TFI_HOST
        assert F.encode_information(f.tfi, f.data) == tx
    for rx in rxs:
        kinds = [type(f) for f in F.parse_all(rx)]
        assert kinds in ([F.Ack, F.InformationFrame], [F.InformationFrame])
    nfcpy = (logs / "nfcpy_issue131_pn532_uart_rpi3_transport_frames.log").read_text()
    for m in re.finditer(r"(>>>|<<<) ([0-9a-f]+)", nfcpy):
        raw = bytes.fromhex(m.group(2))
        parsed = F.parse_all(raw)  # host frames carry nfcpy's long 00 preamble
        assert parsed and all(not isinstance(f, F.ChecksumError) for f in parsed)
    garbage = (logs / "libnfc_issue355_pn532_uart_garbage_reply.log").read_text()
    (rx,) = _hex_lines(garbage, "RX:")
    p = F.FrameParser()
    assert p.feed(rx) == [] and p.garbage > 0


@pytest.mark.parametrize("n", [0, 1, 253, 254, 255, 300, 600])
def test_round_trip_sizes(n: int) -> None:
    payload = bytes(i & 0xFF for i in range(n))
    (f,) = F.parse_all(F.encode_information(0xD5, payload or b"\x01"))
    assert isinstance(f, F.InformationFrame) and f.data == (payload or b"\x01")
