"""Credentials patients already carry, signed by other issuers: one registry, one verdict.

    trust = TrustStore.load("/etc/kiosk/credentials")        # IT's offline trust folder
    verdict = credentials.read("HC1:...", trust, now=time.time())
    verdict.ok, verdict.reason, verdict.data["credential"]  # a ForeignCredential

The reader is picked by the text's prefix (`READERS`): "HC1:" an EU DCC (`dcc`), "shc:/"
a SMART Health Card QR (`shc`); a compact JWS or a `.smart-health-card` file is an SHC as
well. Our own pass ("KP1:") is not a foreign credential and is not read here.
"""
from __future__ import annotations

from collections.abc import Sequence

from kiosk.errors import KioskError, Reason, Verdict
from kiosk.protocol.credentials import dcc, shc
from kiosk.protocol.credentials.base import ClaimedIdentity, ForeignCredential, strict_json, verdict_of
from kiosk.protocol.credentials.trust import TrustStore

READERS = {dcc.PREFIX: dcc.FORMAT, shc.PREFIX: shc.FORMAT}
PREFIXES = tuple(READERS)

__all__ = ["READERS", "PREFIXES", "ClaimedIdentity", "ForeignCredential", "TrustStore", "detect", "read"]


def detect(text: str) -> str | None:
    """The format a text claims by its prefix ("eu-dcc", "shc"), or None."""
    if not isinstance(text, str):
        return None
    t = text.lstrip()
    for prefix, fmt in READERS.items():
        if t.startswith(prefix):
            return fmt
    if t.startswith("{") and "verifiableCredential" in t[:200]:
        return shc.FORMAT
    if t.startswith("eyJ") and t.count(".") == 2:
        return shc.FORMAT
    return None


def read(texts: str | Sequence[str], trust: TrustStore, now: float) -> Verdict:
    """Verify one credential (or the chunks of one chunked SHC QR) at Unix time `now`."""
    items = [texts] if isinstance(texts, str) else list(texts)
    fmt = detect(items[0]) if items else None
    if fmt is None:
        return Verdict.bad(Reason.UNSUPPORTED, "not a credential format this kiosk reads")
    if fmt == dcc.FORMAT:
        if len(items) != 1:
            return Verdict.bad(Reason.MALFORMED, "a DCC is one QR code")
        return dcc.read(items[0].strip(), trust.dcc, now)
    first = items[0].lstrip()
    if first.startswith("{"):
        try:
            doc = strict_json(first, ".smart-health-card file")
            vcs = doc.get("verifiableCredential") if isinstance(doc, dict) else None
            if not isinstance(vcs, list) or len(vcs) != 1 or not isinstance(vcs[0], str):
                return Verdict.bad(Reason.MALFORMED,
                                   ".smart-health-card file: expected one verifiableCredential")
        except KioskError as e:
            return verdict_of(e)
        items = [vcs[0]]
    return shc.read(items, trust.shc, now)
