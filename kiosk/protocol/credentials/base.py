"""What every foreign-credential reader returns: a `ForeignCredential` inside a `Verdict`.

A foreign credential is one another issuer signed (an EU DCC, a SMART Health Card). It
claims an identity; it is not bound to a face template and is never our patient pass, so
the engine hands it to the front desk (see `docs/design-notes.md`, "Foreign credentials").

`subject` holds the claimed name and birth date: personal data. It is kept out of `repr`
and out of `Verdict.as_json`; only the staff screen shows it.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

from kiosk.errors import FormatError, KioskError, Reason, Verdict

MAX_TEXT = 64 * 1024          # no QR code (or set of chunks) holds more
MAX_INFLATED = 256 * 1024     # a large SHC lab bundle inflates to ~30 KiB
MAX_JSON_DEPTH = 64


@dataclass(frozen=True, repr=False)
class ClaimedIdentity:
    """Who the credential says its holder is. Personal data: its repr withholds the values,
    so a log line that formats it (or an event holding it) shows nothing personal."""

    family: str = ""
    given: str = ""
    birth_date: str = ""

    def __repr__(self) -> str:
        return "ClaimedIdentity(<withheld>)"


@dataclass(frozen=True)
class ForeignCredential:
    """A verified credential of another issuer.

    format: "eu-dcc" or "shc". issuer: DCC issuing country / SHC `iss` URL. key_id: the
    signer's kid (hex for DCC, the JWK thumbprint for SHC). content: what it certifies
    ("vaccination", "test", "recovery", or FHIR resource types), never values.
    """

    format: str
    issuer: str
    key_id: str
    issued_at: float | None
    expires_at: float | None
    content: tuple[str, ...]
    subject: ClaimedIdentity = field(repr=False)
    payload: Any = field(default=None, repr=False, compare=False)  # the decoded claims

    def summary(self) -> dict[str, Any]:
        """PHI-free facts for events and JSON: format, issuer, key, times, content kinds."""
        return {"format": self.format, "issuer": self.issuer, "key_id": self.key_id,
                "issued_at": self.issued_at, "expires_at": self.expires_at,
                "content": list(self.content)}


class StepError(FormatError):
    """A decoding layer failed; `step` names it (prefix, base45, zlib, cbor, ...)."""

    def __init__(self, step: str, message: str, *, reason: Reason = Reason.MALFORMED) -> None:
        super().__init__(message, reason=reason.value)
        self.step = step
        self.verdict_reason = reason


def verdict_of(e: KioskError) -> Verdict:
    """A refusal verdict for an error raised by a reader (the message names the layer)."""
    if isinstance(e, StepError):
        return Verdict.bad(e.verdict_reason, e.message)
    if isinstance(e, FormatError):
        return Verdict.bad(Reason.MALFORMED, e.message)
    try:
        return Verdict.bad(Reason(e.reason), e.message)
    except ValueError:
        return Verdict.bad(Reason.BAD_SIGNATURE, e.message)


def inflate(data: bytes, *, raw: bool, step: str, what: str) -> bytes:
    """zlib (raw=False) or raw DEFLATE (raw=True), refused beyond MAX_INFLATED (zip bombs)."""
    d = zlib.decompressobj(-15 if raw else 15)
    try:
        out = d.decompress(data, MAX_INFLATED)
    except zlib.error:
        raise StepError(step, f"{what}: not a valid {'DEFLATE' if raw else 'zlib'} stream") from None
    if d.unconsumed_tail:
        raise StepError(step, f"{what}: inflates beyond {MAX_INFLATED} bytes", reason=Reason.TOO_LARGE)
    if not d.eof:
        raise StepError(step, f"{what}: compressed stream is truncated")
    if d.unused_data:
        raise StepError(step, f"{what}: bytes after the compressed stream")
    return out


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError("duplicate key")
        out[k] = v
    return out


def strict_json(data: bytes | str, what: str, step: str = "json") -> Any:
    """JSON with duplicate keys, NaN/Infinity and deep nesting refused (RFC 8259 §4, §6)."""
    def bad_constant(name: str) -> Any:
        raise ValueError(f"non-standard constant {name}")

    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=bad_constant)
    except RecursionError:
        raise StepError(step, f"{what}: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise StepError(step, f"{what}: not valid JSON ({type(e).__name__})") from None
    _json_depth(value, what, step, 0)
    return value


def _json_depth(value: Any, what: str, step: str, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise StepError(step, f"{what}: nested too deeply")
    for v in value.values() if isinstance(value, dict) else value if isinstance(value, list) else ():
        if isinstance(v, (dict, list)):
            _json_depth(v, what, step, depth + 1)


_ZONE_NO_COLON = re.compile(r"([+-]\d\d)(\d\d)$")


def parse_instant(text: str) -> float:
    """An ISO 8601 instant as Unix seconds; no zone means UTC; "+0200" is accepted."""
    s = text.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    s = _ZONE_NO_COLON.sub(r"\1:\2", s)
    try:
        t = dt.datetime.fromisoformat(s)
    except ValueError:
        raise FormatError(f"not an ISO 8601 time: {text[:40]!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.timestamp()
