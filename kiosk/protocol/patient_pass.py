"""The patient pass: CWT claims (RFC 8392) in a COSE_Sign1 signed by the issuer key.

Claims (integer keys; private ones in the private-use range below -65536):
  1 iss   issuer name              6 iat   issued at (NumericDate)
  2 sub   pseudonymous patient id  5 nbf   not before
  4 exp   expiry                   7 cti   pass id (16 random bytes; revocation names it)
  8 cnf   {1: COSE_Key} — the patient's Ed25519 public key (RFC 8747 §3.1); phone passes only
  -65537  site (the clinic site id)
  -65538  sealed templates [[sealing kid, sealed box], ...] (absent: no biometric consent)
  -65539  true on a card pass: a clinic-issued Type 4 card, which has no key and cannot
          sign a fresh statement, so the face match alone binds it. A phone pass shown
          without its signature is a copy and is refused; only a card pass may be bare.
No name, birth date or record number is ever a claim.

A pass has exactly one accepted encoding (docs/design-notes.md, "One encoding per signed
object"): a tagged COSE_Sign1, deterministic CBOR in every layer, alg and kid protected, an
empty unprotected header. Anything else is refused, so `pass_hash` is unique per pass.
"""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from nacl.public import PublicKey
from nacl.signing import SigningKey, VerifyKey

from kiosk.errors import FormatError, KioskError, Reason, Verdict
from kiosk.protocol import cbor, cose, sealing
from kiosk.protocol.revocation import RevocationList

ISS, SUB, EXP, NBF, IAT, CTI, CNF = 1, 2, 4, 5, 6, 7, 8
SITE, SEALED, CARD = -65537, -65538, -65539
_H_KID = 4
_COSE_KEY_OKP, _CRV_ED25519 = 1, 6
MAX_PASS_BYTES = 4096


@dataclass(frozen=True)
class PatientPass:
    """A decoded pass. `raw` is the exact COSE bytes; `issuer_kid` names the signing key."""

    raw: bytes
    issuer: str
    site: str
    patient: str
    issued_at: int
    not_before: int
    expires_at: int
    pass_id: bytes
    patient_key: VerifyKey | None  # None on a card pass
    sealed_templates: tuple[tuple[bytes, bytes], ...]
    issuer_kid: bytes | None

    @property
    def pass_hash(self) -> bytes:
        """SHA-256 of the pass bytes: what presentations bind to."""
        return hashlib.sha256(self.raw).digest()

    @property
    def has_template(self) -> bool:
        return bool(self.sealed_templates)

    @property
    def is_card(self) -> bool:
        return self.patient_key is None


PATIENT_ID_RE = re.compile(r"p-[0-9a-f]{20}\Z")


def new_patient_id() -> str:
    """A pseudonymous patient id: random, carries nothing about the person."""
    return "p-" + os.urandom(10).hex()


def issue(issuer_key: SigningKey, *, issuer: str, site: str, patient: str,
          patient_key: VerifyKey | None, template: bytes | None, sealing_keys: list[PublicKey],
          now: int, valid_s: int, pass_id: bytes | None = None,
          sealed: list[list[bytes]] | None = None) -> bytes:
    """Sign a new pass and return its COSE bytes: a phone pass certifying `patient_key`,
    or with `patient_key` None a card pass (which must carry a template to be usable).

    `sealed` gives templates sealed earlier (a web enrolment seals at the desk and signs
    when the wallet's key arrives, so no clear template waits on disk) instead of `template`."""
    claims: dict = {
        ISS: issuer, SUB: patient, IAT: now, NBF: now, EXP: now + valid_s,
        CTI: pass_id or os.urandom(16), SITE: site,
    }
    if patient_key is None:
        claims[CARD] = True
    else:
        claims[CNF] = {1: {1: _COSE_KEY_OKP, -1: _CRV_ED25519, -2: bytes(patient_key)}}
    want = sealing.CARD_TEMPLATE_BYTES if patient_key is None else sealing.TEMPLATE_BYTES
    if template is not None and len(template) != want:
        raise ValueError(f"a {'card' if patient_key is None else 'phone'} pass seals a {want}-byte template")
    if template is not None:
        claims[SEALED] = sealing.seal(template, sealing_keys)
    elif sealed is not None:
        claims[SEALED] = sealed
    return cose.sign1(cbor.dumps(claims), issuer_key)


