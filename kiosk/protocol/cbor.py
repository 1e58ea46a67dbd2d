"""Deterministic CBOR (RFC 8949 §4.2.1 core deterministic encoding) and a strict decoder.

Every signed structure of the project is encoded here, so the same value always gives the
same bytes (a resent record is byte-identical) and decoding failures become FormatError.
"""
from __future__ import annotations

import io
from typing import Any

import cbor2

from kiosk.errors import FormatError

MAX_DEPTH = 16


def dumps(value: Any) -> bytes:
    """Encode `value` with deterministic CBOR (shortest forms, sorted map keys)."""
    return cbor2.dumps(value, canonical=True)


def loads(data: bytes, what: str = "CBOR") -> Any:
    """Decode one CBOR item; trailing bytes, bad encodings and deep nesting are FormatError."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FormatError(f"{what}: expected bytes")
    data = bytes(data)
    fp = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(fp).decode()
    except RecursionError:
        raise FormatError(f"{what}: nested too deeply") from None
    except Exception as e:  # cbor2 raises CBORDecodeError, ValueError, TypeError, OverflowError…
        raise FormatError(f"{what}: not valid CBOR ({type(e).__name__})") from None
    if fp.tell() != len(data):
        raise FormatError(f"{what}: trailing bytes after the CBOR item at offset {fp.tell()}")
    _check_depth(value, what, 0)
    return value


def _check_depth(value: Any, what: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise FormatError(f"{what}: nested too deeply")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_depth(k, what, depth + 1)
            _check_depth(v, what, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check_depth(v, what, depth + 1)


def expect_map(value: Any, what: str, required: dict[Any, type | tuple[type, ...]],
               optional: dict[Any, type | tuple[type, ...]] | None = None,
               allow_unknown: bool = False) -> dict:
    """Check that `value` is a map with the required keys of the given types.

    Names the missing or mistyped key (never its value) in the FormatError.
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
            raise FormatError(f"{what}: unknown field {sorted(map(repr, unknown))[0]}")
    return value


def _check_type(v: Any, typ: type | tuple[type, ...], what: str, key: Any) -> None:
    types = typ if isinstance(typ, tuple) else (typ,)
    # bool is an int in Python; CBOR keeps them apart, so do we
    if isinstance(v, bool) and bool not in types:
        raise FormatError(f"{what}: field {key!r} has the wrong type")
    if not isinstance(v, types):
        raise FormatError(f"{what}: field {key!r} has the wrong type")
