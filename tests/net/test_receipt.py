"""Receipt verification against hand-made trees: good, forged, wrong, foreign, inconsistent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from kiosk.errors import LogIntegrityError, VerificationError
from kiosk.net.outbox import Outbox
from kiosk.net.receipt import Outcome, process_receipt, verify_receipt
from kiosk.protocol.entry import STATUS_REJECTED, Receipt

from .helpers import MiniLog, make_session

KEY = SigningKey.generate()


@pytest.fixture
def ob(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "o.sqlite3")


def _fill(log: MiniLog, n: int) -> None:
    for _ in range(n):
        log.append(os.urandom(40))


def _send(ob: Outbox, log: MiniLog | None = None) -> list[bytes]:
    """Add a session and mark it sent with the outbox's current trusted size as base."""
    hashes = ob.add_session(make_session(KEY))
    base = ob.last_checkpoint().size if ob.last_checkpoint() else 0
    for h in hashes:
        ob.mark_sent(h, base)
    return hashes


def test_good_receipts_advance_trust(ob: Outbox) -> None:
    log = MiniLog()
    _fill(log, 5)
    h1, h2 = _send(ob)
    r1 = log.receipt(ob.get(h1).leaf)
    assert process_receipt(ob, r1.to_cbor(), log.verifier).outcome is Outcome.ACCEPTED
    assert ob.last_checkpoint().size == 6 and ob.depth() == 1
    _fill(log, 3)
    # h2 went out with base 0 before the first receipt: a proof from 0 says nothing about
    # the checkpoint now trusted, so it is rebased on it and sent again
    r2 = log.receipt(ob.get(h2).leaf)
    assert process_receipt(ob, r2.to_cbor(), log.verifier).outcome is Outcome.STALE_BASE
    assert ob.get(h2).base_size == 6 and ob.alarms() == []
    r2 = log.receipt(ob.get(h2).leaf, last_size=6)
    assert process_receipt(ob, r2.to_cbor(), log.verifier).outcome is Outcome.ACCEPTED
    assert ob.last_checkpoint().size == 10 and ob.depth() == 0  # MiniLog dedups the resend
    # next session is sent with base 10 and gets a consistency proof from it
    h3, h4 = _send(ob)
    _fill(log, 17)
    r3 = log.receipt(ob.get(h3).leaf, last_size=10)
    assert process_receipt(ob, r3.to_cbor(), log.verifier).outcome is Outcome.ACCEPTED
    # a second receipt for a completed entry is ignored
    assert process_receipt(ob, r3.to_cbor(), log.verifier).outcome is Outcome.UNKNOWN
    assert ob.receipt(h3) == (27, 28) and ob.alarms() == []


def test_a_receipt_on_an_already_trusted_checkpoint_needs_no_new_proof(ob: Outbox) -> None:
    """A gateway batch answers several records with one checkpoint: once it is trusted, the
    other receipts on it verify by inclusion alone, whatever base their records named."""
    log = MiniLog()
    h1, h2 = _send(ob)
    log.append(ob.get(h1).leaf)
    log.append(ob.get(h2).leaf)
    size = len(log.leaves)
    from kiosk.ledger import merkle
    from kiosk.protocol.entry import STATUS_ACCEPTED, entry_hash
    for i, h in enumerate((h1, h2)):
        r = Receipt(entry_hash(ob.get(h).leaf), STATUS_ACCEPTED, "", i, log.note(size),
                    tuple(merkle.inclusion_proof(i, size, log._read)), ())
        assert process_receipt(ob, r.to_cbor(), log.verifier).outcome is Outcome.ACCEPTED
    assert ob.depth() == 0 and ob.last_checkpoint().size == 2


def test_a_fork_that_agrees_with_an_old_base_is_not_accepted(ob: Outbox) -> None:
    """A record sent long ago (base 2) must not let a fork past the kiosk's newer trust."""
    log = MiniLog()
    _fill(log, 1)
    old, _ = _send(ob)                      # base 0 ...
    r = log.receipt(ob.get(old).leaf)
    assert process_receipt(ob, r.to_cbor(), log.verifier).outcome is Outcome.ACCEPTED
    late, _ = _send(ob)                     # ... this one goes out with base 2
    assert ob.get(late).base_size == 2
    for _ in range(4):                      # the kiosk goes on trusting the real log
        a, b = _send(ob)
        for h in (a, b):
            e = ob.get(h)
            process_receipt(ob, log.receipt(e.leaf, last_size=e.base_size).to_cbor(), log.verifier)
    trusted = ob.last_checkpoint()
    assert trusted.size > 4
    fork = MiniLog(key=log.key)             # keeps leaves 0-1, then something else
    fork.leaves = list(log.leaves[:2])
    _fill(fork, 9)
    bad = fork.receipt(ob.get(late).leaf, last_size=2)
    assert process_receipt(ob, bad.to_cbor(), log.verifier).outcome is Outcome.STALE_BASE
    assert ob.get(late) is not None and ob.last_checkpoint() == trusted
    # resent on the head, the fork cannot prove consistency with it: an alarm
    bad = fork.receipt(ob.get(late).leaf, last_size=trusted.size)
    _refused(ob, late, bad.to_cbor(), log.verifier, Outcome.INCONSISTENT, "log-inconsistent")
    assert ob.last_checkpoint() == trusted


