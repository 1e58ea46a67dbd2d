"""COSE_Sign1 (RFC 9052 §4.2) with EdDSA/Ed25519 (alg -8), through the `cwt` library.

The protected header carries alg and kid (kid = SHA-256(public key)[:8], keys.kid), so the
kid is covered by the signature. Decoding first checks the structure with our strict CBOR
decoder, so malformed input gets a FormatError that says where, and an unknown kid gets
its own reason before any cryptography runs.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cbor2
from cwt import COSE, COSEKey
from nacl.signing import SigningKey, VerifyKey

from kiosk.errors import FormatError, Reason, VerificationError
from kiosk.protocol import cbor
from kiosk.protocol.keys import kid as key_id

ALG_EDDSA = -8
_H_ALG, _H_KID = 1, 4
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


def _private_cose_key(key: SigningKey) -> COSEKey:
    pub = bytes(key.verify_key)
    return COSEKey.new({1: 1, -1: 6, -2: pub, -4: bytes(key), 3: ALG_EDDSA, 2: key_id(pub)})


def _public_cose_key(key: VerifyKey, kid: bytes) -> COSEKey:
    # cwt picks the key whose kid equals the message's, so label it with that kid
    return COSEKey.new({1: 1, -1: 6, -2: bytes(key), 3: ALG_EDDSA, 2: kid})


def sign1(payload: bytes, key: SigningKey) -> bytes:
    """Sign `payload` as a tagged COSE_Sign1 with alg EdDSA and kid in the protected header."""
    kid = key_id(key.verify_key)
    return _ctx.encode(payload, _private_cose_key(key), protected={_H_ALG: ALG_EDDSA, _H_KID: kid})


def decode_sign1(data: bytes, what: str = "COSE_Sign1") -> Sign1:
    """Check the COSE_Sign1 structure without verifying; FormatError names what is wrong."""
    item = cbor.loads(data, what)
    if isinstance(item, cbor2.CBORTag):
        if item.tag != COSE_SIGN1_TAG:
            raise FormatError(f"{what}: CBOR tag {item.tag} is not COSE_Sign1 (18)")
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
    if prot.get(_H_ALG) != ALG_EDDSA:
        raise FormatError(f"{what}: algorithm is not EdDSA (-8)")
    if len(sig) != 64:
        raise FormatError(f"{what}: Ed25519 signature must be 64 bytes")
    return Sign1(prot_bytes, prot, unprot, payload, sig)


def verify_sign1(data: bytes, keys: Mapping[bytes, VerifyKey] | VerifyKey,
                 what: str = "COSE_Sign1") -> tuple[bytes, bytes]:
    """Verify a COSE_Sign1 against trusted keys (by kid) and return (payload, kid).

    Raises FormatError for malformed bytes and VerificationError with reason
    `unknown-issuer` (no trusted key has this kid) or `bad-signature`.
    """
    msg = decode_sign1(data, what)
    if isinstance(keys, VerifyKey):
        keys = {key_id(keys): keys}
    kid = msg.kid
    if kid is None or kid not in keys:
        raise VerificationError(f"{what}: signed by an unknown key", reason=Reason.UNKNOWN_ISSUER.value)
    try:
        # cwt reads only tagged messages; RFC 9052 §2 also allows untagged ones
        tagged = cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [msg.protected_bytes, msg.unprotected,
                                                            msg.payload, msg.signature]))
        payload = _ctx.decode(tagged, _public_cose_key(keys[kid], kid))
    except Exception:  # cwt raises VerifyError/DecodeError; either way the signature fails
        raise VerificationError(f"{what}: signature does not verify", reason=Reason.BAD_SIGNATURE.value) from None
    return payload, kid
