"""Receipt verification: the kiosk as a witness of the log (docs/design-notes.md).

Every receipt, a rejection included, is signed by the log key (entry.Receipt.signed): one
without that signature is forged and refused, whatever it says. An accepted or duplicate
receipt is accepted only if all of this holds:
  1. its checkpoint is a C2SP signed note by the log's key, for the expected origin;
  2. it names this record's leaf (entry_hash = SHA-256(leaf));
  3. the inclusion proof puts RFC 9162 leaf_hash(leaf) at leaf_index in that tree;
  4. the checkpoint fits the kiosk's chain of accepted checkpoints (below).

The chain: every checkpoint the kiosk accepts is proven consistent with the head before it,
so they are all views of one append-only log. A receipt names the size its consistency proof
starts from (`from_size`). Its checkpoint is accepted when it already is a link of the chain
(same size and root: inclusion alone is enough), or when the proof starts at the head and
verifies (the checkpoint becomes the new head). A proof from any other size says nothing
about the head — the receipt answered an older copy, or a gateway that has not seen the
kiosk's latest receipts — so the record is sent again with the head as its base (stale base:
no alarm, no log line above info).

An alarm means a *proven* inconsistency: two checkpoints signed by the log key that cannot
both be true — two of one size with different roots, or a log-signed receipt whose proof
from the kiosk's head fails. Both signed notes are kept as evidence. Anything else that
fails (a forged signature, a malformed message, a proof that does not name this record) is
refused and counted (`outbox.refusals()`): the record stays and is sent again later.
"""
from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kiosk.errors import FormatError, LogIntegrityError, Reason, VerificationError
from kiosk.ledger import merkle
from kiosk.ledger.checkpoint import Checkpoint, NoteVerifier, open_checkpoint
from kiosk.net.outbox import Outbox, ReceiptSummary, TrustedCheckpoint
from kiosk.protocol import receipt_link
from kiosk.protocol.entry import Receipt, decode_receipt, entry_hash
from kiosk.protocol.keys import load_verify_key
from kiosk.protocol.receipt_link import ConsentReceipt

log = logging.getLogger(__name__)

ALARM_INCONSISTENT = "log-inconsistent"
REFUSED_FORGED = "receipt-forged"
REFUSED_MALFORMED = "receipt-malformed"


class StaleBaseError(VerificationError):
    """The receipt's proof does not start at the kiosk's head: resend, no alarm."""


class ProvenInconsistency(LogIntegrityError):
    """Two log-signed statements that cannot both be true; `evidence` holds both notes."""

    def __init__(self, message: str, evidence: Sequence[bytes]) -> None:
        super().__init__(message, reason=Reason.INCONSISTENT.value)
        self.evidence = tuple(evidence)


def escape(text: str, limit: int = 200) -> str:
    """`text` safe for one log or terminal line: control characters as \\x.. escapes."""
    out = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                  for c in text[:limit])
    return out + ("..." if len(text) > limit else "")


@dataclass(frozen=True)
class AcceptedReceipt:
    """A receipt that verified: where the entry sits and the checkpoint that proves it."""

    entry_hash: bytes
    leaf_index: int
    checkpoint: Checkpoint
    note: bytes

    @property
    def trusted(self) -> TrustedCheckpoint:
        return TrustedCheckpoint(self.checkpoint.size, self.checkpoint.root_hash, self.note)