def _accept_one(ob: Outbox, log: MiniLog) -> None:
    _fill(log, 4)
    h, h2 = _send(ob)
    assert process_receipt(ob, log.receipt(ob.get(h).leaf).to_cbor(), log.verifier).outcome \
        is Outcome.ACCEPTED
    assert process_receipt(ob, log.receipt(ob.get(h2).leaf).to_cbor(), log.verifier).outcome \
        is Outcome.STALE_BASE
    base = ob.get(h2).base_size
    assert process_receipt(ob, log.receipt(ob.get(h2).leaf, last_size=base).to_cbor(),
                           log.verifier).outcome is Outcome.ACCEPTED


def _refused(ob: Outbox, h: bytes, data: bytes, verifier, outcome: Outcome, kind: str) -> None:
    before = len(ob.alarms())
    res = process_receipt(ob, data, verifier)
    assert res.outcome is outcome, res
    assert ob.get(h) is not None and not ob.get(h).parked  # entry kept, will be resent
    alarms = ob.alarms()
    assert len(alarms) == before + 1 and alarms[-1].kind == kind
    assert h[:6].hex() in alarms[-1].detail


def test_forged_inclusion_proof_is_refused(ob: Outbox) -> None:
    log = MiniLog()
    _fill(log, 9)
    h, _ = _send(ob)
    good = log.receipt(ob.get(h).leaf)
    forged = Receipt(**{**good.__dict__, "inclusion": (os.urandom(32),) + good.inclusion[1:]})
    _refused(ob, h, forged.to_cbor(), log.verifier, Outcome.REFUSED, "receipt-forged")
    with pytest.raises(VerificationError):
        verify_receipt(ob.get(h).leaf, forged, log.verifier)
    # a wrong leaf index is refused too
    moved = Receipt(**{**good.__dict__, "leaf_index": good.leaf_index - 1})
    _refused(ob, h, moved.to_cbor(), log.verifier, Outcome.REFUSED, "receipt-forged")
    assert ob.last_checkpoint() is None


def test_receipt_for_another_entry_is_refused(ob: Outbox) -> None:
    log = MiniLog()
    h1, h2 = _send(ob)
    other = log.receipt(ob.get(h2).leaf)
    # names h1 but proves h2's leaf
    lying = Receipt(**{**other.__dict__, "entry_hash": h1})
    _refused(ob, h1, lying.to_cbor(), log.verifier, Outcome.REFUSED, "receipt-forged")
    with pytest.raises(VerificationError) as e:
        verify_receipt(ob.get(h1).leaf, other, log.verifier)
    assert e.value.reason == "wrong-entry"


def test_checkpoint_signed_by_another_key_is_refused(ob: Outbox) -> None:
    log = MiniLog()
    _fill(log, 3)
    h, _ = _send(ob)
    leaf = ob.get(h).leaf
    good = log.receipt(leaf)
    impostor = Receipt(**{**good.__dict__, "checkpoint": log.note(key=SigningKey.generate())})
    _refused(ob, h, impostor.to_cbor(), log.verifier, Outcome.REFUSED, "receipt-forged")
    other_origin = Receipt(**{**good.__dict__, "checkpoint": log.note(origin="other.example/log")})
    _refused(ob, h, other_origin.to_cbor(), log.verifier, Outcome.REFUSED, "receipt-forged")
    garbage = Receipt(**{**good.__dict__, "checkpoint": b"not a note"})
    _refused(ob, h, garbage.to_cbor(), log.verifier, Outcome.REFUSED, "receipt-forged")


