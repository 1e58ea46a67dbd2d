"""NFC Forum Type 2 Tags on NXP NTAG215/216: the cheap cards clinics buy (NTAG213 is known
only to be refused: a card pass does not fit its 144 bytes).

Memory is 4-byte pages (NFC Forum T2T 1.0 §2, NXP NTAG213/215/216 datasheet rev. 3.2 §8.5):
page 0-2 UID, BCC and the static lock bytes (page 2 bytes 2-3), page 3 the capability
container (CC: E1, version 1.0, data area size / 8, access), user memory from page 4, then
the dynamic lock bytes and configuration pages. The NDEF message sits in an NDEF TLV
(T=03, one-byte length, or FF + two bytes from 255 on) ended by a terminator TLV (FE).

                  user memory   CC data area  pages   dynamic lock page   GET_VERSION storage byte
    NTAG213       144 bytes     144 (0x12)    0-44    40                  0x0F
    NTAG215       504 bytes     496 (0x3E)    0-134   130                 0x11
    NTAG216       888 bytes     872 (0x6D)    0-230   226                 0x13

* `Type2Tag`: the tag side for the emulator: READ (30h, 16 bytes, wraps like the chip),
  FAST_READ (3Ah), WRITE (A2h, honouring static and dynamic lock bits; the CC and lock bytes
  are OTP, bits only set), GET_VERSION (60h), READ_SIG (3Ch). Any other command makes the
  tag mute until it is activated again, as a real NTAG does.
* the reader side over two exchange functions (InDataExchange for READ/WRITE, which the
  PN532 handles as MIFARE Ultralight commands; InCommunicateThru for GET_VERSION and
  FAST_READ): `identify`, `read_ndef`, `write_ndef` (length written last, so a card pulled
  mid-write holds an empty message, never a truncated one) and `lock`.

Parsing errors are `kiosk.errors.FormatError`; a tag that refuses a command raises what the
exchange raises (NfcError).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from kiosk.errors import FormatError

READ, FAST_READ, WRITE, GET_VERSION, READ_SIG = 0x30, 0x3A, 0xA2, 0x60, 0x3C
ACK, NAK_ARGUMENT, NAK_WRITE = 0x0A, 0x00, 0x05
CC_MAGIC = 0xE1
TLV_NULL, TLV_LOCK, TLV_MEMORY, TLV_NDEF, TLV_TERMINATOR = 0x00, 0x01, 0x02, 0x03, 0xFE
FAST_READ_PAGES = 60  # 240 bytes: one normal PN532 frame with room to spare


@dataclass(frozen=True)
class Model:
    """An NTAG product: sizes and where its lock and configuration pages are."""

    name: str
    pages: int            # total pages
    user_end: int         # last user page (inclusive)
    cc_size: int          # CC byte 2: data area size / 8
    version: bytes        # GET_VERSION answer
    lock_pages: int = 16  # user pages per dynamic lock bit from page 16 (NTAG213: 2)

    @property
    def user_bytes(self) -> int:
        return (self.user_end - 3) * 4

    @property
    def dynamic_lock_page(self) -> int:
        return self.user_end + 1

    @property
    def ndef_capacity(self) -> int:
        """The longest NDEF message the CC's data area holds (TLV header, no terminator)."""
        area = self.cc_size * 8
        return area - 2 if area - 2 < 255 else area - 4


NTAG213 = Model("NTAG213", 45, 39, 0x12, bytes.fromhex("0004040201000F03"), lock_pages=2)
NTAG215 = Model("NTAG215", 135, 129, 0x3E, bytes.fromhex("0004040201001103"))
NTAG216 = Model("NTAG216", 231, 225, 0x6D, bytes.fromhex("0004040201001303"))
MODELS = {m.version: m for m in (NTAG213, NTAG215, NTAG216)}


def ndef_tlv(message: bytes) -> bytes:
    """The NDEF TLV around `message` (NFC Forum T2T §2.3.4)."""
    n = len(message)
    if n > 0xFFFE:
        raise ValueError("NDEF message too long for a TLV")
    head = bytes([TLV_NDEF, n]) if n < 255 else bytes([TLV_NDEF, 0xFF]) + n.to_bytes(2, "big")
    return head + message


