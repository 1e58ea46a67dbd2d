"""Receipt verification against hand-made trees: good, forged, wrong, foreign, inconsistent —
each as an attacker on the receipts topic or a forked log would act."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from kiosk.errors import VerificationError
from kiosk.net.outbox import Outbox
from kiosk.net.receipt import Outcome, ProvenInconsistency, process_receipt, verify_receipt
from kiosk.protocol.entry import STATUS_REJECTED, Receipt

from .helpers import MiniLog, make_session

KEY = SigningKey.generate()


@pytest.fixture
def ob(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "o.sqlite3")


def _fill(log: MiniLog, n: int) -> None:
    for _ in range(n):
        log.append(os.urandom(40))


def _head(ob: Outbox) -> int:
    cp = ob.last_checkpoint()
    return cp.size if cp else 0


def _send(ob: Outbox) -> list[bytes]:
    """Add a session and mark it sent with the outbox's current head as base."""
    hashes = ob.add_session(make_session(KEY))
    ob.mark_sent_many(hashes, _head(ob))
    return hashes


def _process(ob: Outbox, r: Receipt, log: MiniLog) -> Outcome:
    return process_receipt(ob, r.to_cbor(), log.verifier).outcome


def test_good_receipts_advance_trust(ob: Outbox) -> None:
    log = MiniLog()
    _fill(log, 5)
    h1, h2 = _send(ob)
    assert _process(ob, log.receipt(ob.get(h1).leaf), log) is Outcome.ACCEPTED
    assert ob.last_checkpoint().size == 6 and ob.depth() == 1
    _fill(log, 3)
    # h2's proof names size 0, the kiosk's head is 6: it proves nothing about the head, so
    # the record is simply sent again (no alarm) and the resend is proven from the head
    assert _process(ob, log.receipt(ob.get(h2).leaf), log) is Outcome.STALE_BASE
    assert ob.alarms() == [] and ob.refusals() == []
    assert _process(ob, log.receipt(ob.get(h2).leaf, last_size=6), log) is Outcome.ACCEPTED
    assert ob.last_checkpoint().size == 10 and ob.depth() == 0
    h3, _ = _send(ob)
    _fill(log, 17)
    r3 = log.receipt(ob.get(h3).leaf, last_size=10)
    assert _process(ob, r3, log) is Outcome.ACCEPTED
    assert _process(ob, r3, log) is Outcome.UNKNOWN  # a second receipt is ignored
    assert ob.receipt(h3) == (27, 28) and ob.alarms() == []


def test_a_receipt_on_an_already_trusted_checkpoint_needs_no_new_proof(ob: Outbox) -> None:
    """A gateway batch answers several records with one checkpoint: once it is trusted, the
    other receipts on it verify by inclusion alone, whatever base they name."""
    log = MiniLog()
    h1, h2 = _send(ob)
    log.append(ob.get(h1).leaf)
    r2 = log.receipt(ob.get(h2).leaf)
    r1 = log.receipt(ob.get(h1).leaf)
    assert _process(ob, r1, log) is Outcome.ACCEPTED
    assert _process(ob, Receipt(**{**r2.__dict__, "from_size": 99}).signed(log.key), log) \
        is Outcome.ACCEPTED
    assert ob.depth() == 0 and ob.last_checkpoint().size == 2


def test_false_alarm_interleaving_resend_then_late_answer_to_the_old_copy(ob: Outbox) -> None:
    """The review's finding 4, step by step: a record goes out with base 0; the kiosk's head
    moves on; the record times out and goes out again with the new base; then the answers
    to both copies arrive, in either order. Each names its own base: no alarm, one record."""
    log = MiniLog()
    r, other = _send(ob)                           # copy 1 of r: base 0
    assert _process(ob, log.receipt(ob.get(other).leaf), log) is Outcome.ACCEPTED
    head = _head(ob)
    assert head == 1
    ob.mark_sent(r, head)                          # copy 2 of r: base 1 (timeout resend)
    answer_to_copy1 = log.receipt(ob.get(r).leaf, last_size=0)
    answer_to_copy2 = log.receipt(ob.get(r).leaf, last_size=head)
    assert _process(ob, answer_to_copy1, log) is Outcome.STALE_BASE
    assert _process(ob, answer_to_copy2, log) is Outcome.ACCEPTED
    assert ob.alarms() == [] and ob.refusals() == [] and ob.depth() == 0
    # the other order: the answer to the new copy first, the old one late
    s, s2 = _send(ob)
    ob.mark_sent(s, _head(ob))
    late = log.receipt(ob.get(s).leaf, last_size=0)
    assert _process(ob, log.receipt(ob.get(s).leaf, last_size=_head(ob)), log) is Outcome.ACCEPTED
    assert _process(ob, late, log) is Outcome.UNKNOWN
    assert _process(ob, log.receipt(ob.get(s2).leaf, last_size=_head(ob)), log) is Outcome.ACCEPTED
    assert ob.alarms() == [] and ob.depth() == 0


