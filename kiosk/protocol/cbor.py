"""The one CBOR policy of the project: a deterministic encoder and a strict decoder.

Encoding is RFC 8949 §4.2.1 core deterministic: shortest heads, definite lengths, map keys
sorted bytewise by their encoding, floats in their shortest exact form. The same value
always gives the same bytes, so a resent record is byte-identical and a signature covers
one encoding only.

Decoding runs in two steps. A scan walks the raw bytes without building anything and
refuses, before any object exists:
  - malformed input (truncated, reserved head values, a lone break marker, bad UTF-8,
    trailing bytes);
  - shared references (tags 28/29, which expand exponentially), and every tag except the
    ones the caller's format uses, at the root only (COSE_Sign1's 18);
  - map keys other than integers and text strings, duplicate keys, simple values other than
    false/true/null;
  - more than `max_items` items, nesting deeper than `max_depth`, more than `max_bytes` bytes;
  - with `deterministic` (the default: every format we decode is one we encode), any
    encoding but the deterministic one.
Only then does cbor2 build the value, from bytes that can no longer surprise it. Every
failure is a FormatError that names the format and the offset, never the content.
"""
from __future__ import annotations

import math
import struct
from collections.abc import Collection
from typing import Any

import cbor2

from kiosk.errors import FormatError, Reason

MAX_DEPTH = 16
MAX_ITEMS = 1 << 17
MAX_BYTES = 1 << 20
SHARED_REF_TAGS = (28, 29)  # RFC 8949 value sharing: refused everywhere


# ----------------------------------------------------------------------------- encoding

def dumps(value: Any) -> bytes:
    """Encode `value` as RFC 8949 §4.2.1 core deterministic CBOR.

    Takes None, bool, int (64-bit range), float, bytes, str, list/tuple, dict (int or str
    keys) and cbor2.CBORTag; anything else is a TypeError (a bug, not input).
    """
    if _text_keyed(value, 0):
        # cbor2's C encoder writes these values exactly as _encode does: for text keys its
        # length-first `canonical` order is the bytewise order (a text string's head grows
        # with its length), and ints, strings, arrays and tags take their shortest heads
        return cbor2.dumps(value, canonical=True)
    out = bytearray()
    _encode(value, out)
    return bytes(out)


def _text_keyed(v: Any, depth: int) -> bool:
    """True if `v` holds only maps with text keys, arrays, tags, bytes, text, 64-bit
    integers, booleans and null: the values cbor2's canonical encoding writes as ours."""
    if v is None or v is True or v is False or type(v) in (bytes, str):
        return True
    if type(v) is int:
        return -(1 << 64) <= v < 1 << 64
    if depth > 64:
        return False  # let _encode deal with it
    if type(v) is dict:
        return all(type(k) is str and _text_keyed(x, depth + 1) for k, x in v.items())
    if type(v) in (list, tuple):
        return all(_text_keyed(x, depth + 1) for x in v)
    if type(v) is cbor2.CBORTag:
        return _text_keyed(v.value, depth + 1)
    return False  # floats, int keys, bytearray, other types: the encoder below


def _head(major: int, n: int, out: bytearray) -> None:
    if n < 24:
        out.append(major << 5 | n)
    elif n < 0x100:
        out += bytes((major << 5 | 24, n))
    elif n < 0x10000:
        out.append(major << 5 | 25)
        out += n.to_bytes(2, "big")
    elif n < 0x100000000:
        out.append(major << 5 | 26)
        out += n.to_bytes(4, "big")
    else:
        out.append(major << 5 | 27)
        out += n.to_bytes(8, "big")


def _encode(v: Any, out: bytearray) -> None:
    if v is None:
        out.append(0xF6)
    elif v is True:
        out.append(0xF5)
    elif v is False:
        out.append(0xF4)
    elif isinstance(v, int):
        if 0 <= v < 1 << 64:
            _head(0, v, out)
        elif -(1 << 64) <= v < 0:
            _head(1, -1 - v, out)
        else:
            raise ValueError("integer outside the 64-bit range CBOR encodes without a bignum")
    elif isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        _head(2, len(b), out)
        out += b
    elif isinstance(v, str):
        b = v.encode("utf-8")
        _head(3, len(b), out)
        out += b
    elif isinstance(v, (list, tuple)):
        _head(4, len(v), out)
        for x in v:
            _encode(x, out)
    elif isinstance(v, dict):
        items = sorted((dumps(k), x) for k, x in _keyed(v))
        for (a, _), (b, _) in zip(items, items[1:], strict=False):
            if a == b:
                raise ValueError("two map keys encode the same")
        _head(5, len(items), out)
        for kb, x in items:
            out += kb
            _encode(x, out)
    elif isinstance(v, float):
        out += _float(v)
    elif isinstance(v, cbor2.CBORTag):
        _head(6, v.tag, out)
        _encode(v.value, out)
    else:
        raise TypeError(f"cannot encode {type(v).__name__} as CBOR")


