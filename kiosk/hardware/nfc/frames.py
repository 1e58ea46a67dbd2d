"""PN532 host-link frame codec (NXP UM0701-02 §6.2.1 "Frames structure").

Pure functions and a streaming parser; no I/O. Both the driver (host side, TFI D4) and the
emulator (chip side, TFI D5) use it.

Frame kinds (UM0701-02 §6.2.1.1–§6.2.1.5):

* normal information frame  ``00 00 FF LEN LCS TFI PD0..PDn DCS 00``
  with ``LEN = len(TFI + PD)`` (1..255), ``LCS = -LEN mod 256``, ``DCS = -(TFI + ΣPD) mod 256``;
* extended information frame ``00 00 FF FF FF LENM LENL LCS TFI PD.. DCS 00``
  with ``LCS = -(LENM + LENL) mod 256`` (for up to 264 bytes of data);
* ACK ``00 00 FF 00 FF 00``, NACK ``00 00 FF FF 00 00``;
* the error ("syntax error") frame ``00 00 FF 01 FF 7F 81 00``.

The parser never raises on bad input: garbage before a start code is skipped, a bad length
checksum makes it resynchronise on the next start code, and a bad data checksum (with a valid
length) yields a distinct `ChecksumError` result so that the host can answer with a NACK.
"""
from __future__ import annotations

from dataclasses import dataclass

PREAMBLE = b"\x00"
START_CODE = b"\x00\xff"
POSTAMBLE = b"\x00"
ACK = bytes.fromhex("0000ff00ff00")
NACK = bytes.fromhex("0000ffff0000")
ERROR_FRAME = bytes.fromhex("0000ff01ff7f8100")

TFI_HOST = 0xD4  # host controller -> PN532 (§6.2.1.1)
TFI_PN532 = 0xD5  # PN532 -> host controller
TFI_ERROR = 0x7F  # the application-level error frame (§6.2.1.5)

MAX_NORMAL_LEN = 255  # LEN byte of a normal frame (TFI + data)
MAX_EXTENDED_LEN = 0xFFFF  # the format's limit; the PN532 itself handles up to 265 (§6.2.1.2)


def checksum(data: bytes) -> int:
    """The two's-complement byte that makes ``sum(data) + checksum == 0 (mod 256)``."""
    return (-sum(data)) & 0xFF


def encode_information(tfi: int, payload: bytes, *, extended: bool | None = None) -> bytes:
    """Encode an information frame holding ``TFI + payload`` (§6.2.1.1 and §6.2.1.2).

    A normal frame is used whenever ``1 + len(payload) <= 254``; longer bodies (or
    ``extended=True``) use the extended frame. LEN 255 is avoided in normal frames so a
    frame never begins ``00 FF FF`` unless it is extended.
    """
    body = bytes([tfi]) + bytes(payload)
    n = len(body)
    if n > MAX_EXTENDED_LEN:
        raise ValueError("frame body too long")
    if extended is None:
        extended = n > 254
    if extended:
        lenm, lenl = n >> 8, n & 0xFF
        head = b"\x00\x00\xff\xff\xff" + bytes([lenm, lenl, checksum(bytes([lenm, lenl]))])
    else:
        if n > MAX_NORMAL_LEN:
            raise ValueError("body too long for a normal frame")
        head = b"\x00\x00\xff" + bytes([n, checksum(bytes([n]))])
    return head + body + bytes([checksum(body)]) + POSTAMBLE


def encode_command(command: int, params: bytes = b"") -> bytes:
    """A host command frame: TFI D4, the command code, its parameters (§7)."""
    return encode_information(TFI_HOST, bytes([command]) + bytes(params))


def encode_response(command: int, params: bytes = b"") -> bytes:
    """A PN532 response frame: TFI D5, the command code + 1, its parameters (§7)."""
    return encode_information(TFI_PN532, bytes([(command + 1) & 0xFF]) + bytes(params))


@dataclass(frozen=True)
class Ack:
    """An ACK frame (§6.2.1.3)."""