def test_a_fork_that_agrees_with_an_old_base_is_not_accepted(ob: Outbox) -> None:
    """A record sent long ago (base 2) must not let a fork past the kiosk's newer trust."""
    log = MiniLog()
    _fill(log, 1)
    old, _ = _send(ob)
    assert _process(ob, log.receipt(ob.get(old).leaf), log) is Outcome.ACCEPTED
    late, _ = _send(ob)                     # goes out with base 2
    assert ob.get(late).base_size == 2
    for _ in range(4):                      # the kiosk goes on trusting the real log
        for h in _send(ob):
            _process(ob, log.receipt(ob.get(h).leaf, last_size=_head(ob)), log)
    trusted = ob.last_checkpoint()
    assert trusted.size > 4
    fork = MiniLog(key=log.key)             # keeps leaves 0-1, then something else
    fork.leaves = list(log.leaves[:2])
    _fill(fork, 9)
    bad = fork.receipt(ob.get(late).leaf, last_size=2)
    assert _process(ob, bad, log) is Outcome.STALE_BASE
    assert ob.get(late) is not None and ob.last_checkpoint() == trusted
    # proven from the head, the fork's signed proof fails: an alarm, both notes kept
    bad = fork.receipt(ob.get(late).leaf, last_size=trusted.size)
    assert _process(ob, bad, log) is Outcome.INCONSISTENT
    (alarm,) = ob.alarms()
    assert alarm.kind == "log-inconsistent" and alarm.evidence == (trusted.note, bad.checkpoint)
    assert ob.last_checkpoint() == trusted and ob.get(late) is not None


def test_same_size_other_root_is_one_alarm_with_both_checkpoints(ob: Outbox) -> None:
    log = MiniLog()
    h1, _ = _send(ob)
    _fill(log, 3)
    assert _process(ob, log.receipt(ob.get(h1).leaf), log) is Outcome.ACCEPTED
    trusted = ob.last_checkpoint()
    fork = MiniLog(key=log.key)             # the same size, other leaves
    _fill(fork, trusted.size - 1)
    h, _ = _send(ob)
    bad = fork.receipt(ob.get(h).leaf)
    assert _process(ob, bad, log) is Outcome.INCONSISTENT
    with pytest.raises(ProvenInconsistency):
        verify_receipt(ob.get(h).leaf, bad, log.verifier, head=trusted, link=ob.checkpoint_link)
    assert _process(ob, bad, log) is Outcome.INCONSISTENT  # seen again: the same alarm
    (alarm,) = ob.alarms()
    assert alarm.repeats == 1 and set(alarm.evidence) == {trusted.note, bad.checkpoint}


def _refused(ob: Outbox, h: bytes, r: Receipt, log: MiniLog, outcome: Outcome) -> None:
    before = len(ob.refusals())
    assert _process(ob, r, log) is outcome
    assert ob.get(h) is not None and not ob.get(h).parked  # record kept, will be resent
    assert ob.alarms() == []  # refused, counted, not an alarm: nothing proven against the log
    assert len(ob.refusals()) == before + 1


def test_forged_inclusion_proof_and_wrong_index_are_refused(ob: Outbox) -> None:
    log = MiniLog()
    _fill(log, 9)
    h, _ = _send(ob)
    good = log.receipt(ob.get(h).leaf)
    forged = Receipt(**{**good.__dict__, "inclusion": (os.urandom(32),) + good.inclusion[1:]})
    _refused(ob, h, forged, log, Outcome.REFUSED)  # unsigned after the change
    _refused(ob, h, forged.signed(log.key), log, Outcome.REFUSED)  # signed, still wrong
    with pytest.raises(VerificationError):
        verify_receipt(ob.get(h).leaf, forged, log.verifier)
    moved = Receipt(**{**good.__dict__, "leaf_index": good.leaf_index - 1}).signed(log.key)
    _refused(ob, h, moved, log, Outcome.REFUSED)
    assert ob.last_checkpoint() is None


def test_receipt_for_another_entry_is_refused(ob: Outbox) -> None:
    log = MiniLog()
    h1, h2 = _send(ob)
    other = log.receipt(ob.get(h2).leaf)
    lying = Receipt(**{**other.__dict__, "entry_hash": h1}).signed(log.key)
    _refused(ob, h1, lying, log, Outcome.REFUSED)
    with pytest.raises(VerificationError) as e:
        verify_receipt(ob.get(h1).leaf, other, log.verifier)
    assert e.value.reason == "wrong-entry"


