"""QR text: prefix + base45 (RFC 9285) of zlib(CBOR) — the EU DCC layering.

The same prefix carries a bare pass (a COSE_Sign1) or a QR presentation (a CBOR map with
the pass inside); `patient_pass` and `presentation` tell them apart after decoding.
"""
from __future__ import annotations

import zlib

import base45

from kiosk.errors import FormatError

PREFIX = "KP1:"
MAX_TEXT = 4296          # the most alphanumeric characters a QR code (version 40-L) holds
MAX_INFLATED = 16 * 1024  # a pass is well under 2 KiB; refuse zip bombs


def encode(payload: bytes) -> str:
    """Encode CBOR bytes as QR text: PREFIX + base45(zlib(payload))."""
    return PREFIX + base45.b45encode(zlib.compress(payload, 9)).decode("ascii")


def decode(text: str | bytes) -> bytes:
    """Decode QR text back to the CBOR bytes; FormatError says which layer failed."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise FormatError("QR text: not ASCII") from None
    if not isinstance(text, str):
        raise FormatError("QR text: expected text")
    text = text.strip()
    if not text.startswith(PREFIX):
        raise FormatError(f"QR text: does not start with {PREFIX}")
    if len(text) > MAX_TEXT:
        raise FormatError("QR text: longer than any QR code holds")
    try:
        compressed = base45.b45decode(text[len(PREFIX):])
    except (ValueError, TypeError):
        raise FormatError("QR text: base45 layer is invalid") from None
    d = zlib.decompressobj()
    try:
        out = d.decompress(compressed, MAX_INFLATED)
    except zlib.error:
        raise FormatError("QR text: zlib layer is invalid") from None
    if d.unconsumed_tail:
        raise FormatError("QR text: inflates beyond the size limit")
    if not d.eof:
        raise FormatError("QR text: zlib stream is truncated")
    if d.unused_data:
        raise FormatError("QR text: trailing bytes after the zlib stream")
    return out