def verify_receipt(leaf: bytes, receipt: Receipt, verifier: NoteVerifier, *,
                   origin: str | None = None, head: TrustedCheckpoint | None = None,
                   link: Callable[[int], TrustedCheckpoint | None] = lambda size: None,
                   opened: dict[bytes, Checkpoint] | None = None) -> AcceptedReceipt:
    """Verify a (signature-checked) accepted/duplicate receipt for `leaf` against the chain.

    `head` is the chain's head and `link(size)` any accepted checkpoint of that size. Raises
    VerificationError for a receipt that proves nothing about this record, StaleBaseError
    when its proof does not start at the head, and ProvenInconsistency when the log's signed
    statements contradict the chain. `opened` caches verified checkpoint notes (a gateway
    batch answers many records with one checkpoint: its signature is checked once).
    """
    if not receipt.accepted or receipt.leaf_index is None or receipt.checkpoint is None:
        raise VerificationError("receipt: not an accepted receipt", reason=Reason.MALFORMED.value)
    want = entry_hash(leaf)
    if receipt.entry_hash != want:
        raise VerificationError("receipt: names another entry", reason=Reason.WRONG_ENTRY.value)
    cp = opened.get(receipt.checkpoint) if opened is not None else None
    try:
        if cp is None:
            cp = open_checkpoint(receipt.checkpoint, verifier, origin if origin is not None
                                 else verifier.name)
            if opened is not None:
                opened[receipt.checkpoint] = cp
    except FormatError as e:
        raise VerificationError(f"receipt: checkpoint malformed ({e.message})",
                                reason=Reason.MALFORMED.value) from None
    except VerificationError as e:
        raise VerificationError(f"receipt: checkpoint {e.message}",
                                reason=Reason.BAD_SIGNATURE.value) from None
    try:  # RFC 9162 §2.1.3.2
        merkle.verify_inclusion(merkle.leaf_hash(leaf), receipt.leaf_index, cp.size,
                                receipt.inclusion, cp.root_hash)
    except VerificationError as e:
        raise VerificationError(f"receipt: {e.message}", reason=Reason.BAD_PROOF.value) from None
    accepted = AcceptedReceipt(want, receipt.leaf_index, cp, receipt.checkpoint)

    known = link(cp.size)
    if known is not None:
        if known.root_hash != cp.root_hash:
            raise ProvenInconsistency(f"log: two signed checkpoints of size {cp.size} differ",
                                      [known.note, receipt.checkpoint])
        return accepted  # a link of the chain already: the inclusion proof is all it needs
    head_size = head.size if head is not None else 0
    if receipt.from_size != head_size or cp.size < head_size:
        raise StaleBaseError(f"receipt: proves consistency from size {receipt.from_size}, the "
                             f"kiosk's head is size {head_size}", reason=Reason.STALE.value)
    if head is not None and head_size > 0:
        try:  # RFC 9162 §2.1.4.2
            merkle.verify_consistency(head_size, cp.size, head.root_hash, cp.root_hash,
                                      receipt.consistency)
        except VerificationError as e:
            # the log signed both checkpoints and this receipt: its own proof that the newer
            # one extends the head fails
            raise ProvenInconsistency(f"log: checkpoint {cp.size} is not consistent with "
                                      f"accepted checkpoint {head_size} ({e.message})",
                                      [head.note, receipt.checkpoint]) from None
    return accepted


# Rejections that say something about the gateway's state at that moment, not about the
# record: a consent whose check-in another gateway has not appended yet, a gateway that has
# no revocation list yet. Parking those would strand valid records (docs/design-notes.md).
TRANSIENT_REASONS = frozenset({Reason.WRONG_ENTRY.value, Reason.REVOCATION_LIST_STALE.value})


class Outcome(str, enum.Enum):
    """What `process_receipt` did with a receipt message."""

    ACCEPTED = "accepted"          # verified; record deleted, receipt line kept
    PARKED = "parked"              # the gateway rejected the record; kept for staff
    UNKNOWN = "unknown"            # no such record waiting (a second receipt): ignored
    REFUSED = "refused"            # forged or wrong receipt: record kept, refusal counted
    INCONSISTENT = "inconsistent"  # the log contradicts an accepted checkpoint: alarm
    STALE_BASE = "stale-base"      # the proof starts elsewhere than the head: send it again
    RETRY = "retry"                # rejected for a passing reason; send it again later
    MALFORMED = "malformed"        # not a receipt at all: refusal counted


@dataclass(frozen=True)
class ReceiptResult:
    """The outcome of one receipt message, with the entry it named (if any)."""

    outcome: Outcome
    entry_hash: bytes | None = None
    detail: str = ""
    # accepted: what the patient can keep (leaf, index, signed checkpoint, inclusion proof)
    proof: ConsentReceipt | None = None


def process_receipt(outbox: Outbox, data: bytes, verifier: NoteVerifier,
                    origin: str | None = None) -> ReceiptResult:
    """Handle one receipt message end to end against the outbox (see process_receipts)."""
    return process_receipts(outbox, [data], verifier, origin)[0]


