"""Presentations: a pass plus a patient-key signature that makes it fresh (docs/design-notes.md).

The patient key signs a domain-separated CBOR statement, never bytes the kiosk chose:
  NFC phone  {ctx: "kiosk-nfc-v1", site, kiosk, nonce, pass_hash}   (nonce from the kiosk)
  QR phone   {ctx: "kiosk-qr-v1", site, window, pass_hash}           (30-second slot)
  consent    {ctx: "kiosk-consent-v1", site, kiosk, nonce, body_hash} (optional second tap)
A Type 4 card has no patient key: kind "card", no statement; the face match binds it.
Kind "foreign" holds the QR text (chunks joined by newlines) of a credential another issuer
signed (EU DCC, SMART Health Card); `kiosk.protocol.credentials` judges it, it never goes
on the wire and is never recorded as our pass.
Only a card pass (claim -65539) may be shown bare; a bare phone pass is a copy (STALE).

On the wire (record messages, QR) a presentation is the CBOR map
  {"kind", "pass", "statement"?, "sig"?, "anchor"?}
`anchor` {seed, checkpoint} (NFC only): the kiosk's nonce is SHA-256(ctx ‖ seed ‖ checkpoint),
`checkpoint` being SHA-256 of the newest signed checkpoint note the kiosk holds, so the
presentation provably postdates that checkpoint (docs/design-notes.md, "Time").
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from kiosk.errors import FormatError, KioskError, Reason, Verdict
from kiosk.protocol import cbor, cose, patient_pass, qr_text
from kiosk.protocol.revocation import RevocationList

CTX_NFC, CTX_QR, CTX_CONSENT = "kiosk-nfc-v1", "kiosk-qr-v1", "kiosk-consent-v1"
NONCE_CTX = b"kiosk-nfc-nonce-v1\0"
KINDS = ("nfc", "qr", "card")  # the kinds a record may carry
KIND_FOREIGN = "foreign"
QR_WINDOW_S = 30


def window_of(t: float, window_s: int = QR_WINDOW_S) -> int:
    """The 30-second slot a Unix time falls in."""
    return int(t // window_s)


def checkpoint_hash(note: bytes) -> bytes:
    """Names a signed checkpoint note in an NFC anchor."""
    return hashlib.sha256(note).digest()


def anchored_nonce(seed: bytes, checkpoint: bytes) -> bytes:
    """The NFC challenge that commits to a checkpoint (32 bytes, what the phone signs)."""
    return hashlib.sha256(NONCE_CTX + seed + checkpoint).digest()


def nfc_statement(site: str, kiosk: str, nonce: bytes, pass_hash: bytes) -> bytes:
    return cbor.dumps({"ctx": CTX_NFC, "site": site, "kiosk": kiosk, "nonce": nonce, "pass_hash": pass_hash})


def qr_statement(site: str, window: int, pass_hash: bytes) -> bytes:
    return cbor.dumps({"ctx": CTX_QR, "site": site, "window": window, "pass_hash": pass_hash})


def consent_statement(site: str, kiosk: str, nonce: bytes, body_hash: bytes) -> bytes:
    return cbor.dumps({"ctx": CTX_CONSENT, "site": site, "kiosk": kiosk, "nonce": nonce, "body_hash": body_hash})


@dataclass(frozen=True)
class Presentation:
    """What a patient showed: the pass and, for a phone, the signed statement."""

    kind: str
    pass_bytes: bytes
    statement: bytes | None = None
    signature: bytes | None = None
    anchor: tuple[bytes, bytes] | None = None  # (seed, checkpoint hash): NFC only

    def to_map(self) -> dict:
        m: dict = {"kind": self.kind, "pass": self.pass_bytes}
        if self.statement is not None:
            m["statement"] = self.statement
            m["sig"] = self.signature
        if self.anchor is not None:
            m["anchor"] = {"seed": self.anchor[0], "checkpoint": self.anchor[1]}
        return m

    def to_cbor(self) -> bytes:
        return cbor.dumps(self.to_map())

    @property
    def presentation_hash(self) -> bytes:
        """Names a presentation: seen in a second session, it is a replay."""
        return hashlib.sha256(self.to_cbor()).digest()

    @classmethod
    def from_map(cls, m: object) -> Presentation:
        cbor.expect_map(m, "presentation", {"kind": str, "pass": bytes},
                        {"statement": bytes, "sig": bytes, "anchor": dict})
        assert isinstance(m, dict)
        if m["kind"] not in KINDS:
            raise FormatError("presentation: unknown kind")
        anchor = None
        if m.get("anchor") is not None:
            a = cbor.expect_map(m["anchor"], "presentation anchor", {"seed": bytes, "checkpoint": bytes})
            if m["kind"] != "nfc" or not 16 <= len(a["seed"]) <= 32 or len(a["checkpoint"]) != 32:
                raise FormatError("presentation: bad anchor")
            anchor = (a["seed"], a["checkpoint"])
        if m["kind"] == "card":
            if "statement" in m or "sig" in m:
                raise FormatError("presentation: a card presentation carries no signature")
            return cls("card", m["pass"])
        if not isinstance(m.get("statement"), bytes) or not isinstance(m.get("sig"), bytes):
            raise FormatError("presentation: a phone presentation needs statement and sig")
        if len(m["sig"]) != 64:
            raise FormatError("presentation: signature must be 64 bytes")
        return cls(m["kind"], m["pass"], m["statement"], m["sig"], anchor)

    @classmethod
    def from_cbor(cls, data: bytes) -> Presentation:
        return cls.from_map(cbor.loads(data, "presentation"))


def sign_statement(patient_key: SigningKey, statement: bytes) -> bytes:
    """The wallet's signature over a statement it built itself."""
    return patient_key.sign(statement).signature


