"""The issuer-signed revocation list (COSE_Sign1 over deterministic CBOR).

  {"v": 1, "site", "issued", "next_update", "seq", "revoked": [[pass_id, revoked_at], ...]}

Each revocation carries its time, so the gateway can judge a pass "at the entry's created
time" (docs/design-notes.md); `next_update` bounds how long a kiosk may trust the list.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nacl.signing import SigningKey, VerifyKey

from kiosk.errors import FormatError, VerificationError
from kiosk.protocol import cbor, cose

MAX_LIST_BYTES = 1 << 20
MAX_LIST_ITEMS = MAX_LIST_BYTES // 4  # an entry [pass_id, time] is 3 items in >= 12 bytes


@dataclass(frozen=True)
class RevocationList:
    """A verified revocation list."""

    site: str
    issued: int
    next_update: int
    seq: int
    revoked: Mapping[bytes, int] = field(default_factory=dict)
    raw: bytes = b""

    def is_stale(self, now: int, grace_s: int) -> bool:
        """Past next_update plus the grace period: staff are warned and passes refused."""
        return now > self.next_update + grace_s

    def revoked_at(self, pass_id: bytes, at: int) -> int | None:
        """When `pass_id` was revoked, if that was at or before `at`; else None."""
        t = self.revoked.get(pass_id)
        return t if t is not None and t <= at else None


def sign(issuer_key: SigningKey, *, site: str, revoked: Mapping[bytes, int], issued: int,
         next_update: int, seq: int) -> bytes:
    """Sign a revocation list; entries are sorted so the same list gives the same bytes."""
    body = {"v": 1, "site": site, "issued": issued, "next_update": next_update, "seq": seq,
            "revoked": [[pid, t] for pid, t in sorted(revoked.items())]}
    return cose.sign1(cbor.dumps(body), issuer_key)


def verify(data: bytes, issuers: Mapping[bytes, VerifyKey], site: str | None = None) -> RevocationList:
    """Verify and decode a list; FormatError or VerificationError when it is not acceptable."""
    if not isinstance(data, (bytes, bytearray)) or len(data) > MAX_LIST_BYTES:
        raise FormatError("revocation list: missing or too large")
    payload, _ = cose.verify_sign1(bytes(data), issuers, "revocation list")
    body = cbor.expect_map(cbor.loads(payload, "revocation list", max_items=MAX_LIST_ITEMS), "revocation list",
                           {"v": int, "site": str, "issued": int, "next_update": int, "seq": int,
                            "revoked": list})
    if body["v"] != 1:
        raise FormatError("revocation list: unknown version")
    if site is not None and body["site"] != site:
        raise VerificationError("revocation list: issued for another site", reason="wrong-site")
    revoked: dict[bytes, int] = {}
    for item in body["revoked"]:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], bytes)
                and isinstance(item[1], int) and not isinstance(item[1], bool)):
            raise FormatError("revocation list: an entry is malformed")
        revoked[item[0]] = item[1]
    return RevocationList(body["site"], body["issued"], body["next_update"], body["seq"], revoked, bytes(data))


def decode_unverified(data: bytes) -> dict:
    """The list's body without checking the signature (for the issuer's own bookkeeping)."""
    msg = cose.decode_sign1(data, "revocation list")
    return cbor.loads(msg.payload, "revocation list", max_items=MAX_LIST_ITEMS)