def process_receipts(outbox: Outbox, messages: Sequence[bytes], verifier: NoteVerifier,
                     origin: str | None = None) -> list[ReceiptResult]:
    """Handle receipt messages end to end against the outbox; one result per message.

    Verified receipts are completed together in one outbox transaction (one fsync for a
    burst of receipts, not one each). Never raises for bad input: every failure is an
    outcome; a proven inconsistency is an alarm (`outbox.raise_alarm`, with both signed
    notes), anything else refused is counted (`outbox.refuse`). Details name hash prefixes
    and sizes, no PHI. StoreError from the outbox itself propagates.
    """
    results: list[ReceiptResult] = []
    done: list[tuple[bytes, ReceiptSummary, TrustedCheckpoint]] = []
    batch_links: dict[int, TrustedCheckpoint] = {}  # accepted in this batch, not yet stored
    head = [outbox.last_checkpoint()]  # the chain's head, as it moves
    opened: dict[bytes, Checkpoint] = {}

    def link(size: int) -> TrustedCheckpoint | None:
        return batch_links.get(size) or outbox.checkpoint_link(size)

    for data in messages:
        res, ok = _judge(outbox, data, verifier, origin, link, head[0],
                         {h for h, _, _ in done}, opened)
        if ok is not None:
            batch_links.setdefault(ok.checkpoint.size, ok.trusted)
            if head[0] is None or ok.checkpoint.size > head[0].size:
                head[0] = ok.trusted
            done.append((ok.entry_hash, ReceiptSummary(ok.leaf_index, ok.checkpoint.size),
                         ok.trusted))
        results.append(res)
    outbox.complete_many(done)
    return results


def _judge(outbox: Outbox, data: bytes, verifier: NoteVerifier, origin: str | None,
           link: Callable[[int], TrustedCheckpoint | None], head: TrustedCheckpoint | None,
           completed: set[bytes], opened: dict[bytes, Checkpoint]
           ) -> tuple[ReceiptResult, AcceptedReceipt | None]:
    try:
        receipt = decode_receipt(data)
    except FormatError as e:
        outbox.refuse(REFUSED_MALFORMED, escape(e.message))
        log.warning("receipt malformed: %s", escape(e.message))
        return ReceiptResult(Outcome.MALFORMED, None, e.message), None
    h = receipt.entry_hash
    tag = h[:6].hex()
    try:
        receipt.verify_signature(verifier.key)
    except VerificationError as e:
        # whoever can write this kiosk's receipts topic cannot park or complete its records
        outbox.refuse(REFUSED_FORGED, f"entry {tag}: {e.message}")
        log.warning("receipt for %s refused: %s", tag, e.message)
        return ReceiptResult(Outcome.REFUSED, h, e.message), None
    entry = None if h in completed else outbox.get(h)
    if entry is None or (entry.parked and receipt.status == "rejected"):
        log.debug("receipt for %s: no record waiting", tag)
        return ReceiptResult(Outcome.UNKNOWN, h), None
    # (an accepted receipt for a parked record is verified and completes it like any other)
    if receipt.status == "rejected":
        reason = receipt.reason  # one of the enumerated reasons (decode_receipt checked)
        if reason in TRANSIENT_REASONS:
            # the gateway's state, not the record, is at fault: send it again later
            log.info("record %s: gateway says %s; will send again", tag, reason)
            return ReceiptResult(Outcome.RETRY, h, reason), None
        outbox.park(h, reason)
        log.warning("record %s rejected by the gateway: %s", tag, reason)
        return ReceiptResult(Outcome.PARKED, h, reason), None
    try:
        ok = verify_receipt(entry.leaf, receipt, verifier, origin=origin, head=head, link=link,
                            opened=opened)
    except StaleBaseError as e:
        log.info("record %s: %s; sending it again", tag, e.message)
        return ReceiptResult(Outcome.STALE_BASE, h, e.message), None
    except ProvenInconsistency as e:
        alarm = outbox.raise_alarm(ALARM_INCONSISTENT, f"entry {tag}: {e.message}", e.evidence)
        log.error("LOG INTEGRITY ALARM %d for entry %s: %s", alarm, tag, e.message)
        return ReceiptResult(Outcome.INCONSISTENT, h, e.message), None
    except VerificationError as e:
        outbox.refuse(REFUSED_FORGED, f"entry {tag}: {e.message}")
        log.warning("receipt for %s refused: %s", tag, e.message)
        return ReceiptResult(Outcome.REFUSED, h, e.message), None
    log.debug("record %s in the log at %d (size %d)", tag, ok.leaf_index, ok.checkpoint.size)
    proof = receipt_link.make(entry.leaf, ok.leaf_index, ok.note, receipt.inclusion) \
        if ok.note == receipt.checkpoint else None
    return ReceiptResult(Outcome.ACCEPTED, h, proof=proof), ok


def load_verifier(log_public: Path | str, log_name: str) -> NoteVerifier:
    """The log's note verifier from its SubjectPublicKeyInfo PEM file and key name."""
    return NoteVerifier(log_name, load_verify_key(Path(log_public)))