def test_checkpoint_or_receipt_by_another_key_is_refused(ob: Outbox) -> None:
    log = MiniLog()
    _fill(log, 3)
    h, _ = _send(ob)
    good = log.receipt(ob.get(h).leaf)
    attacker = SigningKey.generate()
    for cp in (log.note(key=attacker), log.note(origin="other.example/log"), b"not a note"):
        _refused(ob, h, Receipt(**{**good.__dict__, "checkpoint": cp}).signed(log.key), log,
                 Outcome.REFUSED)
    _refused(ob, h, log.receipt(ob.get(h).leaf, sign_with=attacker), log, Outcome.REFUSED)


def test_signed_rejection_parks_a_forged_one_is_refused(ob: Outbox) -> None:
    log = MiniLog()
    h, h2 = _send(ob)
    # whoever can write the receipts topic tries to park the kiosk's records
    unsigned = Receipt(h, STATUS_REJECTED, "unknown-kiosk")
    assert process_receipt(ob, unsigned.to_cbor(), log.verifier).outcome is Outcome.MALFORMED
    forged = log.reject(h, "unknown-kiosk", sign_with=SigningKey.generate())
    _refused(ob, h, forged, log, Outcome.REFUSED)
    assert ob.parked() == []
    assert _process(ob, log.reject(h, "unknown-kiosk"), log) is Outcome.PARKED
    assert ob.parked()[0].reason == "unknown-kiosk" and ob.depth() == 1


def test_rejection_reasons_are_enumerated(ob: Outbox) -> None:
    log = MiniLog()
    h, _ = _send(ob)
    crafted = Receipt(h, STATUS_REJECTED, "ok\n2026-01-01 INFO all records verified").signed(log.key)
    assert process_receipt(ob, crafted.to_cbor(), log.verifier).outcome is Outcome.MALFORMED
    assert ob.parked() == [] and ob.alarms() == []
    assert "\n" not in ob.refusals()[-1].detail


def test_malformed_receipt_is_counted_not_an_alarm(ob: Outbox) -> None:
    _send(ob)
    assert process_receipt(ob, b"\xff\x00junk", MiniLog().verifier).outcome is Outcome.MALFORMED
    assert ob.alarms() == [] and ob.refusals()[-1].kind == "receipt-malformed"
    assert ob.depth() == 2


def test_a_passing_rejection_is_retried_not_parked(ob: Outbox) -> None:
    """A consent whose check-in another gateway has not appended yet must not be stranded."""
    log = MiniLog()
    h, _ = _send(ob)
    for reason in ("wrong-entry", "revocation-list-stale"):
        assert _process(ob, log.reject(h, reason), log) is Outcome.RETRY
        assert not ob.get(h).parked and ob.depth() == 2 and ob.parked() == []


def test_a_parked_record_completes_when_a_valid_receipt_comes_and_can_be_requeued(ob: Outbox) -> None:
    log = MiniLog()
    h, h2 = _send(ob)
    _process(ob, log.reject(h, "unknown-kiosk"), log)
    _process(ob, log.reject(h2, "unknown-kiosk"), log)
    assert len(ob.parked()) == 2 and ob.depth() == 0
    assert _process(ob, log.receipt(ob.get(h).leaf), log) is Outcome.ACCEPTED
    assert ob.get(h) is None and len(ob.parked()) == 1
    assert ob.unpark() == 1 and ob.depth() == 1 and ob.parked() == []


def test_an_accepted_receipt_gives_the_patient_a_proof_they_can_check(ob: Outbox) -> None:
    """The consent receipt the kiosk hands to the web wallet (kiosk.protocol.receipt_link)
    is the leaf, its index, the signed checkpoint and the inclusion proof: it verifies with
    the log key alone, and says nothing more than the leaf."""
    import base64

    from kiosk.ledger import merkle
    from kiosk.ledger.checkpoint import open_checkpoint as open_cp
    from kiosk.protocol import receipt_link

    log = MiniLog()
    _fill(log, 4)
    h1, _ = _send(ob)
    leaf = ob.get(h1).leaf
    res = process_receipt(ob, log.receipt(leaf).to_cbor(), log.verifier)
    assert res.outcome is Outcome.ACCEPTED and res.proof is not None
    link = res.proof.link("https://issuer.clinic:8443/")
    data = base64.urlsafe_b64decode(link.split("#r=", 1)[1] + "==")
    got = receipt_link.decode(data)
    assert got.leaf == leaf
    cp = open_cp(got.checkpoint, log.verifier)
    merkle.verify_inclusion(merkle.leaf_hash(got.leaf), got.leaf_index, cp.size, list(got.inclusion),
                            cp.root_hash)  # raises if it does not verify
    # a rejected or refused receipt carries no proof
    assert process_receipt(ob, log.receipt(leaf).to_cbor(), log.verifier).proof is None