# --- tag side (emulator) ---------------------------------------------------------------
class Type2Tag:
    """An NTAG in the emulator's field. `command` maps a raw command to the tag's answer:
    bytes (data), an int (a 4-bit ACK/NAK), or None (no answer: the reader times out)."""

    def __init__(self, uid: bytes, model: Model = NTAG216) -> None:
        if len(uid) != 7:
            raise ValueError("an NTAG has a 7-byte UID")
        self.model = model
        mem = bytearray(model.pages * 4)
        bcc0 = 0x88 ^ uid[0] ^ uid[1] ^ uid[2]
        bcc1 = uid[3] ^ uid[4] ^ uid[5] ^ uid[6]
        mem[0:12] = uid[0:3] + bytes([bcc0]) + uid[3:7] + bytes([bcc1, 0x48, 0x00, 0x00])
        # factory state: CC programmed, an empty NDEF TLV (NTAG datasheet §8.5.6)
        mem[12:16] = bytes([CC_MAGIC, 0x10, model.cc_size, 0x00])
        mem[16:20] = bytes([TLV_NDEF, 0x00, TLV_TERMINATOR, 0x00])
        cfg = model.user_end + 2
        mem[cfg * 4 + 3] = 0xFF  # AUTH0: no password protection
        self.memory = mem
        self.mute = False

    def reset(self) -> None:
        """A new activation wakes a muted tag."""
        self.mute = False

    @property
    def uid(self) -> bytes:
        return bytes(self.memory[0:3] + self.memory[4:8])

    def write_ndef_message(self, message: bytes) -> None:
        """Program an NDEF message directly (a card prepared elsewhere)."""
        tlv = ndef_tlv(message) + bytes([TLV_TERMINATOR])
        if len(tlv) - 1 > self.model.cc_size * 8:
            raise ValueError(f"{len(message)}-byte NDEF message does not fit an {self.model.name}")
        self.memory[16:16 + len(tlv)] = tlv

    def command(self, data: bytes) -> bytes | int | None:
        if self.mute or not data:
            return None
        cmd, n = data[0], self.model.pages
        if cmd == READ and len(data) == 2:
            if data[1] >= n:
                return NAK_ARGUMENT
            return bytes(self.memory[((data[1] + i) % n) * 4 + j] for i in range(4) for j in range(4))
        if cmd == FAST_READ and len(data) == 3:
            start, end = data[1], data[2]
            if start > end or end >= n:
                return NAK_ARGUMENT
            return bytes(self.memory[start * 4:(end + 1) * 4])
        if cmd == WRITE and len(data) == 6:
            return self._write(data[1], data[2:6])
        if cmd == GET_VERSION and len(data) == 1:
            return self.model.version
        if cmd == READ_SIG and len(data) == 2:
            return bytes(32)  # an emulated tag has no NXP originality signature
        self.mute = True  # unsupported command: the tag halts until the next activation
        return None

    def _locked(self, page: int) -> bool:
        m = self.memory
        if 3 <= page <= 7:
            return bool(m[10] >> page & 1)
        if 8 <= page <= 15:
            return bool(m[11] >> (page - 8) & 1)
        if 16 <= page <= self.model.user_end:
            dyn = self.model.dynamic_lock_page * 4
            bit = (page - 16) // self.model.lock_pages
            return bool(int.from_bytes(m[dyn:dyn + 2], "little") >> bit & 1)
        return False

    def _write(self, page: int, data: bytes) -> int:
        model = self.model
        if page < 2 or page >= model.pages - 2 or self._locked(page):  # PWD/PACK stay writable: not modelled
            return NAK_WRITE
        at = page * 4
        if page == 2:  # only the lock bytes, and only bits set (OTP)
            self.memory[10] |= data[2]
            self.memory[11] |= data[3]
        elif page in (3, model.dynamic_lock_page):  # OTP: bits are only ever set
            for i in range(4):
                self.memory[at + i] |= data[i]
        else:
            self.memory[at:at + 4] = data
        return ACK


# --- reader side ------------------------------------------------------------------------
Exchange = Callable[[bytes], bytes]


@dataclass(frozen=True)
class TagInfo:
    """What a tag told us: its model (None for a Type 2 tag without GET_VERSION), the CC."""

    model: Model | None
    cc: bytes

    @property
    def data_area(self) -> int:
        return self.cc[2] * 8

    @property
    def writable(self) -> bool:
        return self.cc[3] & 0x0F == 0


def identify(exchange: Exchange, thru: Exchange | None = None) -> TagInfo:
    """GET_VERSION (when `thru` is given) and the CC; FormatError on a tag without NDEF."""
    model = None
    if thru is not None:
        model = MODELS.get(bytes(thru(bytes([GET_VERSION]))))
    block = exchange(bytes([READ, 3]))
    if len(block) != 16:
        raise FormatError("Type 2 READ answered with the wrong length")
    cc = bytes(block[:4])
    if cc[0] != CC_MAGIC or cc[1] >> 4 != 1:
        raise FormatError("no NDEF capability container on this tag")
    return TagInfo(model, cc)