def qr_presentation_text(pass_bytes: bytes, patient_key: SigningKey, now: float,
                         window_s: int = QR_WINDOW_S) -> str:
    """What the wallet shows as a QR code: the pass and its signature over this window."""
    p = patient_pass.decode(pass_bytes)
    window = window_of(now, window_s)
    sig = sign_statement(patient_key, qr_statement(p.site, window, p.pass_hash))
    return qr_text.encode(cbor.dumps({"pass": pass_bytes, "window": window, "sig": sig}))


def from_qr_text(text: str | bytes) -> Presentation:
    """Parse QR text: a QR presentation (kind "qr"), or a bare pass (kind "card")."""
    data = qr_text.decode(text)
    # a QR presentation is a map; a bare pass is a COSE_Sign1, the one tag either may carry
    item = cbor.loads(data, "QR payload", tags=(cose.COSE_SIGN1_TAG,))
    if isinstance(item, dict):
        cbor.expect_map(item, "QR presentation", {"pass": bytes, "window": int, "sig": bytes})
        p = patient_pass.decode(item["pass"])
        if len(item["sig"]) != 64:
            raise FormatError("QR presentation: signature must be 64 bytes")
        return Presentation("qr", item["pass"], qr_statement(p.site, item["window"], p.pass_hash), item["sig"])
    patient_pass.decode(data)  # a bare pass printed as QR (a card without a chip)
    return Presentation("card", data)


class ReplayCache:
    """Presentations already used at this kiosk, remembered until they could no longer verify."""

    def __init__(self) -> None:
        self._seen: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def check_and_add(self, key: bytes, ttl_s: float, now: float | None = None) -> bool:
        """True the first time `key` is seen within its lifetime; False for a replay."""
        now = time.monotonic() if now is None else now
        with self._lock:
            for k in [k for k, t in self._seen.items() if t <= now]:
                del self._seen[k]
            if key in self._seen:
                return False
            self._seen[key] = now + ttl_s
            return True


@dataclass(frozen=True)
class Freshness:
    """What this verifier expects of a statement."""

    site: str
    kiosk: str | None = None              # None: accept any kiosk of the site (gateway side)
    nonce: bytes | None = None            # the NFC nonce this kiosk sent, where known
    window_s: int = QR_WINDOW_S
    windows_accepted: int = 1             # neighbouring slots either side (clock drift)
    clock_synced: bool = True