def test_forked_log_is_detected(ob: Outbox) -> None:
    log = MiniLog()
    _accept_one(ob, log)
    trusted = ob.last_checkpoint()
    # the gateway rewrites history: same key, same first leaves but one, then grows
    fork = MiniLog(key=log.key)
    fork.leaves = list(log.leaves)
    fork.leaves[2] = os.urandom(40)
    _fill(fork, 5)
    h, _ = _send(ob)
    assert ob.get(h).base_size == trusted.size
    bad = fork.receipt(ob.get(h).leaf, last_size=trusted.size)
    _refused(ob, h, bad.to_cbor(), log.verifier, Outcome.INCONSISTENT, "log-inconsistent")
    with pytest.raises(LogIntegrityError):
        verify_receipt(ob.get(h).leaf, bad, log.verifier, base_size=trusted.size,
                       trusted=(trusted.size, trusted.root_hash), root_at=ob.checkpoint_root)
    assert ob.last_checkpoint() == trusted  # trust did not move


def test_same_size_other_root_and_shrinking_log_are_detected(ob: Outbox) -> None:
    log = MiniLog()
    _accept_one(ob, log)
    trusted = ob.last_checkpoint()
    # a fork of exactly the trusted size that holds our new leaf
    fork = MiniLog(key=log.key)
    fork.leaves = log.leaves[: trusted.size - 1]
    h, _ = _send(ob)
    bad = fork.receipt(ob.get(h).leaf)
    assert bad.leaf_index == trusted.size - 1
    _refused(ob, h, bad.to_cbor(), log.verifier, Outcome.INCONSISTENT, "log-inconsistent")
    # a log that shrank below the record's base
    small = MiniLog(key=log.key)
    shrunk = small.receipt(ob.get(h).leaf)
    _refused(ob, h, shrunk.to_cbor(), log.verifier, Outcome.INCONSISTENT, "log-inconsistent")


def test_rejected_receipt_parks_the_entry(ob: Outbox) -> None:
    h, _ = _send(ob)
    rej = Receipt(h, STATUS_REJECTED, "unknown-kiosk")
    res = process_receipt(ob, rej.to_cbor(), MiniLog().verifier)
    assert res.outcome is Outcome.PARKED
    assert ob.parked()[0].reason == "unknown-kiosk" and ob.depth() == 1


def test_malformed_receipt_raises_an_alarm(ob: Outbox) -> None:
    _send(ob)
    assert process_receipt(ob, b"\xff\x00junk", MiniLog().verifier).outcome is Outcome.MALFORMED
    assert ob.alarms()[-1].kind == "receipt-malformed" and ob.depth() == 2


def test_unknown_base_is_rebased_without_alarm(ob: Outbox) -> None:
    log = MiniLog()
    _accept_one(ob, log)
    h, _ = _send(ob)
    ob.rebase(h, 99)  # a base the history does not hold
    r = log.receipt(ob.get(h).leaf, last_size=ob.last_checkpoint().size)
    assert process_receipt(ob, r.to_cbor(), log.verifier).outcome is Outcome.STALE_BASE
    assert ob.get(h).base_size == ob.last_checkpoint().size and ob.alarms() == []
    assert process_receipt(ob, r.to_cbor(), log.verifier).outcome is Outcome.ACCEPTED


def test_a_passing_rejection_is_retried_not_parked(ob: Outbox) -> None:
    """A consent whose check-in another gateway has not appended yet must not be stranded."""
    h, _ = _send(ob)
    for reason in ("wrong-entry", "revocation-list-stale"):
        res = process_receipt(ob, Receipt(h, STATUS_REJECTED, reason).to_cbor(), MiniLog().verifier)
        assert res.outcome is Outcome.RETRY
        assert not ob.get(h).parked and ob.depth() == 2 and ob.parked() == []


def test_a_parked_record_completes_when_a_valid_receipt_comes_and_can_be_requeued(ob: Outbox) -> None:
    log = MiniLog()
    h, h2 = _send(ob)
    process_receipt(ob, Receipt(h, STATUS_REJECTED, "unknown-kiosk").to_cbor(), log.verifier)
    process_receipt(ob, Receipt(h2, STATUS_REJECTED, "unknown-kiosk").to_cbor(), log.verifier)
    assert len(ob.parked()) == 2 and ob.depth() == 0
    # the kiosk was registered and another gateway's answer arrives after all
    assert process_receipt(ob, log.receipt(ob.get(h).leaf).to_cbor(), log.verifier).outcome is Outcome.ACCEPTED
    assert ob.get(h) is None and len(ob.parked()) == 1
    # IT requeues what is left
    assert ob.unpark() == 1 and ob.depth() == 1 and ob.parked() == []