def decode(data: bytes) -> PatientPass:
    """Decode a pass without verifying it; FormatError names the failing field."""
    if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_PASS_BYTES:
        raise FormatError("pass: missing or larger than a pass can be")
    msg = cose.decode_sign1(bytes(data), "pass", max_bytes=MAX_PASS_BYTES)
    # one accepted encoding, so pass_hash names one pass: tagged, deterministic throughout
    # (the CBOR policy checked that), and nothing unsigned beside the signature
    if msg.unprotected:
        raise FormatError("pass: the unprotected header must be empty")
    if _H_KID not in msg.protected:
        raise FormatError("pass: the issuer kid must be in the protected header")
    claims = cbor.loads(msg.payload, "pass claims", max_bytes=MAX_PASS_BYTES)
    cbor.expect_map(claims, "pass claims",
                    {ISS: str, SUB: str, IAT: int, NBF: int, EXP: int, CTI: bytes, SITE: str},
                    {SEALED: list, CNF: dict, CARD: bool})
    if (CNF in claims) == (claims.get(CARD) is True):
        raise FormatError("pass claims: a pass is either a phone pass (cnf) or a card pass")
    patient_key = None
    if CNF in claims:
        cnf = claims[CNF].get(1)
        if not isinstance(cnf, dict) or cnf.get(1) != _COSE_KEY_OKP or cnf.get(-1) != _CRV_ED25519 \
                or not isinstance(cnf.get(-2), bytes) or len(cnf[-2]) != 32:
            raise FormatError("pass claims: field 8 (cnf) is not an Ed25519 COSE_Key")
        try:
            patient_key = VerifyKey(cnf[-2])
        except Exception:
            raise FormatError("pass claims: patient key is invalid") from None
    if not 8 <= len(claims[CTI]) <= 32:
        raise FormatError("pass claims: field 7 (cti) has a bad length")
    sealed = []
    for item in claims.get(SEALED) or []:
        if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, bytes) for x in item)):
            raise FormatError("pass claims: a sealed template entry is malformed")
        sealed.append((item[0], item[1]))
    return PatientPass(bytes(data), claims[ISS], claims[SITE], claims[SUB], claims[IAT], claims[NBF],
                       claims[EXP], claims[CTI], patient_key, tuple(sealed), msg.kid)


def verify(data: bytes, issuers: Mapping[bytes, VerifyKey], *, now: int,
           revocations: RevocationList | None, revocation_grace_s: int = 86400,
           skew_s: int = 120, site: str | None = None, live: bool = True) -> Verdict:
    """Check a pass at time `now`: signature, site, validity period, revocation.

    `revocations` is required: a missing or stale list refuses the pass (docs/design-notes.md).
    `live` (a patient at a kiosk now): the real time is at least the list's issue time, so a
    clock that lags — a Pi without RTC or NTP — cannot resurrect a pass revoked or expired
    since. The gateway judges at an entry's `created` time instead (`live=False`).
    On success `data["pass"]` holds the PatientPass.
    """
    try:
        p = decode(data)
        cose.verify_sign1(p.raw, issuers, "pass")
    except KioskError as e:
        return _to_verdict(e)
    if site is not None and p.site != site:
        return Verdict.bad(Reason.WRONG_SITE, "pass was issued for another site")
    if live and revocations is not None:
        now = max(now, revocations.issued)
    if now + skew_s < p.not_before:
        return Verdict.bad(Reason.NOT_YET_VALID, "pass is not valid yet")
    if now - skew_s >= p.expires_at:
        return Verdict.bad(Reason.EXPIRED, "pass has expired")
    if revocations is None:
        return Verdict.bad(Reason.REVOCATION_LIST_STALE, "no revocation list is available")
    if revocations.is_stale(now, revocation_grace_s):
        return Verdict.bad(Reason.REVOCATION_LIST_STALE, "revocation list is past its next update")
    if revocations.revoked_at(p.pass_id, now) is not None:
        return Verdict.bad(Reason.REVOKED, "pass has been revoked")
    return Verdict.good("pass is valid", **{"pass": p})


def _to_verdict(e: KioskError) -> Verdict:
    if isinstance(e, FormatError):
        return Verdict.bad(Reason.MALFORMED, e.message)
    try:
        return Verdict.bad(Reason(e.reason), e.message)
    except ValueError:
        return Verdict.bad(Reason.BAD_SIGNATURE, e.message)