def verify(pres: Presentation, issuers: Mapping[bytes, VerifyKey], *, now: int,
           revocations: RevocationList | None, fresh: Freshness, revocation_grace_s: int = 86400,
           skew_s: int = 120, replay: ReplayCache | None = None, live: bool = True) -> Verdict:
    """Verify a presentation at `now`: the pass, then the statement and its signature.

    `live`: a patient at a kiosk now (see patient_pass.verify); the gateway passes False.

    On success `data` holds `pass` (PatientPass) and `presentation`.
    """
    v = patient_pass.verify(pres.pass_bytes, issuers, now=now, revocations=revocations,
                            revocation_grace_s=revocation_grace_s, skew_s=skew_s, site=fresh.site, live=live)
    if live and revocations is not None:
        now = max(now, revocations.issued)
    if not v.ok:
        return v
    p: patient_pass.PatientPass = v.data["pass"]
    if pres.kind == "card":
        if not p.is_card:
            # a phone pass without its fresh signature is a copy (a screenshot, a photo)
            return Verdict.bad(Reason.STALE, "a phone pass is valid only with its fresh signature")
        return Verdict.good("card pass is valid; the face match must bind it", **{"pass": p, "presentation": pres})
    if p.patient_key is None:
        return Verdict.bad(Reason.MALFORMED, "a card pass has no key to sign a statement")
    try:
        stmt = cbor.expect_map(cbor.loads(pres.statement or b"", "statement"), "statement",
                               {"ctx": str, "site": str, "pass_hash": bytes},
                               {"kiosk": str, "nonce": bytes, "window": int})
    except KioskError as e:
        return Verdict.bad(Reason.MALFORMED, e.message)
    expected_ctx = CTX_NFC if pres.kind == "nfc" else CTX_QR
    if stmt["ctx"] != expected_ctx:
        return Verdict.bad(Reason.MALFORMED, "statement has the wrong context")
    if stmt["pass_hash"] != p.pass_hash:
        return Verdict.bad(Reason.MALFORMED, "statement is bound to another pass")
    if stmt["site"] != fresh.site:
        return Verdict.bad(Reason.WRONG_SITE, "statement names another site")
    try:
        p.patient_key.verify(pres.statement or b"", pres.signature or b"")
    except (BadSignatureError, ValueError, TypeError):
        return Verdict.bad(Reason.BAD_SIGNATURE, "patient signature does not verify")
    if pres.kind == "nfc":
        if not isinstance(stmt.get("nonce"), bytes) or not isinstance(stmt.get("kiosk"), str):
            return Verdict.bad(Reason.MALFORMED, "NFC statement lacks kiosk or nonce")
        if fresh.kiosk is not None and stmt["kiosk"] != fresh.kiosk:
            return Verdict.bad(Reason.WRONG_KIOSK, "statement names another kiosk")
        if fresh.nonce is not None and stmt["nonce"] != fresh.nonce:
            return Verdict.bad(Reason.STALE, "statement answers another challenge")
        if pres.anchor is not None and stmt["nonce"] != anchored_nonce(*pres.anchor):
            return Verdict.bad(Reason.STALE, "the nonce does not commit to the checkpoint it names")
        ttl = 3600.0
    else:
        if not isinstance(stmt.get("window"), int):
            return Verdict.bad(Reason.MALFORMED, "QR statement lacks its time window")
        if not fresh.clock_synced:
            return Verdict.bad(Reason.CLOCK_UNSYNCED, "clock not synchronised; QR presentations refused")
        if abs(stmt["window"] - window_of(now, fresh.window_s)) > fresh.windows_accepted:
            return Verdict.bad(Reason.STALE, "QR code is from another time window")
        ttl = float(fresh.window_s * (2 * fresh.windows_accepted + 2))
    if replay is not None and not replay.check_and_add(pres.presentation_hash, ttl):
        return Verdict.bad(Reason.REPLAYED, "this presentation was already used")
    return Verdict.good("presentation is valid", **{"pass": p, "presentation": pres})


def verify_consent_signature(p: patient_pass.PatientPass, statement: bytes, signature: bytes, *,
                             site: str, kiosk: str | None, body_hash: bytes) -> Verdict:
    """Check the optional patient-key signature over a consent body."""
    try:
        stmt = cbor.expect_map(cbor.loads(statement, "consent statement"), "consent statement",
                               {"ctx": str, "site": str, "kiosk": str, "nonce": bytes, "body_hash": bytes})
    except KioskError as e:
        return Verdict.bad(Reason.MALFORMED, e.message)
    if stmt["ctx"] != CTX_CONSENT or stmt["body_hash"] != body_hash:
        return Verdict.bad(Reason.MALFORMED, "consent statement does not name this body")
    if stmt["site"] != site or (kiosk is not None and stmt["kiosk"] != kiosk):
        return Verdict.bad(Reason.WRONG_SITE, "consent statement names another site or kiosk")
    if p.patient_key is None:
        return Verdict.bad(Reason.MALFORMED, "a card pass has no key to sign a consent")
    try:
        p.patient_key.verify(statement, signature)
    except (BadSignatureError, ValueError, TypeError):
        return Verdict.bad(Reason.BAD_SIGNATURE, "patient consent signature does not verify")
    return Verdict.good("consent signature is valid")
