"""A consent receipt the patient keeps: the kiosk hands it to the web wallet as a link.

    CBOR {leaf, leaf_index, checkpoint, inclusion}
    link = WALLET_URL + "#r=" + base64url(CBOR)        (the fragment never reaches a server)

`leaf` is the kiosk-signed entry (no personal data: see docs/design-notes.md), `checkpoint`
the log-signed C2SP note the kiosk verified it under, `inclusion` the RFC 9162 proof. The
wallet checks it offline against the log key it got at enrolment, and that the entry names
its own pseudonymous patient id. Nothing in it is PHI, so a photographed QR leaks nothing.
"""
from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from kiosk.errors import FormatError
from kiosk.protocol import cbor

MAX_PROOF = 64


@dataclass(frozen=True)
class ConsentReceipt:
    leaf: bytes
    leaf_index: int
    checkpoint: bytes
    inclusion: tuple[bytes, ...]

    def to_cbor(self) -> bytes:
        return cbor.dumps({"leaf": self.leaf, "leaf_index": self.leaf_index, "checkpoint": self.checkpoint,
                           "inclusion": list(self.inclusion)})

    def link(self, wallet_url: str) -> str:
        """The link (or QR text) that opens the wallet and stores this receipt."""
        encoded = base64.urlsafe_b64encode(self.to_cbor()).rstrip(b"=").decode("ascii")
        return wallet_url.split("#", 1)[0].rstrip("/") + "/#r=" + encoded


def make(leaf: bytes, leaf_index: int, checkpoint: bytes, inclusion: Sequence[bytes]) -> ConsentReceipt:
    return ConsentReceipt(bytes(leaf), int(leaf_index), bytes(checkpoint), tuple(bytes(h) for h in inclusion))


def decode(data: bytes) -> ConsentReceipt:
    """Decode a receipt (structure only; proofs are checked by whoever holds the log key)."""
    m = cbor.expect_map(cbor.loads(data, "consent receipt"), "consent receipt",
                        {"leaf": bytes, "leaf_index": int, "checkpoint": bytes, "inclusion": list})
    if m["leaf_index"] < 0 or len(m["inclusion"]) > MAX_PROOF:
        raise FormatError("consent receipt: bad leaf index or proof")
    if not all(isinstance(h, bytes) and len(h) == 32 for h in m["inclusion"]):
        raise FormatError("consent receipt: bad inclusion proof")
    return ConsentReceipt(m["leaf"], m["leaf_index"], m["checkpoint"], tuple(m["inclusion"]))
