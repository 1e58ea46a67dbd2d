"""NFC Forum Type 4 Tag: NDEF over ISO 7816-4 (NFC Forum T4T spec v2.0, "NDEF mapping").

* the tag side (`Type4Tag`) answers SELECT of the NDEF application D2760000850101, SELECT of
  the capability container E103 and the NDEF file E104, and READ BINARY — enough for our
  emulator to host a clinic-issued card that nfcpy and our reader both read;
* the reader side (`read_ndef`) runs that sequence over any APDU exchange function;
* a minimal NDEF record codec (NFC Forum NDEF 1.0 §3.2) and our external type
  ``urn:nfc:ext:kiosk.example:pass`` (TNF 0x04, type ``kiosk.example:pass``), whose payload
  is the pass's COSE_Sign1 bytes.

Parsing raises only `kiosk.errors.FormatError`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kiosk.errors import FormatError
from kiosk.hardware.nfc import apdu as A

NDEF_AID = bytes.fromhex("D2760000850101")  # T4T v2.0
CC_FILE = b"\xE1\x03"
NDEF_FILE = b"\xE1\x04"
MLE = 0x00F0  # max R-APDU data we send: one short frame through the PN532
MLC = 0x00F0
TNF_EXTERNAL = 0x04
PASS_TYPE = b"kiosk.example:pass"  # NFC Forum RTD 1.0 §3.3 external type name


# --- NDEF records -------------------------------------------------------------------
@dataclass(frozen=True)
class NdefRecord:
    """One NDEF record (chunked records are not supported)."""

    tnf: int
    type: bytes
    payload: bytes
    id: bytes = b""


def encode_message(records: list[NdefRecord]) -> bytes:
    """Encode records as one NDEF message (MB on the first, ME on the last)."""
    out = bytearray()
    for i, r in enumerate(records):
        short = len(r.payload) < 256
        flags = (0x80 if i == 0 else 0) | (0x40 if i == len(records) - 1 else 0)
        flags |= (0x10 if short else 0) | (0x08 if r.id else 0) | (r.tnf & 0x07)
        out.append(flags)
        out.append(len(r.type))
        out += len(r.payload).to_bytes(1 if short else 4, "big")
        if r.id:
            out.append(len(r.id))
        out += r.type + r.id + r.payload
    return bytes(out)


def decode_message(data: bytes) -> list[NdefRecord]:
    """Decode an NDEF message; FormatError on anything malformed or chunked."""
    records: list[NdefRecord] = []
    i, n = 0, len(data)
    while i < n:
        flags = data[i]
        if (flags & 0x80) != (0x80 if not records else 0):
            raise FormatError("NDEF message-begin flag out of place")
        if flags & 0x20:
            raise FormatError("chunked NDEF records are not supported")
        try:
            type_len = data[i + 1]
            j = i + 2
            if flags & 0x10:
                plen, j = data[j], j + 1
            else:
                if j + 4 > n:
                    raise IndexError
                plen, j = int.from_bytes(data[j:j + 4], "big"), j + 4
            id_len = 0
            if flags & 0x08:
                id_len, j = data[j], j + 1
        except IndexError:
            raise FormatError("truncated NDEF record header") from None
        end = j + type_len + id_len + plen
        if end > n:
            raise FormatError("NDEF record runs past the message")
        t = data[j:j + type_len]
        rid = data[j + type_len:j + type_len + id_len]
        records.append(NdefRecord(flags & 0x07, bytes(t), bytes(data[end - plen:end]), bytes(rid)))
        i = end
        if flags & 0x40:
            if i != n:
                raise FormatError("bytes after the NDEF message-end record")
            return records
    raise FormatError("NDEF message without a message-end record")


def pass_message(pass_bytes: bytes) -> bytes:
    """An NDEF message holding one pass record."""
    return encode_message([NdefRecord(TNF_EXTERNAL, PASS_TYPE, bytes(pass_bytes))])


def extract_pass(message: bytes) -> bytes | None:
    """The payload of the first pass record in an NDEF message, or None."""
    for r in decode_message(message):
        if r.tnf == TNF_EXTERNAL and r.type.lower() == PASS_TYPE:
            return r.payload
    return None


# --- tag side -----------------------------------------------------------------------
class Type4Tag:
    """A read-only Type 4 Tag holding one NDEF message. `process` never raises."""

    def __init__(self, ndef_message: bytes) -> None:
        if len(ndef_message) > 0x7FFD:
            raise ValueError("NDEF message too long for a short-length NDEF file")
        self.ndef_file = len(ndef_message).to_bytes(2, "big") + ndef_message
        # CC file (T4T v2.0 §5.1): CCLEN, mapping version 2.0, MLe, MLc, NDEF File Control
        # TLV (T=04 L=06: file id, max size, read access 00, write access FF = read-only)
        self.cc_file = (
            (15).to_bytes(2, "big") + b"\x20" + MLE.to_bytes(2, "big") + MLC.to_bytes(2, "big")
            + b"\x04\x06" + NDEF_FILE + len(self.ndef_file).to_bytes(2, "big") + b"\x00\xFF"
        )
        self.reset()

    def reset(self) -> None:
        """New activation: nothing selected."""
        self._app = False
        self._file: bytes | None = None

    def process(self, command: bytes) -> bytes:
        """Answer one command APDU."""
        try:
            c = A.CommandApdu.decode(command)
        except FormatError:
            return A.status(A.SW_WRONG_LENGTH)
        if c.cla != 0x00:
            return A.status(A.SW_CLA_NOT_SUPPORTED)
        if c.ins == A.INS_SELECT:
            return self._select(c)
        if c.ins == A.INS_READ_BINARY:
            return self._read(c)
        return A.status(A.SW_INS_NOT_SUPPORTED)

    def _select(self, c: A.CommandApdu) -> bytes:
        if c.p1 == 0x04:
            self._app = c.data == NDEF_AID
            self._file = None
            return A.status(A.SW_OK if self._app else A.SW_FILE_NOT_FOUND)
        if c.p1 == 0x00 and c.p2 in (0x00, 0x0C):
            if not self._app:
                return A.status(A.SW_CONDITIONS_NOT_SATISFIED)
            files = {CC_FILE: self.cc_file, NDEF_FILE: self.ndef_file}
            self._file = files.get(c.data)
            return A.status(A.SW_OK if self._file is not None else A.SW_FILE_NOT_FOUND)
        return A.status(A.SW_WRONG_P1P2)

    def _read(self, c: A.CommandApdu) -> bytes:
        if self._file is None:
            return A.status(A.SW_CONDITIONS_NOT_SATISFIED)
        if c.p1 & 0x80:
            return A.status(A.SW_WRONG_P1P2)
        offset = c.p1 << 8 | c.p2
        if offset >= len(self._file):
            return A.status(A.SW_OFFSET_OUTSIDE_EF)
        le = min(c.le or 256, 256)
        chunk = self._file[offset:offset + le]
        return A.status(A.SW_OK if len(chunk) == le else A.SW_END_OF_FILE, chunk)


# --- reader side --------------------------------------------------------------------
Exchange = Callable[[bytes], bytes]


def _ok(rapdu: bytes, what: str) -> bytes:
    r = A.ResponseApdu.decode(rapdu)
    if r.sw not in (A.SW_OK, A.SW_END_OF_FILE):
        raise FormatError(f"{what} refused (SW {r.sw:04X})")
    return r.data


def read_ndef(exchange: Exchange, max_size: int = 0x7FFF) -> bytes:
    """Read the NDEF message of a Type 4 Tag through `exchange` (C-APDU -> R-APDU).

    FormatError when the tag has no NDEF application or answers inconsistently; the
    exchange's own errors pass through.
    """
    # NDEF Tag Application Select carries Le=00 (NFC Forum T4T 2.0 §5.4.2)
    _ok(exchange(A.select_aid(NDEF_AID, le=256).encode()), "NDEF application select")
    _ok(exchange(A.select_file(CC_FILE).encode()), "CC select")
    cc = _ok(exchange(A.read_binary(0, 15).encode()), "CC read")
    if len(cc) < 15 or cc[7:9] != b"\x04\x06" or cc[2] >> 4 not in (2, 3):
        raise FormatError("unusable capability container")
    mle = max(1, min(int.from_bytes(cc[3:5], "big"), MLE))
    file_id = cc[9:11]
    _ok(exchange(A.select_file(file_id).encode()), "NDEF file select")
    nlen_bytes = _ok(exchange(A.read_binary(0, 2).encode()), "NLEN read")
    if len(nlen_bytes) != 2:
        raise FormatError("NDEF length field unreadable")
    nlen = int.from_bytes(nlen_bytes, "big")
    if nlen > max_size or nlen > int.from_bytes(cc[11:13], "big"):
        raise FormatError("NDEF length beyond the file")
    data = bytearray()
    while len(data) < nlen:
        chunk = _ok(exchange(A.read_binary(2 + len(data), min(mle, nlen - len(data))).encode()),
                    "NDEF read")
        if not chunk:
            raise FormatError("NDEF file ended early")
        data += chunk
    return bytes(data[:nlen])
