"""Receipt verification: the kiosk as a witness of the log (DESIGN §3 "Receipt", §7).

A receipt is accepted only if all of it holds:
  1. the checkpoint is a C2SP signed note by the log's key, for the expected origin;
  2. the receipt names this record's leaf (entry_hash = SHA-256(leaf));
  3. the inclusion proof puts RFC 9162 leaf_hash(leaf) at leaf_index in that checkpoint's tree;
  4. the consistency proof runs from the checkpoint the record named (its `last_size`, an
     earlier checkpoint this kiosk accepted and whose root it kept) to the new checkpoint,
     and no accepted checkpoint of the same size has a different root.

Failures of 1-3 are a forged or wrong receipt (VerificationError): the record stays in the
outbox and an alarm is raised. A failure of 4 means the log was rewritten or forked
(LogIntegrityError): an alarm as well. A receipt with status "rejected" parks the record with
the gateway's reason.

Why the base is the record's `last_size` and not the newest accepted size: records go out
pipelined, so by the time a receipt arrives the kiosk has often accepted newer checkpoints
than the one the record named. The outbox therefore keeps the roots of accepted checkpoints,
and a record names the same base on every resend (fixed at its first send).
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
from kiosk.protocol.entry import Receipt, decode_receipt, entry_hash
from kiosk.protocol.keys import load_verify_key

log = logging.getLogger(__name__)

ALARM_FORGED = "receipt-forged"
ALARM_INCONSISTENT = "log-inconsistent"
ALARM_MALFORMED = "receipt-malformed"


class StaleBaseError(VerificationError):
    """The record's base checkpoint is no longer in the kiosk's history: resend, no alarm."""


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
                   origin: str | None = None, base_size: int = 0,
                   trusted: tuple[int, bytes] | None = None,
                   root_at: Callable[[int], bytes | None] = lambda size: None) -> AcceptedReceipt:
    """Verify an accepted/duplicate receipt for `leaf`; return what it proves.

    The kiosk's accepted checkpoints form one chain, each proven consistent with the one
    before it; `trusted` is its head (size, root) and `root_at(size)` the root of any link.
    A receipt is accepted when its checkpoint is already a link of the chain, or extends the
    head with a consistency proof from the head itself. `base_size` is the `last_size` the
    record carried: a proof from an older base says nothing about the head (a fork could
    agree with the base and not with the head), so such a receipt is StaleBaseError — the
    record is rebased on the head and sent again, and the gateway answers with a proof from
    there. Raises VerificationError for a forged or wrong receipt and LogIntegrityError for a
    checkpoint that contradicts the chain.
    """
    if not receipt.accepted or receipt.leaf_index is None or receipt.checkpoint is None:
        raise VerificationError("receipt: not an accepted receipt", reason=Reason.MALFORMED.value)
    want = entry_hash(leaf)
    if receipt.entry_hash != want:
        raise VerificationError("receipt: names another entry", reason=Reason.WRONG_ENTRY.value)
    try:
        cp = open_checkpoint(receipt.checkpoint, verifier, origin if origin is not None
                             else verifier.name)
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

    # From here on the checkpoint is the log's own signed statement: a contradiction with the
    # chain is evidence of a rewritten or forked log, not a transport accident.
    known = root_at(cp.size)
    if known is not None:
        if known != cp.root_hash:
            raise LogIntegrityError(f"log: two signed checkpoints of size {cp.size} differ",
                                    reason=Reason.INCONSISTENT.value)
        return accepted  # a link of the chain already: the inclusion proof is all it needs
    head_size, head_root = trusted if trusted is not None else (0, b"")
    if base_size != head_size:
        raise StaleBaseError(f"receipt: proves consistency from size {base_size}, the kiosk "
                             f"trusts size {head_size}", reason=Reason.STALE.value)
    if cp.size < head_size:
        raise LogIntegrityError(f"log: checkpoint {cp.size} is smaller than accepted "
                                f"checkpoint {head_size}", reason=Reason.INCONSISTENT.value)
    if head_size > 0:
        try:  # RFC 9162 §2.1.4.2
            merkle.verify_consistency(head_size, cp.size, head_root, cp.root_hash,
                                      receipt.consistency)
        except VerificationError as e:
            raise LogIntegrityError(f"log: checkpoint {cp.size} not consistent with accepted "
                                    f"checkpoint {head_size} ({e.message})",
                                    reason=Reason.INCONSISTENT.value) from None
    return accepted


# Rejections that say something about the gateway's state at that moment, not about the
# record: a consent whose check-in another gateway has not appended yet, a gateway that has
# no revocation list yet. Parking those would strand valid records (DESIGN §5).
TRANSIENT_REASONS = frozenset({Reason.WRONG_ENTRY.value, Reason.REVOCATION_LIST_STALE.value})


class Outcome(str, enum.Enum):
    """What `process_receipt` did with a receipt message."""

    ACCEPTED = "accepted"          # verified; record deleted, receipt line kept
    PARKED = "parked"              # the gateway rejected the record; kept for staff
    UNKNOWN = "unknown"            # no such record waiting (a second receipt): ignored
    REFUSED = "refused"            # forged or wrong receipt: record kept, alarm raised
    INCONSISTENT = "inconsistent"  # the log contradicts an accepted checkpoint: alarm
    STALE_BASE = "stale-base"      # record rebased; send it again
    RETRY = "retry"                # rejected for a passing reason; send it again later
    MALFORMED = "malformed"        # not a receipt at all: alarm


@dataclass(frozen=True)
class ReceiptResult:
    """The outcome of one receipt message, with the entry it named (if any)."""

    outcome: Outcome
    entry_hash: bytes | None = None
    detail: str = ""


def process_receipt(outbox: Outbox, data: bytes, verifier: NoteVerifier,
                    origin: str | None = None) -> ReceiptResult:
    """Handle one receipt message end to end against the outbox (see process_receipts)."""
    return process_receipts(outbox, [data], verifier, origin)[0]


def process_receipts(outbox: Outbox, messages: Sequence[bytes], verifier: NoteVerifier,
                     origin: str | None = None) -> list[ReceiptResult]:
    """Handle receipt messages end to end against the outbox; one result per message.

    Verified receipts are completed together in one outbox transaction (one fsync for a
    burst of receipts, not one each). Never raises for bad input: every failure is an
    outcome, and the alarming ones are recorded with `outbox.raise_alarm` (details name
    hash prefixes and sizes, no PHI). StoreError from the outbox itself propagates.
    """
    results: list[ReceiptResult] = []
    done: list[tuple[bytes, ReceiptSummary, TrustedCheckpoint]] = []
    batch_roots: dict[int, bytes] = {}  # checkpoints accepted in this batch, not yet stored
    head = outbox.last_checkpoint()
    trusted = [(head.size, head.root_hash) if head else None]  # the chain's head, as it moves

    def root_at(size: int) -> bytes | None:
        return batch_roots.get(size) or outbox.checkpoint_root(size)

    for data in messages:
        res, ok = _judge(outbox, data, verifier, origin, root_at, trusted[0], {h for h, _, _ in done})
        if ok is not None:
            batch_roots.setdefault(ok.checkpoint.size, ok.checkpoint.root_hash)
            if trusted[0] is None or ok.checkpoint.size > trusted[0][0]:
                trusted[0] = (ok.checkpoint.size, ok.checkpoint.root_hash)
            done.append((ok.entry_hash, ReceiptSummary(ok.leaf_index, ok.checkpoint.size),
                         ok.trusted))
        results.append(res)
    outbox.complete_many(done)
    return results


def _judge(outbox: Outbox, data: bytes, verifier: NoteVerifier, origin: str | None,
           root_at: Callable[[int], bytes | None], trusted: tuple[int, bytes] | None,
           completed: set[bytes]) -> tuple[ReceiptResult, AcceptedReceipt | None]:
    try:
        receipt = decode_receipt(data)
    except FormatError as e:
        outbox.raise_alarm(ALARM_MALFORMED, e.message)
        log.warning("receipt malformed: %s", e.message)
        return ReceiptResult(Outcome.MALFORMED, None, e.message), None
    h = receipt.entry_hash
    tag = h[:6].hex()
    entry = None if h in completed else outbox.get(h)
    if entry is None or (entry.parked and receipt.status == "rejected"):
        log.debug("receipt for %s: no record waiting", tag)
        return ReceiptResult(Outcome.UNKNOWN, h), None
    # (an accepted receipt for a parked record is verified and completes it like any other)
    if receipt.status == "rejected":
        reason = receipt.reason or Reason.REJECTED.value
        if reason in TRANSIENT_REASONS:
            # the gateway's state, not the record, is at fault: send it again later
            log.info("record %s: gateway says %s; will send again", tag, reason[:80])
            return ReceiptResult(Outcome.RETRY, h, reason), None
        outbox.park(h, reason)
        log.warning("record %s rejected by the gateway: %s", tag, reason[:80])
        return ReceiptResult(Outcome.PARKED, h, reason), None
    try:
        ok = verify_receipt(entry.leaf, receipt, verifier, origin=origin,
                            base_size=entry.base_size or 0, trusted=trusted, root_at=root_at)
    except StaleBaseError as e:
        outbox.rebase(h, trusted[0] if trusted else 0)
        log.info("record %s: %s; rebased", tag, e.message)
        return ReceiptResult(Outcome.STALE_BASE, h, e.message), None
    except LogIntegrityError as e:
        outbox.raise_alarm(ALARM_INCONSISTENT, f"entry {tag}: {e.message}")
        log.error("LOG INTEGRITY ALARM for entry %s: %s", tag, e.message)
        return ReceiptResult(Outcome.INCONSISTENT, h, e.message), None
    except VerificationError as e:
        outbox.raise_alarm(ALARM_FORGED, f"entry {tag}: {e.message}")
        log.error("receipt for %s refused: %s", tag, e.message)
        return ReceiptResult(Outcome.REFUSED, h, e.message), None
    log.debug("record %s in the log at %d (size %d)", tag, ok.leaf_index, ok.checkpoint.size)
    return ReceiptResult(Outcome.ACCEPTED, h), ok


def load_verifier(log_public: Path | str, log_name: str) -> NoteVerifier:
    """The log's note verifier from its SubjectPublicKeyInfo PEM file and key name."""
    return NoteVerifier(log_name, load_verify_key(Path(log_public)))
