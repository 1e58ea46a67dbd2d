"""ISO/IEC 7816-4 command and response APDUs (§5.1 command-response pairs, §5.6 status).

Pure data: `CommandApdu.decode` and `ResponseApdu.decode` raise only
`kiosk.errors.FormatError` on malformed bytes; `encode` chooses short or extended length
fields (§5.1: short Lc 1..255 / Le 1..256; extended Lc 1..65535 / Le 1..65536).
"""
from __future__ import annotations

from dataclasses import dataclass

from kiosk.errors import FormatError

# status words (ISO/IEC 7816-4 §5.6, tables 5-6)
SW_OK = 0x9000
SW_END_OF_FILE = 0x6282  # fewer than Le bytes: end of file reached
SW_WRONG_LENGTH = 0x6700
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_WRONG_DATA = 0x6A80
SW_FILE_NOT_FOUND = 0x6A82  # also "application not found"
SW_WRONG_P1P2 = 0x6A86
SW_OFFSET_OUTSIDE_EF = 0x6B00
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW_UNKNOWN = 0x6F00
SW_BYTES_REMAINING = 0x6100  # 61xx: xx more bytes via GET RESPONSE (00 = 256 or more)

INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_GET_RESPONSE = 0xC0


@dataclass(frozen=True)
class CommandApdu:
    """A command APDU. `le` is the expected response length: None = absent (cases 1/3),
    1..65536 otherwise (256 / 65536 encode as 00 / 0000)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def encode(self) -> bytes:
        """Encode per §5.1; extended fields only when the data or Le need them."""
        for v in (self.cla, self.ins, self.p1, self.p2):
            if not 0 <= v <= 0xFF:
                raise ValueError("header byte out of range")
        if len(self.data) > 65535 or (self.le is not None and not 1 <= self.le <= 65536):
            raise ValueError("length out of range")
        head = bytes([self.cla, self.ins, self.p1, self.p2])
        extended = len(self.data) > 255 or (self.le is not None and self.le > 256)
        out = head
        if extended:
            out += b"\x00"
            if self.data:
                out += len(self.data).to_bytes(2, "big") + self.data
            if self.le is not None:
                out += (self.le & 0xFFFF).to_bytes(2, "big")
        else:
            if self.data:
                out += bytes([len(self.data)]) + self.data
            if self.le is not None:
                out += bytes([self.le & 0xFF])
        return out

    @classmethod
    def decode(cls, raw: bytes) -> CommandApdu:
        """Parse the seven cases of §5.1 (1, 2S, 3S, 4S, 2E, 3E, 4E); FormatError otherwise."""
        raw = bytes(raw)
        n = len(raw)
        if n < 4:
            raise FormatError("APDU shorter than its header")
        cla, ins, p1, p2 = raw[:4]
        if n == 4:  # case 1
            return cls(cla, ins, p1, p2)
        b = raw[4]
        if n == 5:  # case 2S
            return cls(cla, ins, p1, p2, le=b or 256)
        if b != 0:  # short Lc
            end = 5 + b
            if n == end:  # case 3S
                return cls(cla, ins, p1, p2, raw[5:end])
            if n == end + 1:  # case 4S
                return cls(cla, ins, p1, p2, raw[5:end], raw[end] or 256)
            raise FormatError("APDU length does not match Lc")
        if n < 7:
            raise FormatError("truncated extended length field")
        ext = int.from_bytes(raw[5:7], "big")
        if n == 7:  # case 2E
            return cls(cla, ins, p1, p2, le=ext or 65536)
        if ext == 0:
            raise FormatError("extended Lc of zero")
        end = 7 + ext
        if n == end:  # case 3E
            return cls(cla, ins, p1, p2, raw[7:end])
        if n == end + 2:  # case 4E
            le = int.from_bytes(raw[end:end + 2], "big")
            return cls(cla, ins, p1, p2, raw[7:end], le or 65536)
        raise FormatError("APDU length does not match extended Lc")


@dataclass(frozen=True)
class ResponseApdu:
    """A response APDU: data and the status word SW1-SW2 (§5.1)."""

    data: bytes
    sw: int

    @property
    def ok(self) -> bool:
        """SW 9000."""
        return self.sw == SW_OK

    def encode(self) -> bytes:
        """Data followed by SW1 SW2."""
        return bytes(self.data) + self.sw.to_bytes(2, "big")

    @classmethod
    def decode(cls, raw: bytes) -> ResponseApdu:
        """Split the trailing status word; FormatError when there is none."""
        raw = bytes(raw)
        if len(raw) < 2:
            raise FormatError("response APDU without a status word")
        return cls(raw[:-2], int.from_bytes(raw[-2:], "big"))


def status(sw: int, data: bytes = b"") -> bytes:
    """Encode a response: `data` then the status word."""
    return ResponseApdu(data, sw).encode()


def select_aid(aid: bytes, le: int | None = 256) -> CommandApdu:
    """SELECT by DF name (P1=04, first or only occurrence, FCI returned) (§11.2.2)."""
    return CommandApdu(0x00, INS_SELECT, 0x04, 0x00, aid, le)


def select_file(fid: bytes) -> CommandApdu:
    """SELECT EF by file identifier (P1=00, P2=0C: no response data) (§11.2.2)."""
    return CommandApdu(0x00, INS_SELECT, 0x00, 0x0C, fid)


def read_binary(offset: int, le: int) -> CommandApdu:
    """READ BINARY with a 15-bit offset in P1-P2 (§11.3.3, P1 bit 8 = 0)."""
    if not 0 <= offset <= 0x7FFF:
        raise ValueError("offset out of range")
    return CommandApdu(0x00, INS_READ_BINARY, offset >> 8, offset & 0xFF, le=le)