def _reader(exchange: Exchange, thru: Exchange | None, info: TagInfo) -> Callable[[int, int], bytes]:
    def read(start: int, count: int) -> bytes:
        """`count` pages from `start`, by FAST_READ where the tag has it, else READ."""
        out = bytearray()
        page, end = start, start + count
        while page < end:
            if thru is not None and info.model is not None:
                last = min(end, page + FAST_READ_PAGES) - 1
                chunk = bytes(thru(bytes([FAST_READ, page, last])))
                if len(chunk) != (last - page + 1) * 4:
                    raise FormatError("FAST_READ answered with the wrong length")
            else:
                chunk = bytes(exchange(bytes([READ, page])))
                if len(chunk) != 16:
                    raise FormatError("READ answered with the wrong length")
            out += chunk
            page += len(chunk) // 4
        return bytes(out[:count * 4])
    return read


def read_ndef(exchange: Exchange, thru: Exchange | None = None, max_size: int = 8192) -> bytes:
    """The NDEF message of a Type 2 tag (empty bytes for an empty one)."""
    info = identify(exchange, thru)
    read = _reader(exchange, thru, info)
    area = min(info.data_area, max_size + 8)
    if area <= 0:
        raise FormatError("the CC declares no data area")
    head = read(4, min(4, -(-area // 4)))
    data = bytearray(head)
    i = 0
    while i < area:
        while i + 4 > len(data) and len(data) < area:  # TLV headers are at most 4 bytes
            data += read(4 + len(data) // 4, min(FAST_READ_PAGES, -(-(area - len(data)) // 4)))
        t = data[i]
        if t == TLV_NULL:
            i += 1
            continue
        if t == TLV_TERMINATOR:
            return b""
        if i + 1 >= len(data):
            break
        length, hdr = data[i + 1], 2
        if length == 0xFF:
            length, hdr = int.from_bytes(data[i + 2:i + 4], "big"), 4
        start, end = i + hdr, i + hdr + length
        if end > area or length > max_size:
            raise FormatError("a TLV runs past the tag's data area")
        if t == TLV_NDEF:
            if len(data) < end:
                data += read(4 + len(data) // 4, -(-(end - len(data)) // 4))
            return bytes(data[start:end])
        if t not in (TLV_LOCK, TLV_MEMORY) and t < 0xFD:
            raise FormatError(f"unknown TLV {t:#04x} before the NDEF message")
        i = end
    raise FormatError("no NDEF TLV on this tag")


def write_ndef(exchange: Exchange, message: bytes, info: TagInfo) -> int:
    """Write `message` as the tag's NDEF TLV; returns the bytes written. The first page
    is written twice: empty first, complete last (NFC Forum T2T §2.4 write order)."""
    if not info.writable:
        raise FormatError("the tag is read-only (its CC says so)")
    tlv = ndef_tlv(message)
    if len(tlv) > info.data_area:
        name = info.model.name if info.model else "Type 2 tag"
        area = info.data_area
        most = area - 2 if area - 2 < 255 else area - 4
        raise FormatError(f"the {len(message)}-byte NDEF message does not fit this {name}: its data area "
                          f"is {area} bytes, a message {most} bytes at most (use an NTAG215 or NTAG216)")
    if len(tlv) < info.data_area:
        tlv += bytes([TLV_TERMINATOR])
    tlv += bytes(-len(tlv) % 4)
    pages = [tlv[i:i + 4] for i in range(0, len(tlv), 4)]
    _write(exchange, 4, bytes([TLV_NDEF, 0x00, TLV_TERMINATOR, 0x00]))
    for n, page in enumerate(pages[1:], start=5):
        _write(exchange, n, page)
    _write(exchange, 4, pages[0])
    return len(tlv)


def lock(exchange: Exchange, info: TagInfo) -> None:
    """Make the tag read-only for good: CC access nibble 0F, static and dynamic lock bits."""
    if info.model is None:
        raise FormatError("locking needs a known NTAG model (its dynamic lock page)")
    _write(exchange, 3, info.cc[:3] + bytes([0x0F]))
    _write(exchange, info.model.dynamic_lock_page, b"\xff\xff\xff\x00")
    _write(exchange, 2, b"\x00\x00\xff\xff")


def _write(exchange: Exchange, page: int, data: bytes) -> None:
    exchange(bytes([WRITE, page]) + data)
