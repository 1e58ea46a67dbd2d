"""EU Digital COVID Certificate (DCC): "HC1:" + base45 + zlib + COSE_Sign1 + CWT.

The layers (eHealth Network, "Technical Specifications for EU Digital COVID Certificates",
vol. 1 §2-§3; the dgc-testdata corpus names one step per layer):

  prefix     "HC1:" context identifier               -> base45 text
  base45     RFC 9285                                -> zlib bytes
  zlib       RFC 1950 (a bare COSE is refused)       -> COSE_Sign1 (tag 18, optionally in CWT tag 61)
  cbor       COSE_Sign1 structure and CWT claims (1 iss, 4 exp, 6 iat, -260 {1: DGC})
  signature  ES256 (alg -7, raw r||s) or PS256 (alg -37, RSA-PSS SHA-256, MGF1, salt 32)
             over ["Signature1", protected, h'', payload]; the key is chosen by kid
             (protected header first, else unprotected) in the trust list, never "the key
             we happen to have"
  signer     the document signer certificate (DSC) was valid when the DCC was signed
             (notBefore <= iat <= notAfter), and its extended key usage allows every kind
             of entry the DGC holds: 1.3.6.1.4.1.1847.2021.1.1 test, .1.2 vaccination,
             .1.3 recovery (eHealth Network, "Technical Specifications for EU Digital COVID
             Certificates", vol. 1 §5.1, "certificate type"). Issuers also use the OIDs with
             an extra `.0.` arc (1.3.6.1.4.1.0.1847.2021.1.x, dgc-testdata's and several
             national DSCs'), which national verifiers accept alike. A DSC with none of these
             OIDs may sign any kind; an empty or unparseable EKU extension names no OID
             (RFC 5280 forbids it, dgc-testdata CO15 has one and expects it accepted).
  expiry     iat <= now <= exp

DCC issuers put `alg` and `kid` in the unprotected header too (the corpus has such
certificates); that is accepted for DCC only, because a wrong unprotected value can only
select a key, and the signature then has to verify under it. Our own pass stays strict.
CBOR goes through `kiosk.protocol.cbor` (the project's decoding policy: no shared
references, tags only at the root, no duplicate keys, limits checked first), with
`deterministic=False`: another issuer's encoder is not ours. The CWT tag (61) some issuers
wrap around COSE_Sign1 is its own two-byte head, taken off before decoding.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import base45
import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from kiosk.errors import FormatError, KioskError, Reason, Verdict
from kiosk.protocol import cbor
from kiosk.protocol.cose import Sign1
from kiosk.protocol.credentials.base import ClaimedIdentity, ForeignCredential, StepError, inflate, verdict_of
from kiosk.protocol.credentials.trust import Signer

PREFIX = "HC1:"
FORMAT = "eu-dcc"
ALG_ES256, ALG_PS256 = -7, -37
H_ALG, H_KID = 1, 4
C_ISS, C_EXP, C_IAT, C_HCERT = 1, 4, 6, -260
TAG_COSE_SIGN1 = 18
MAX_TEXT = 4296  # a version 40-L QR code in alphanumeric mode
CWT_TAG_HEAD = b"\xd8\x3d"  # tag 61 (RFC 8392 §6)
CONTENT = {"v": "vaccination", "t": "test", "r": "recovery"}
STEPS = ("prefix", "base45", "zlib", "cbor", "signature", "signer", "expiry")
_EKU_ARCS = ("1.3.6.1.4.1.1847.2021.1.", "1.3.6.1.4.1.0.1847.2021.1.")
EKU_KIND = {arc + n: kind for arc in _EKU_ARCS for n, kind in (("1", "t"), ("2", "v"), ("3", "r"))}


class DccSign1(Sign1):
    """A decoded, not yet verified DCC COSE_Sign1: our Sign1, except that another issuer may
    put alg in the unprotected header (the protected value wins; a wrong extra kid is ignored)."""

    @property
    def alg(self) -> Any:
        return self.protected.get(H_ALG, self.unprotected.get(H_ALG))

    def to_be_signed(self) -> bytes:
        return cbor.dumps(["Signature1", self.protected_bytes, b"", self.payload])


@dataclass(frozen=True)
class DccClaims:
    """The CWT claims of a DCC; `dgc` is the certificate itself (hcert[1])."""

    issuer: str
    issued_at: float
    expires_at: float
    dgc: dict
    claims: dict


# --- the layers, each raising StepError(step) -------------------------------------------
def unprefix(text: str) -> str:
    """Strip "HC1:"; a missing or different context identifier fails."""
    if not isinstance(text, str):
        raise StepError("prefix", "DCC: expected text")
    if len(text) > MAX_TEXT + len(PREFIX):
        raise StepError("prefix", "DCC: longer than any QR code holds", reason=Reason.TOO_LARGE)
    if not text.startswith(PREFIX):
        raise StepError("prefix", f"DCC: does not start with {PREFIX}")
    return text[len(PREFIX):]


def base45_decode(text: str) -> bytes:
    """RFC 9285 base45 (upper case only; a value over 65535 or a stray length fails)."""
    try:
        return bytes(base45.b45decode(text))
    except (ValueError, TypeError, UnicodeError):
        raise StepError("base45", "DCC: base45 layer is invalid") from None


def decompress(data: bytes) -> bytes:
    """zlib-inflate the COSE bytes (bounded: a zip bomb fails)."""
    return inflate(data, raw=False, step="zlib", what="DCC")


def parse_cose(data: bytes) -> DccSign1:
    """The COSE_Sign1 structure: tag 18 (possibly inside CWT tag 61) or untagged, 4 items."""
    if data[:2] == CWT_TAG_HEAD:
        data = data[2:]
    try:
        item = cbor.loads(data, "DCC COSE", tags=(TAG_COSE_SIGN1,), deterministic=False)
    except FormatError as e:
        raise StepError("cbor", e.message) from None
    if isinstance(item, cbor2.CBORTag):
        if item.tag != TAG_COSE_SIGN1:
            raise StepError("cbor", f"DCC COSE: CBOR tag {item.tag} is not COSE_Sign1 (18)")
        item = item.value
    if not isinstance(item, list) or len(item) != 4:
        raise StepError("cbor", "DCC COSE: not a 4-element COSE_Sign1 array")
    prot_bytes, unprot, payload, sig = item
    if not isinstance(prot_bytes, bytes) or not isinstance(unprot, dict) \
            or not isinstance(payload, bytes) or not isinstance(sig, bytes):
        raise StepError("cbor", "DCC COSE: header buckets, payload or signature of the wrong type")
    try:
        prot = cbor.loads(prot_bytes, "DCC protected header", deterministic=False) if prot_bytes else {}
    except FormatError as e:
        raise StepError("cbor", e.message) from None
    if not isinstance(prot, dict):
        raise StepError("cbor", "DCC COSE: protected header is not a map")
    return DccSign1(prot_bytes, prot, unprot, payload, sig)


def verify_signature(msg: DccSign1, signers: Mapping[bytes, Sequence[Signer]]) -> list[Signer]:
    """Every trusted certificate of the kid whose key verifies the signature, in trust-list
    order. A kid is 8 bytes and names no certificate uniquely (trust lists carry several DSCs
    under one kid, e.g. a key re-certified): each is tried, and the first one refusing is
    not the verdict. StepError when none verifies."""
    kid = msg.kid
    if kid is None:
        raise StepError("signature", "DCC: no kid in either header", reason=Reason.UNKNOWN_ISSUER)
    candidates = signers.get(kid) or ()
    if not candidates:
        raise StepError("signature", "DCC: signed by a key not in the trust list",
                        reason=Reason.UNKNOWN_ISSUER)
    verified: list[Signer] = []
    refusal: StepError | None = None
    for signer in candidates:
        try:
            _verify_with(msg, signer)
        except StepError as e:
            refusal = refusal or e
        else:
            verified.append(signer)
    if refusal is not None and not verified:
        raise refusal
    return verified


def _verify_with(msg: DccSign1, signer: Signer) -> None:
    tbs, sig, key = msg.to_be_signed(), msg.signature, signer.public_key
    try:
        if msg.alg == ALG_ES256 and isinstance(key, ec.EllipticCurvePublicKey):
            if len(sig) != 64 or key.curve.name != "secp256r1":
                raise InvalidSignature
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            key.verify(der, tbs, ec.ECDSA(hashes.SHA256()))
        elif msg.alg == ALG_PS256 and isinstance(key, rsa.RSAPublicKey):
            key.verify(sig, tbs, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                       hashes.SHA256())
        else:
            raise StepError("signature", "DCC: algorithm is not ES256/PS256 or does not fit the key",
                            reason=Reason.BAD_SIGNATURE)
    except InvalidSignature:
        raise StepError("signature", "DCC: signature does not verify", reason=Reason.BAD_SIGNATURE) from None


def signer_kinds(signer: Signer) -> frozenset[str]:
    """The DGC kinds ("v", "t", "r") the DSC may sign, from its extended key usage."""
    try:
        oids = [o.dotted_string for o in
                signer.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value]
    except x509.ExtensionNotFound:
        oids = []
    except ValueError:  # an empty EKU SEQUENCE, which `cryptography` refuses to parse
        oids = []
    kinds = frozenset(EKU_KIND[o] for o in oids if o in EKU_KIND)
    return kinds or frozenset(CONTENT)


def check_signer_validity(signer: Signer, c: DccClaims) -> None:
    """The DSC was valid when the DCC was signed (notBefore <= iat <= notAfter)."""
    cert = signer.certificate
    if not cert.not_valid_before_utc.timestamp() <= c.issued_at <= cert.not_valid_after_utc.timestamp():
        raise StepError("signer", "DCC: signed outside its signer certificate's validity",
                        reason=Reason.SIGNER_NOT_VALID)


def check_key_usage(signer: Signer, dgc: dict) -> None:
    """The DSC may sign every kind of entry (v, t, r) the DGC holds."""
    if not {k for k in CONTENT if k in dgc} <= signer_kinds(signer):
        raise StepError("signer", "DCC: the signer certificate's key usage does not cover this "
                                  "kind of certificate", reason=Reason.KEY_USAGE)


def decode_claims(msg: DccSign1) -> DccClaims:
    """The CWT claims and the DGC (hcert[1]); StepError("cbor") when they are malformed."""
    try:
        claims = cbor.loads(msg.payload, "DCC claims", deterministic=False)
    except FormatError as e:
        raise StepError("cbor", e.message) from None
    if not isinstance(claims, dict):
        raise StepError("cbor", "DCC claims: not a map")
    iss, iat, exp, hcert = (claims.get(k) for k in (C_ISS, C_IAT, C_EXP, C_HCERT))
    for name, v in (("iat (6)", iat), ("exp (4)", exp)):
        # a NumericDate (RFC 8392 §2) is an integer or a floating-point number of seconds
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise StepError("cbor", f"DCC claims: {name} is missing or not a NumericDate")
    if iss is not None and not isinstance(iss, str):
        raise StepError("cbor", "DCC claims: iss (1) is not text")
    if not isinstance(hcert, dict) or not isinstance(hcert.get(1), dict):
        raise StepError("cbor", "DCC claims: hcert (-260) has no DGC (1)")
    return DccClaims(iss or "", iat, exp, hcert[1], claims)  # type: ignore[arg-type]


def check_expiry(c: DccClaims, now: float) -> None:
    """iat <= now <= exp (CWT claims 6 and 4)."""
    if now < c.issued_at:
        raise StepError("expiry", "DCC: issued after the validation time", reason=Reason.NOT_YET_VALID)
    if now > c.expires_at:
        raise StepError("expiry", "DCC: expired", reason=Reason.EXPIRED)


def identity(dgc: dict) -> ClaimedIdentity:
    """Name (standardised forms when the primary is absent) and birth date of a DGC."""
    nam_v = dgc.get("nam")
    nam: dict = nam_v if isinstance(nam_v, dict) else {}

    def text(v: Any) -> str:
        return v if isinstance(v, str) else ""
    return ClaimedIdentity(text(nam.get("fn")) or text(nam.get("fnt")),
                           text(nam.get("gn")) or text(nam.get("gnt")), text(dgc.get("dob")))


def content(dgc: dict) -> tuple[str, ...]:
    """Which kinds of entry the DGC holds."""
    return tuple(CONTENT[k] for k in ("v", "t", "r") if isinstance(dgc.get(k), list) and dgc[k])


# --- the reader -------------------------------------------------------------------------
def check_signer(verified: Sequence[Signer], c: DccClaims) -> Signer:
    """The first certificate (of those whose key verified the signature) that was valid when
    the DCC was signed and may sign its kinds; the first one's refusal when none is."""
    refusal: StepError | None = None
    for signer in verified:
        try:
            check_signer_validity(signer, c)
            check_key_usage(signer, c.dgc)
        except StepError as e:
            refusal = refusal or e
        else:
            return signer
    raise refusal or StepError("signature", "DCC: no certificate verified", reason=Reason.UNKNOWN_ISSUER)


def read(text: str, signers: Mapping[bytes, Sequence[Signer]], now: float) -> Verdict:
    """Every layer at time `now`; `data["credential"]` is a ForeignCredential on success."""
    try:
        msg = parse_cose(decompress(base45_decode(unprefix(text))))
        claims = decode_claims(msg)
        signer = check_signer(verify_signature(msg, signers), claims)
        check_expiry(claims, now)
    except KioskError as e:
        return verdict_of(e)
    cred = ForeignCredential(FORMAT, claims.issuer, signer.kid.hex(), claims.issued_at, claims.expires_at,
                             content(claims.dgc), identity(claims.dgc), claims.dgc)
    return Verdict.good("EU DCC verified", credential=cred)
