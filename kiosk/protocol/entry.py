"""Ledger entries, their bodies, and the two MQTT messages that carry them (docs/design-notes.md).

Leaf: the exact bytes of a COSE_Sign1 by the kiosk key over the deterministic CBOR map
  {v, type, entry_id, site, kiosk, created, captured?, patient?, body_hash, refs}
`created` is Unix time in milliseconds; `captured` (ms) is when the entry's presentation was
read, so the gateway judges the presentation at that time (docs/design-notes.md, "Time");
`refs` are entry hashes of the same session.
entry_hash = SHA-256(leaf) names an entry and is the dedup key.

Body: deterministic CBOR map with a random `salt`; body_hash = SHA-256(salt ‖ body bytes).
Personal data lives only in the body, which can be erased without breaking any proof.

Record (kiosk → gateway): {entry_hash, kid, sealed, last_size}, where `sealed` is an X25519
  sealed box to the gateway sealing key `kid` of the CBOR map {leaf, body, presentation}: the
  broker sees an entry hash and ciphertext, not even the leaf's pseudonymous patient id. The
  gateway opens it and checks that the leaf is the one named and that the body matches the
  leaf's body_hash.
Receipt (gateway → kiosk): {entry_hash, status, reason, leaf_index, checkpoint, inclusion,
  consistency, from_size, sig}, signed by the log key; `consistency` runs from `from_size`
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import cbor2
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox
from nacl.signing import SigningKey, VerifyKey

from kiosk.errors import FormatError, Reason, VerificationError
from kiosk.ids import ID_RE
from kiosk.protocol import cbor, cose
from kiosk.protocol.keys import kid as key_id

VERSION = 1
TYPES = ("check-in", "consent", "consent-withdrawal", "staff-override", "kiosk-event", "ehr-update")
# written by the gateway itself (the EHR's answer to a check-in), never accepted from a kiosk
GATEWAY_TYPES = ("ehr-update",)
MAX_BODY = 192 * 1024
MAX_RECORD = 256 * 1024
STATUS_ACCEPTED, STATUS_DUPLICATE, STATUS_REJECTED = "accepted", "duplicate", "rejected"


def entry_hash(leaf: bytes) -> bytes:
    """SHA-256 of the leaf bytes (not the RFC 9162 leaf hash, which is the tree's business)."""
    return hashlib.sha256(leaf).digest()


@dataclass(frozen=True)
class Envelope:
    """The signed, PHI-free part of an entry."""

    type: str
    entry_id: bytes
    site: str
    kiosk: str
    created: int
    body_hash: bytes
    refs: tuple[bytes, ...] = ()
    patient: str | None = None
    v: int = VERSION
    captured: int | None = None

    def to_map(self) -> dict:
        m = {"v": self.v, "type": self.type, "entry_id": self.entry_id, "site": self.site,
             "kiosk": self.kiosk, "created": self.created, "body_hash": self.body_hash,
             "refs": list(self.refs)}
        if self.patient is not None:
            m["patient"] = self.patient
        if self.captured is not None:
            m["captured"] = self.captured
        return m


def make_body(content: Mapping[str, object], salt: bytes | None = None) -> tuple[bytes, bytes]:
    """Encode a body with a fresh salt; return (body bytes, body_hash)."""
    if "salt" in content:
        raise ValueError("content may not carry its own salt")
    salt = salt or os.urandom(16)
    body = cbor.dumps({"salt": salt, **content})
    return body, hashlib.sha256(salt + body).digest()


def body_hash_of(body: bytes) -> bytes:
    """Recompute a body's hash from its bytes; FormatError if it has no salt."""
    m = cbor.loads(body, "body")
    if not isinstance(m, dict) or not isinstance(m.get("salt"), bytes) or len(m["salt"]) < 16:
        raise FormatError("body: missing its salt")
    return hashlib.sha256(m["salt"] + body).digest()


def decode_body(body: bytes) -> dict:
    """The body's content (salt removed)."""
    m = cbor.loads(body, "body")
    if not isinstance(m, dict):
        raise FormatError("body: expected a map")
    return {k: v for k, v in m.items() if k != "salt"}


def new_envelope(type: str, *, site: str, kiosk: str, body_hash: bytes, created_ms: int,
                 refs: tuple[bytes, ...] = (), patient: str | None = None,
                 captured_ms: int | None = None) -> Envelope:
    """A new envelope with a random entry id; `captured_ms` for an entry with a presentation."""
    env = Envelope(type, os.urandom(16), site, kiosk, created_ms, body_hash, tuple(refs), patient,
                   captured=captured_ms)
    _check_envelope(env.to_map())
    return env


def sign_leaf(env: Envelope, kiosk_key: SigningKey) -> bytes:
    """The leaf: a COSE_Sign1 by the kiosk key over the envelope."""
    return cose.sign1(cbor.dumps(env.to_map()), kiosk_key)


def _check_envelope(m: object) -> dict:
    cbor.expect_map(m, "leaf", {"v": int, "type": str, "entry_id": bytes, "site": str, "kiosk": str,
                                "created": int, "body_hash": bytes, "refs": list},
                    {"patient": str, "captured": int})
    assert isinstance(m, dict)
    if m["v"] != VERSION:
        raise FormatError("leaf: unknown version")
    if m["type"] not in TYPES:
        raise FormatError("leaf: unknown entry type")
    if not ID_RE.match(m["kiosk"]) or not ID_RE.match(m["site"]):
        raise FormatError("leaf: bad kiosk or site id")
    if len(m["entry_id"]) != 16 or len(m["body_hash"]) != 32:
        raise FormatError("leaf: bad entry_id or body_hash length")
    if m["created"] < 0 or not all(isinstance(r, bytes) and len(r) == 32 for r in m["refs"]) \
            or len(m["refs"]) > 8:
        raise FormatError("leaf: bad created time or refs")
    if "patient" in m and not (1 <= len(m["patient"]) <= 64):
        raise FormatError("leaf: bad patient id")
    if "captured" in m and m["captured"] < 0:
        raise FormatError("leaf: bad captured time")
    return m


def decode_leaf(leaf: bytes) -> tuple[Envelope, bytes | None]:
    """Decode a leaf without verifying its signature: (envelope, signer kid).

    Only the one canonical encoding is a leaf: the entry hash names an entry, so the same
    signed envelope re-encoded (untagged, an unprotected header, longer CBOR lengths) must
    not count as a second entry, nor smuggle unerasable bytes into the log.
    """
    env, msg = decode_leaf_message(leaf)
    return env, msg.kid


def decode_leaf_message(leaf: bytes) -> tuple[Envelope, cose.Sign1]:
    """`decode_leaf`, returning the decoded COSE_Sign1 too (for `cose.verify_decoded`)."""
    msg = cose.decode_sign1(leaf, "leaf")
    if msg.unprotected:
        raise FormatError("leaf: the unprotected header must be empty")
    payload = cbor.loads(msg.payload, "leaf payload")
    canonical = cbor.dumps(cbor2.CBORTag(cose.COSE_SIGN1_TAG, [msg.protected_bytes, {}, msg.payload,
                                                                msg.signature]))
    if cbor.dumps(payload) != msg.payload or bytes(leaf) != canonical:
        raise FormatError("leaf: not in its canonical encoding")
    m = _check_envelope(payload)
    return Envelope(m["type"], m["entry_id"], m["site"], m["kiosk"], m["created"], m["body_hash"],
                    tuple(m["refs"]), m.get("patient"), m["v"], m.get("captured")), msg


def open_leaf(leaf: bytes, kiosk_key_for: Callable[[str], VerifyKey | None]) -> Envelope:
    """Decode and verify a leaf against the registry's key for the kiosk it names."""
    env, _ = decode_leaf(leaf)
    key = kiosk_key_for(env.kiosk)
    if key is None:
        raise VerificationError("leaf: kiosk is not in the registry", reason=Reason.UNKNOWN_KIOSK.value)
    cose.verify_sign1(leaf, key, "leaf")
    return env


@dataclass(frozen=True)
class Record:
    """A record in the clear: what the kiosk's outbox holds and what the gateway opens.

    On the wire it only ever travels sealed (`seal`): body and presentation carry personal
    data, and the broker, its persistence file and its logs must see none of it.
    """

    leaf: bytes
    body: bytes
    presentation: dict | None
    last_size: int

    def seal(self, gateway_key: PublicKey) -> bytes:
        """The record message: leaf, body and presentation sealed to the gateway sealing key;
        in the clear only the entry hash (which names the receipt) and `last_size`."""
        inner = cbor.dumps({"leaf": self.leaf, "body": self.body, "presentation": self.presentation})
        return cbor.dumps({"entry_hash": entry_hash(self.leaf), "kid": key_id(gateway_key),
                           "sealed": SealedBox(gateway_key).encrypt(inner), "last_size": self.last_size})


@dataclass(frozen=True)
class SealedRecord:
    """A record message as it arrives: the entry hash it claims, and the sealed record."""

    entry_hash: bytes
    kid: bytes
    sealed: bytes
    last_size: int

    def open(self, keys: Mapping[bytes, PrivateKey]) -> Record:
        """Open the sealed part with the gateway sealing key it names; FormatError when it
        does not open, does not decode, or holds another leaf than the one named."""
        key = keys.get(self.kid)
        if key is None:
            raise FormatError("record: sealed to a key this gateway does not hold")
        try:
            inner = SealedBox(key).decrypt(self.sealed)
        except CryptoError:
            raise FormatError("record: the sealed part does not open") from None
        m = cbor.expect_map(cbor.loads(inner, "sealed record"), "sealed record",
                            {"leaf": bytes, "body": bytes}, {"presentation": dict})
        if "presentation" not in m:
            raise FormatError("sealed record: missing field 'presentation'")
        if entry_hash(m["leaf"]) != self.entry_hash:
            raise FormatError("sealed record: holds another leaf than the one named")
        if len(m["body"]) > MAX_BODY:
            raise FormatError("sealed record: body larger than the size limit")
        return Record(m["leaf"], m["body"], m["presentation"], self.last_size)


def decode_record(data: bytes) -> SealedRecord:
    """Decode a record message (not opened); FormatError (too-large or malformed) names the problem."""
    if not isinstance(data, (bytes, bytearray)):
        raise FormatError("record: expected bytes")
    if len(data) > MAX_RECORD:
        raise FormatError("record: larger than the size limit", reason=Reason.TOO_LARGE.value)
    m = cbor.expect_map(cbor.loads(bytes(data), "record"), "record",
                        {"entry_hash": bytes, "kid": bytes, "sealed": bytes, "last_size": int})
    if len(m["entry_hash"]) != 32 or len(m["kid"]) != 8 or m["last_size"] < 0:
        raise FormatError("record: bad entry_hash, kid or last_size")
    return SealedRecord(m["entry_hash"], m["kid"], m["sealed"], m["last_size"])


RECEIPT_CONTEXT = b"kiosk-receipt-v1\n"  # domain separation of the log key's receipt signature
# What a rejection may say (docs/design-notes.md: enumerated reasons): anything else is a malformed receipt.
REJECTION_REASONS = frozenset(r.value for r in Reason if r not in (Reason.OK,))


@dataclass(frozen=True)
class Receipt:
    """The gateway's answer to a record, signed by the log key.

    `from_size` names the tree size `consistency` starts from (0: no proof); `sig` is the
    log key's Ed25519 signature over RECEIPT_CONTEXT ‖ the receipt's fields (signed_bytes), so
    a rejection cannot be forged by whoever can write a kiosk's receipts topic, and a proof
    that fails is the log's own signed statement.
    """

    entry_hash: bytes
    status: str
    reason: str = ""
    leaf_index: int | None = None
    checkpoint: bytes | None = None
    inclusion: tuple[bytes, ...] = ()
    consistency: tuple[bytes, ...] = ()
    from_size: int = 0
    sig: bytes = b""

    @property
    def accepted(self) -> bool:
        return self.status in (STATUS_ACCEPTED, STATUS_DUPLICATE)

    def _map(self) -> dict:
        return {"entry_hash": self.entry_hash, "status": self.status, "reason": self.reason,
                "leaf_index": self.leaf_index, "checkpoint": self.checkpoint,
                "inclusion": list(self.inclusion), "consistency": list(self.consistency),
                "from_size": self.from_size}

    def signed_bytes(self) -> bytes:
        """What the log key signs: RECEIPT_CONTEXT ‖ the CBOR array of every field but `sig`,
        in declaration order (an array of bytes, text, integers and null has one encoding)."""
        return RECEIPT_CONTEXT + cbor2.dumps([
            self.entry_hash, self.status, self.reason, self.leaf_index, self.checkpoint,
            list(self.inclusion), list(self.consistency), self.from_size])

    def signed(self, log_key: SigningKey) -> Receipt:
        """This receipt with the log key's signature."""
        return Receipt(**{**self.__dict__, "sig": log_key.sign(self.signed_bytes()).signature})

    def verify_signature(self, log_key: VerifyKey) -> None:
        """VerificationError unless the log key signed this receipt."""
        try:
            log_key.verify(self.signed_bytes(), self.sig)
        except Exception:  # nacl raises BadSignatureError, or ValueError for a bad length
            raise VerificationError("receipt: not signed by the log key",
                                    reason=Reason.BAD_SIGNATURE.value) from None

    def to_cbor(self) -> bytes:
        return cbor.dumps({**self._map(), "sig": self.sig})


def decode_receipt(data: bytes) -> Receipt:
    """Decode a receipt message (structure only; net.receipt verifies its proofs)."""
    m = cbor.expect_map(cbor.loads(data, "receipt"), "receipt",
                        {"entry_hash": bytes, "status": str, "reason": str, "inclusion": list,
                         "consistency": list, "from_size": int, "sig": bytes},
                        {"leaf_index": int, "checkpoint": bytes})
    if m["status"] not in (STATUS_ACCEPTED, STATUS_DUPLICATE, STATUS_REJECTED):
        raise FormatError("receipt: unknown status")
    for name in ("inclusion", "consistency"):
        if len(m[name]) > 64 or not all(isinstance(h, bytes) for h in m[name]):
            raise FormatError(f"receipt: bad {name} proof")
    if m["status"] != STATUS_REJECTED and (m.get("leaf_index") is None or m.get("checkpoint") is None):
        raise FormatError("receipt: an accepted receipt needs leaf_index and checkpoint")
    if m["status"] == STATUS_REJECTED and m["reason"] not in REJECTION_REASONS:
        raise FormatError("receipt: a rejection must give one of the enumerated reasons")
    if m["from_size"] < 0 or len(m["sig"]) != 64 or len(m["entry_hash"]) != 32:
        raise FormatError("receipt: bad from_size, signature or entry hash")
    return Receipt(m["entry_hash"], m["status"], m["reason"], m.get("leaf_index"), m.get("checkpoint"),
                   tuple(m["inclusion"]), tuple(m["consistency"]), m["from_size"], m["sig"])