@dataclass(frozen=True)
class Nack:
    """A NACK frame (§6.2.1.4): the peer asks for the last frame again."""


@dataclass(frozen=True)
class ErrorFrame:
    """The syntax-error frame (§6.2.1.5): the PN532 rejected the command's syntax."""


@dataclass(frozen=True)
class InformationFrame:
    """A well-formed information frame. `data` excludes the TFI."""

    tfi: int
    data: bytes
    extended: bool = False

    @property
    def command(self) -> int:
        """The command (host) or response (PN532) code: the first data byte, or -1."""
        return self.data[0] if self.data else -1

    @property
    def params(self) -> bytes:
        """The bytes after the command/response code."""
        return self.data[1:]


@dataclass(frozen=True)
class ChecksumError:
    """A frame whose length was consistent but whose data checksum (DCS) was wrong."""

    length: int


Frame = Ack | Nack | ErrorFrame | InformationFrame | ChecksumError


class FrameParser:
    """Streaming parser: feed bytes as they arrive, get complete frames back.

    Never raises for any input. ``garbage`` counts the bytes skipped while hunting for a
    start code (excluding preamble/postamble zeros) or dropped on a bad length checksum.
    """

    def __init__(self, max_buffer: int = 1 << 16) -> None:
        self._buf = bytearray()
        self._max = max_buffer
        self.garbage = 0

    def reset(self) -> None:
        """Forget any partial frame (e.g. after flushing the line)."""
        self._buf.clear()

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes; return every frame completed by them, in order."""
        self._buf += data
        out: list[Frame] = []
        while True:
            frame = self._next()
            if frame is None:
                break
            out.append(frame)
        if len(self._buf) > self._max:  # a frame can never be this long: drop the backlog
            self.garbage += len(self._buf)
            self._buf.clear()
        return out

    def _skip(self, n: int) -> None:
        self.garbage += sum(1 for b in self._buf[:n] if b != 0)
        del self._buf[:n]

    def _next(self) -> Frame | None:
        buf = self._buf
        while True:
            i = buf.find(START_CODE)
            if i < 0:
                # keep a trailing 0x00: it may be the first half of a start code
                keep = 1 if buf.endswith(b"\x00") else 0
                self._skip(len(buf) - keep)
                return None
            if i:
                self._skip(i)
            if len(buf) < 4:
                return None
            a, b = buf[2], buf[3]
            if a == 0x00 and b == 0xFF:  # ACK: 00 FF 00 FF (§6.2.1.3)
                del buf[:4]
                return Ack()
            if a == 0xFF and b == 0x00:  # NACK: 00 FF FF 00 (§6.2.1.4)
                del buf[:4]
                return Nack()
            if a == 0xFF and b == 0xFF:  # extended frame (§6.2.1.2)
                if len(buf) < 7:
                    return None
                lenm, lenl, lcs = buf[4], buf[5], buf[6]
                if (lenm + lenl + lcs) & 0xFF or (lenm << 8 | lenl) == 0:
                    self._skip(2)  # not a frame start after all: resynchronise
                    continue
                return self._body(7, lenm << 8 | lenl, extended=True)
            # normal frame (§6.2.1.1)
            length, lcs = a, b
            if (length + lcs) & 0xFF or length == 0:
                self._skip(2)
                continue
            return self._body(4, length, extended=False)

    def _body(self, start: int, length: int, *, extended: bool) -> Frame | None:
        buf = self._buf
        end = start + length  # index of DCS
        if len(buf) < end + 1:
            return None
        body = bytes(buf[start:end])
        dcs = buf[end]
        del buf[: end + 1]  # the postamble, if any, is skipped as a zero on the next call
        if (sum(body) + dcs) & 0xFF:
            return ChecksumError(length)
        if body == b"\x7f":
            return ErrorFrame()
        return InformationFrame(body[0], body[1:], extended)


def parse_all(data: bytes) -> list[Frame]:
    """Parse a complete byte string (tests, logs)."""
    return FrameParser().feed(data)