def _keyed(m: dict) -> list[tuple[Any, Any]]:
    for k in m:
        if isinstance(k, bool) or not isinstance(k, (int, str)):
            raise TypeError("map keys are integers or text")
    return list(m.items())


def _float(v: float) -> bytes:
    if math.isnan(v):
        return b"\xf9\x7e\x00"
    for code, fmt in ((0xF9, ">e"), (0xFA, ">f")):
        try:
            packed = struct.pack(fmt, v)
        except OverflowError:
            continue
        if struct.unpack(fmt, packed)[0] == v:
            return bytes((code,)) + packed
    return b"\xfb" + struct.pack(">d", v)


# ----------------------------------------------------------------------------- decoding

def loads(data: bytes, what: str = "CBOR", *, tags: Collection[int] = (), max_bytes: int = MAX_BYTES,
          max_items: int = MAX_ITEMS, max_depth: int = MAX_DEPTH, deterministic: bool = True) -> Any:
    """Decode exactly one CBOR item under the project's policy (see the module doc).

    `tags`: the tags the format uses, accepted only on the root item (or on a tag's content
    there: a CWT tag around a COSE tag). `deterministic=False` only for formats others encode
    (an EU DCC); every other rule still holds. Any failure is a FormatError naming `what`.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FormatError(f"{what}: expected bytes")
    data = bytes(data)
    if len(data) > max_bytes:
        raise FormatError(f"{what}: larger than the size limit ({max_bytes} bytes)",
                          reason=Reason.TOO_LARGE.value)
    _Scan(data, what, frozenset(tags), max_items, max_depth, deterministic).run()
    try:
        return cbor2.loads(data)
    except Exception as e:  # noqa: BLE001 - the scan passed, so this would be a cbor2 quirk
        raise FormatError(f"{what}: not valid CBOR ({type(e).__name__})") from None


class _Scan:
    """Walk the encoded bytes once, building nothing; raise FormatError on any violation.

    Recursion is bounded by `max_depth` (checked before descending), so it cannot exhaust
    the stack whatever the input.
    """

    def __init__(self, data: bytes, what: str, tags: frozenset[int], max_items: int, max_depth: int,
                 deterministic: bool) -> None:
        self.data, self.what, self.tags = data, what, tags
        self.max_items, self.max_depth, self.det = max_items, max_depth, deterministic
        self.items = 0

    def fail(self, why: str, pos: int) -> FormatError:
        return FormatError(f"{self.what}: {why} (at byte {pos})")

    def run(self) -> None:
        if not self.data:
            raise FormatError(f"{self.what}: empty")
        end = self.item(0, 0, root=True)
        if end != len(self.data):
            raise self.fail("trailing bytes after the CBOR item", end)

    def head(self, pos: int) -> tuple[int, int, int | None, int]:
        """(major type, additional info, argument or None if indefinite, position after)."""
        data = self.data
        if pos >= len(data):
            raise self.fail("truncated", pos)
        ib = data[pos]
        major, info = ib >> 5, ib & 0x1F
        if info < 24:
            return major, info, info, pos + 1
        if info < 28:
            size = 1 << (info - 24)
            if pos + 1 + size > len(data):
                raise self.fail("truncated", pos)
            arg = int.from_bytes(data[pos + 1:pos + 1 + size], "big")
            if self.det and major != 7 and arg < (24 if size == 1 else 1 << (4 * size)):
                raise self.fail("not the shortest encoding of a length or value", pos)
            return major, info, arg, pos + 1 + size
        if info == 31 and major in (2, 3, 4, 5, 7):
            return major, info, None, pos + 1
        raise self.fail("reserved or invalid initial byte", pos)

    def count(self, pos: int, depth: int) -> None:
        self.items += 1
        if self.items > self.max_items:
            raise self.fail(f"more than {self.max_items} items", pos)
        if depth > self.max_depth:
            raise self.fail("nested too deeply", pos)

    def item(self, pos: int, depth: int, root: bool = False) -> int:
        self.count(pos, depth)
        start = pos
        major, info, arg, pos = self.head(pos)
        if major in (0, 1):
            return pos
        if major in (2, 3):
            if arg is None:
                return self.chunks(major, pos, start)
            return self.string(major, arg, pos, start)
        if major == 4:
            if arg is None:
                self.indefinite(start)
                while not self.peek_break(pos):
                    pos = self.item(pos, depth + 1)
                return pos + 1
            self.room(arg, pos, start)
            for _ in range(arg):
                pos = self.item(pos, depth + 1)
            return pos
        if major == 5:
            return self.map(arg, pos, depth, start)
        if major == 6:
            assert arg is not None
            if arg in SHARED_REF_TAGS:
                raise self.fail("CBOR shared references (tags 28/29) are refused", start)
            if not root or arg not in self.tags:
                raise self.fail(f"CBOR tag {arg} is not used by this format", start)
            return self.item(pos, depth + 1, root=True)  # a tag may tag a tag (CWT 61 around 18)
        return self.simple(info, arg, pos, start)

    def string(self, major: int, n: int, pos: int, start: int) -> int:
        if n > len(self.data) - pos:
            raise self.fail("truncated", start)
        if major == 3:
            try:
                self.data[pos:pos + n].decode("utf-8")
            except UnicodeDecodeError:
                raise self.fail("text is not valid UTF-8", start) from None
        return pos + n

    def chunks(self, major: int, pos: int, start: int) -> int:
        self.indefinite(start)
        while not self.peek_break(pos):
            m, _, n, after = self.head(pos)
            if m != major or n is None:
                raise self.fail("bad chunk in an indefinite-length string", pos)
            self.count(pos, 0)
            pos = self.string(major, n, after, pos)
        return pos + 1

    def map(self, n: int | None, pos: int, depth: int, start: int) -> int:
        if n is None:
            self.indefinite(start)
        else:
            self.room(2 * n, pos, start)
        seen: set[Any] = set()
        prev: bytes | None = None
        left = n
        while (left > 0) if left is not None else not self.peek_break(pos):
            key_at = pos
            pos = self.key(pos, depth + 1)
            raw = self.data[key_at:pos]
            if self.det:
                if prev is not None and raw <= prev:
                    raise self.fail("duplicate map key" if raw == prev else
                                    "map keys are not in deterministic order", key_at)
                prev = raw
            else:
                k = cbor2.loads(raw)  # an integer or text the scan has checked: safe to build
                if k in seen:
                    raise self.fail("duplicate map key", key_at)
                seen.add(k)
            if left is None and self.peek_break(pos):
                raise self.fail("map key without a value", pos)
            pos = self.item(pos, depth + 1)
            if left is not None:
                left -= 1
        return pos if n is not None else pos + 1

    def key(self, pos: int, depth: int) -> int:
        if pos < len(self.data) and self.data[pos] >> 5 not in (0, 1, 3):
            raise self.fail("map keys must be integers or text", pos)
        return self.item(pos, depth)

    def simple(self, info: int, arg: int | None, pos: int, start: int) -> int:
        if info in (20, 21, 22):  # false, true, null
            return pos
        if arg is None:
            raise self.fail("a break marker outside an indefinite-length item", start)
        if info in (25, 26, 27):
            if self.det and not self.shortest_float(info, start, pos):
                raise self.fail("float not in its shortest form", start)
            return pos
        raise self.fail("simple value not used by this format", start)

    def shortest_float(self, info: int, start: int, end: int) -> bool:
        raw = self.data[start + 1:end]
        v = struct.unpack({25: ">e", 26: ">f", 27: ">d"}[info], raw)[0]
        return _float(v) == self.data[start:end]

    def indefinite(self, start: int) -> None:
        if self.det:
            raise self.fail("indefinite length where the deterministic encoding is required", start)

    def peek_break(self, pos: int) -> bool:
        if pos >= len(self.data):
            raise self.fail("truncated", pos)
        return self.data[pos] == 0xFF

    def room(self, n: int, pos: int, start: int) -> None:
        # every item takes at least one byte: a count beyond the bytes left is a lie
        if n > len(self.data) - pos:
            raise self.fail("truncated (more items announced than bytes left)", start)


# ----------------------------------------------------------------------------- checking

def expect_map(value: Any, what: str, required: dict[Any, type | tuple[type, ...]],
               optional: dict[Any, type | tuple[type, ...]] | None = None,
               allow_unknown: bool = False) -> dict:
    """Check that `value` is a map with the required keys of the given types.

    Names the missing or mistyped key (one of ours, never the input's text) in the
    FormatError; unknown keys are counted, not quoted, since they are the sender's text.
    """
    if not isinstance(value, dict):
        raise FormatError(f"{what}: expected a map")
    optional = optional or {}
    for key, typ in required.items():
        if key not in value:
            raise FormatError(f"{what}: missing field {key!r}")
        _check_type(value[key], typ, what, key)
    for key, typ in optional.items():
        if key in value and value[key] is not None:
            _check_type(value[key], typ, what, key)
    if not allow_unknown:
        unknown = set(value) - set(required) - set(optional)
        if unknown:
            kinds = ", ".join(sorted({type(k).__name__ for k in unknown}))
            raise FormatError(f"{what}: {len(unknown)} unknown field(s) (keys of type {kinds})")
    return value


def _check_type(v: Any, typ: type | tuple[type, ...], what: str, key: Any) -> None:
    types = typ if isinstance(typ, tuple) else (typ,)
    # bool is an int in Python; CBOR keeps them apart, so do we
    if isinstance(v, bool) and bool not in types:
        raise FormatError(f"{what}: field {key!r} has the wrong type")
    if not isinstance(v, types):
        raise FormatError(f"{what}: field {key!r} has the wrong type")
