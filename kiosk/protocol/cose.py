"""COSE_Sign1 (RFC 9052 §4.2) with EdDSA/Ed25519 (alg -8): made by the `cwt` library, verified
over the RFC 9052 §4.4 Sig_structure with libsodium.

The protected header carries alg and kid (kid = SHA-256(public key)[:8], keys.kid), so the
kid is covered by the signature. Decoding first checks the structure with the project's
CBOR policy (kiosk.protocol.cbor) and RFC 9052 §3's header rules, so malformed input gets
a FormatError that says where, and an unknown kid gets its own reason before any
cryptography runs:
  - the message is tagged COSE_Sign1 (18): every one we make is, and one form means one hash;
  - alg is in the protected header only, and is EdDSA;
  - a label appears once: no duplicates within a bucket (the CBOR policy refuses duplicate
    map keys) nor across the protected and unprotected buckets;
  - crit is refused (we understand no critical extension), kid is a byte string.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cbor2
from cwt import COSE, COSEKey
from cwt.cose_key_interface import COSEKeyInterface
from nacl.signing import SigningKey, VerifyKey

from kiosk.errors import FormatError, Reason, VerificationError
from kiosk.protocol import cbor
from kiosk.protocol.keys import kid as key_id

ALG_EDDSA = -8
_H_ALG, _H_CRIT, _H_KID = 1, 2, 4
COSE_SIGN1_TAG = 18

_ctx = COSE.new(deterministic_header=True)


@dataclass(frozen=True)
class Sign1:
    """A decoded, not yet verified COSE_Sign1."""

    protected_bytes: bytes
    protected: dict
    unprotected: dict
    payload: bytes
    signature: bytes

    @property
    def kid(self) -> bytes | None:
        k = self.protected.get(_H_KID, self.unprotected.get(_H_KID))
        return k if isinstance(k, bytes) else None


def _private_cose_key(key: SigningKey) -> COSEKeyInterface:
    pub = bytes(key.verify_key)
    return COSEKey.new({1: 1, -1: 6, -2: pub, -4: bytes(key), 3: ALG_EDDSA, 2: key_id(pub)})


def sign1(payload: bytes, key: SigningKey) -> bytes:
    """Sign `payload` as a tagged COSE_Sign1 with alg EdDSA and kid in the protected header."""
    kid = key_id(key.verify_key)
    return _ctx.encode(payload, _private_cose_key(key), protected={_H_ALG: ALG_EDDSA, _H_KID: kid})


def decode_sign1(data: bytes, what: str = "COSE_Sign1", max_bytes: int = cbor.MAX_BYTES) -> Sign1:
    """Check the COSE_Sign1 structure without verifying; FormatError names what is wrong."""
    item = cbor.loads(data, what, tags=(COSE_SIGN1_TAG,), max_bytes=max_bytes)
    if not isinstance(item, cbor2.CBORTag):
        raise FormatError(f"{what}: not a tagged COSE_Sign1 (tag 18)")
    item = item.value
    if not isinstance(item, list) or len(item) != 4:
        raise FormatError(f"{what}: not a 4-element COSE_Sign1 array")
    prot_bytes, unprot, payload, sig = item
    if not isinstance(prot_bytes, bytes) or not isinstance(unprot, dict):
        raise FormatError(f"{what}: bad header buckets")
    if not isinstance(payload, bytes) or not isinstance(sig, bytes):
        raise FormatError(f"{what}: payload and signature must be byte strings")
    prot = cbor.loads(prot_bytes, f"{what} protected header") if prot_bytes else {}
    if not isinstance(prot, dict):
        raise FormatError(f"{what}: protected header is not a map")
    if _H_ALG in unprot:
        raise FormatError(f"{what}: alg must be in the protected header only")
    if set(prot) & set(unprot):
        raise FormatError(f"{what}: a header label appears in both buckets")
    if _H_CRIT in prot or _H_CRIT in unprot:
        raise FormatError(f"{what}: critical header parameters are not supported")
    if prot.get(_H_ALG) != ALG_EDDSA:
        raise FormatError(f"{what}: algorithm is not EdDSA (-8)")
    if not isinstance(prot.get(_H_KID, unprot.get(_H_KID, b"")), bytes):
        raise FormatError(f"{what}: kid must be a byte string")
    if len(sig) != 64:
        raise FormatError(f"{what}: Ed25519 signature must be 64 bytes")
    return Sign1(prot_bytes, prot, unprot, payload, sig)


def verify_sign1(data: bytes, keys: Mapping[bytes, VerifyKey] | VerifyKey,
                 what: str = "COSE_Sign1") -> tuple[bytes, bytes]:
    """Verify a COSE_Sign1 against trusted keys (by kid) and return (payload, kid).

    Raises FormatError for malformed bytes and VerificationError with reason
    `unknown-issuer` (no trusted key has this kid) or `bad-signature`.
    """
    return verify_decoded(decode_sign1(data, what), keys, what)


def sig_structure(msg: Sign1) -> bytes:
    """RFC 9052 §4.4 ToBeSigned: ["Signature1", body_protected, external_aad = h'', payload]."""
    return cbor.dumps(["Signature1", msg.protected_bytes, b"", msg.payload])


def verify_decoded(msg: Sign1, keys: Mapping[bytes, VerifyKey] | VerifyKey,
                   what: str = "COSE_Sign1") -> tuple[bytes, bytes]:
    """`verify_sign1` for a message `decode_sign1` has checked already (no second decode).

    The Ed25519 signature is checked over the Sig_structure with libsodium directly: alg and
    kid were checked by decode_sign1, so a COSE library would add nothing but the cost of
    building a key object per message."""
    if isinstance(keys, VerifyKey):
        keys = {key_id(keys): keys}
    kid = msg.kid
    if kid is None or kid not in keys:
        raise VerificationError(f"{what}: signed by an unknown key", reason=Reason.UNKNOWN_ISSUER.value)
    try:
        keys[kid].verify(sig_structure(msg), msg.signature)
    except Exception:  # nacl raises BadSignatureError (or ValueError): the signature fails
        raise VerificationError(f"{what}: signature does not verify",
                                reason=Reason.BAD_SIGNATURE.value) from None
    return msg.payload, kid
