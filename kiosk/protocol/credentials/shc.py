"""SMART Health Cards: "shc:/" numeric QR -> compact JWS (ES256, zip DEF) -> FHIR bundle.

The layers (SMART Health Cards framework, spec.smarthealth.cards, v1.x):

  numeric    "shc:/" + digit pairs, each chr(n + 45); the deprecated chunked form
             "shc:/C/N/..." is reassembled from all N chunks, in order
  jws        compact serialization, base64url without padding; header
             {"alg": "ES256", "zip": "DEF", "kid": thumbprint}: the spec's "Health Cards are
             Compact" requires all three, so a JWS without zip DEF is refused, and the kid
             must be the RFC 7638 thumbprint of the key that verifies it
  deflate    raw DEFLATE (RFC 1951), not zlib
  json       the JWT payload {iss, nbf, exp?, vc: {type, credentialSubject: {fhirVersion,
             fhirBundle}, rid?}}
  signature  ES256 (raw r||s) over ASCII header.payload, with the key the kid names among
             the keys of the trusted issuer `iss` (JWK x/y; an x5c chain is not validated);
             the JWK must say kty EC, crv P-256, use sig, alg ES256 and hold no private "d"
             ("Determining keys associated with an issuer")
  revocation a key with `crlVersion` needs a CRL with ctr >= crlVersion in the trust
             folder; a card whose `vc.rid` the CRL lists (with a ".time" suffix: only when
             nbf is before that time) is revoked
  time       nbf <= now (+ skew); exp, when present, >= now
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from kiosk.errors import KioskError, Reason, Verdict
from kiosk.protocol.credentials.base import (
    MAX_TEXT,
    ClaimedIdentity,
    ForeignCredential,
    StepError,
    inflate,
    strict_json,
    verdict_of,
)
from kiosk.protocol.credentials.trust import ShcIssuer

PREFIX = "shc:/"
FORMAT = "shc"
MAX_CHUNKS = 16
SKEW_S = 120
_CHUNK = re.compile(r"shc:/(\d{1,2})/(\d{1,2})/(\d+)\Z")
_SINGLE = re.compile(r"shc:/(\d+)\Z")
_B64URL = re.compile(r"[A-Za-z0-9_-]*\Z")
# "00".."77" -> chr(45).."z": 77 + 45 is "z", the last of the base64url alphabet and "."
_PAIRS = {f"{v:02d}": chr(v + 45) for v in range(78)}


@dataclass(frozen=True)
class Jws:
    """A compact JWS split into its parts; `payload` is the inflated JSON bytes."""

    header: dict
    signing_input: bytes
    payload: bytes
    signature: bytes


def chunk_index(text: str) -> tuple[int, int] | None:
    """(C, N) of a chunked "shc:/C/N/..." text, or None for a single-chunk text."""
    m = _CHUNK.match(text.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def numeric_to_jws(texts: str | Sequence[str]) -> str:
    """The JWS text of one QR text or of all chunks of a chunked card (any order)."""
    items = [texts] if isinstance(texts, str) else list(texts)
    if not items or len(items) > MAX_CHUNKS or sum(len(t) for t in items if isinstance(t, str)) > MAX_TEXT:
        raise StepError("numeric", "SHC: no QR text, or more than a card can be", reason=Reason.TOO_LARGE)
    if any(not isinstance(t, str) for t in items):
        raise StepError("numeric", "SHC: expected text")
    items = [t.strip() for t in items]
    if len(items) == 1 and _SINGLE.match(items[0]):
        digits = _SINGLE.match(items[0]).group(1)  # type: ignore[union-attr]
    else:
        parts: dict[int, str] = {}
        total = None
        for t in items:
            m = _CHUNK.match(t)
            if not m:
                raise StepError("numeric", "SHC: not shc:/ followed by digits")
            c, n = int(m.group(1)), int(m.group(2))
            if total not in (None, n) or not 1 <= c <= n or c in parts:
                raise StepError("numeric", "SHC: chunks do not belong together")
            total, parts[c] = n, m.group(3)
        if total is None or len(parts) != total:
            raise StepError("numeric", "SHC: chunks missing")
        digits = "".join(parts[i] for i in range(1, total + 1))
    if len(digits) % 2:
        raise StepError("numeric", "SHC: odd number of digits")
    try:
        return "".join(map(_PAIRS.__getitem__, (digits[i:i + 2] for i in range(0, len(digits), 2))))
    except KeyError:
        raise StepError("numeric", "SHC: digit pair out of range") from None


def _b64url(part: str, what: str) -> bytes:
    if not _B64URL.match(part) or len(part) % 4 == 1:
        raise StepError("jws", f"SHC: JWS {what} is not base64url")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise StepError("jws", f"SHC: JWS {what} is not base64url") from None


def parse_jws(jws: str) -> Jws:
    """Split and decode a compact JWS; the payload is inflated when zip is DEF."""
    if not isinstance(jws, str) or len(jws) > MAX_TEXT:
        raise StepError("jws", "SHC: JWS missing or too long", reason=Reason.TOO_LARGE)
    parts = jws.strip().split(".")
    if len(parts) != 3:
        raise StepError("jws", "SHC: not a compact JWS (three parts)")
    header = strict_json(_b64url(parts[0], "header"), "SHC JWS header", "jws")
    if not isinstance(header, dict):
        raise StepError("jws", "SHC: JWS header is not an object")
    if header.get("alg") != "ES256" or not isinstance(header.get("kid"), str):
        raise StepError("jws", "SHC: JWS header must name alg ES256 and a kid")
    if "crit" in header:
        raise StepError("jws", "SHC: JWS header has critical extensions we do not know")
    if header.get("zip") != "DEF":
        # the spec requires DEFLATE; an uncompressed payload is no health card, whatever it says
        raise StepError("jws", "SHC: JWS header must have zip DEF (a health card's payload is DEFLATEd)")
    body = inflate(_b64url(parts[1], "payload"), raw=True, step="deflate", what="SHC payload")
    return Jws(header, f"{parts[0]}.{parts[1]}".encode("ascii"), body, _b64url(parts[2], "signature"))


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of an EC JWK, base64url: the kid an SHC key must have."""
    members = {k: jwk.get(k) for k in ("crv", "kty", "x", "y")}
    if not all(isinstance(v, str) for v in members.values()):
        raise StepError("signature", "SHC: issuer key lacks crv, kty, x or y", reason=Reason.UNKNOWN_ISSUER)
    canon = json.dumps(members, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return base64.urlsafe_b64encode(hashlib.sha256(canon.encode("utf-8")).digest()).rstrip(b"=").decode()


def verify_signature(jws: Jws, jwk: Mapping[str, Any]) -> None:
    """ES256 with a P-256 JWK (raw r||s signature), whose thumbprint is the header's kid."""
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or jwk.get("alg") != "ES256" \
            or jwk.get("use") != "sig":
        raise StepError("signature", "SHC: issuer key is not an ES256 P-256 signing key (kty EC, crv "
                        "P-256, use sig, alg ES256)", reason=Reason.UNKNOWN_ISSUER)
    if "d" in jwk:  # a published private key: anyone can sign with it
        raise StepError("signature", "SHC: issuer key set publishes the private key", reason=Reason.UNKNOWN_ISSUER)
    if jwk_thumbprint(jwk) != jws.header.get("kid"):
        raise StepError("signature", "SHC: kid is not the JWK thumbprint of the issuer key",
                        reason=Reason.UNKNOWN_ISSUER)
    try:
        x = int.from_bytes(_b64url(str(jwk["x"]), "key x"), "big")
        y = int.from_bytes(_b64url(str(jwk["y"]), "key y"), "big")
        key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    except (KeyError, ValueError, StepError):
        raise StepError("signature", "SHC: issuer key is not a valid P-256 point",
                        reason=Reason.UNKNOWN_ISSUER) from None
    sig = jws.signature
    if len(sig) != 64:
        raise StepError("signature", "SHC: ES256 signature must be 64 bytes", reason=Reason.BAD_SIGNATURE)
    try:
        key.verify(encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
                   jws.signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise StepError("signature", "SHC: signature does not verify", reason=Reason.BAD_SIGNATURE) from None


def _verify_with_any(jws: Jws, jwks: Sequence[Mapping[str, Any]]) -> None:
    """The kid's JWK entries in order; the first refusal is the verdict only if none verifies."""
    refusal: StepError | None = None
    for jwk in jwks:
        try:
            verify_signature(jws, jwk)
            return
        except StepError as e:
            refusal = refusal or e
    raise refusal or StepError("signature", "SHC: no key for this kid", reason=Reason.UNKNOWN_ISSUER)


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def payload_claims(jws: Jws) -> dict:
    """The JWT payload, checked for the fields a health card must have."""
    p = strict_json(jws.payload, "SHC payload")
    if not isinstance(p, dict) or not isinstance(p.get("iss"), str) or _number(p.get("nbf")) is None:
        raise StepError("json", "SHC payload: needs iss and a numeric nbf")
    vc = p.get("vc")
    subject = vc.get("credentialSubject") if isinstance(vc, dict) else None
    if not isinstance(subject, dict) or not isinstance(subject.get("fhirBundle"), dict):
        raise StepError("json", "SHC payload: no vc.credentialSubject.fhirBundle")
    if "exp" in p and _number(p["exp"]) is None:
        raise StepError("json", "SHC payload: exp is not a number")
    if isinstance(vc, dict) and "rid" in vc and not isinstance(vc["rid"], str):
        raise StepError("json", "SHC payload: vc.rid is not text")
    return p


def check_revocation(issuer: ShcIssuer, kid: str, claims: dict) -> None:
    """The rid method: REVOKED when the CRL lists the card; STALE list when it is too old."""
    version = issuer.keys[kid][0].get("crlVersion")  # a kid's entries differ only in x5c
    crl = issuer.crls.get(kid)
    if version is None and crl is None:
        return  # this key does not revoke by rid
    if crl is None or (isinstance(version, int) and crl.ctr < version):
        raise StepError("revocation", "SHC: the trust folder lacks this key's current CRL",
                        reason=Reason.REVOCATION_LIST_STALE)
    rid = claims["vc"].get("rid")
    if rid is None or rid not in crl.rids:
        return
    before = crl.rids[rid]
    nbf = _number(claims["nbf"])
    if before is None or (nbf is not None and nbf < before):
        raise StepError("revocation", "SHC: card revoked by its issuer", reason=Reason.REVOKED)


def check_time(claims: dict, now: float, skew_s: float = SKEW_S) -> None:
    nbf, exp = _number(claims["nbf"]), _number(claims.get("exp"))
    if nbf is not None and now + skew_s < nbf:
        raise StepError("time", "SHC: not valid yet", reason=Reason.NOT_YET_VALID)
    if exp is not None and now - skew_s > exp:
        raise StepError("time", "SHC: expired", reason=Reason.EXPIRED)


def identity(bundle: dict) -> ClaimedIdentity:
    """The first Patient's first name and birth date in the FHIR bundle."""
    for entry in bundle.get("entry") or []:
        res = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(res, dict) and res.get("resourceType") == "Patient":
            names = res.get("name")
            name = names[0] if isinstance(names, list) and names and isinstance(names[0], dict) else {}
            given, family, birth = name.get("given"), name.get("family"), res.get("birthDate")
            return ClaimedIdentity(family if isinstance(family, str) else "",
                                   " ".join(g for g in given if isinstance(g, str)) if isinstance(given, list) else "",
                                   birth if isinstance(birth, str) else "")
    return ClaimedIdentity()


def content(bundle: dict) -> tuple[str, ...]:
    """The FHIR resource types in the bundle (other than Patient), in order of appearance."""
    seen: list[str] = []
    for entry in bundle.get("entry") or []:
        res = entry.get("resource") if isinstance(entry, dict) else None
        t = res.get("resourceType") if isinstance(res, dict) else None
        if isinstance(t, str) and t != "Patient" and t not in seen:
            seen.append(t)
    return tuple(seen)


def read(texts: str | Sequence[str], issuers: Mapping[str, ShcIssuer], now: float) -> Verdict:
    """Verify QR text(s) (or a bare JWS) at `now`; `data["credential"]` on success."""
    try:
        first = texts if isinstance(texts, str) else (texts[0] if texts else "")
        jws_text = numeric_to_jws(texts) if isinstance(first, str) and first.startswith(PREFIX) else first
        jws = parse_jws(jws_text)
        claims = payload_claims(jws)
        issuer = issuers.get(claims["iss"])
        kid = jws.header["kid"]
        if issuer is None or kid not in issuer.keys:
            raise StepError("signature", "SHC: issuer or key not in the trust folder",
                            reason=Reason.UNKNOWN_ISSUER)
        _verify_with_any(jws, issuer.keys[kid])
        check_revocation(issuer, kid, claims)
        check_time(claims, now)
    except KioskError as e:
        return verdict_of(e)
    bundle = claims["vc"]["credentialSubject"]["fhirBundle"]
    cred = ForeignCredential(FORMAT, claims["iss"], kid, _number(claims["nbf"]), _number(claims.get("exp")),
                             content(bundle), identity(bundle), claims)
    return Verdict.good("SMART Health Card verified", credential=cred)
