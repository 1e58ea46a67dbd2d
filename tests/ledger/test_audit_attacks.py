"""`ledger verify` against an insider with database access: each attack of the review, as
such an attacker would do it, is caught and named (or, without witnesses, reported as
uncovered)."""
from __future__ import annotations

import json
import time

import nacl.signing
import pytest

from kiosk.cli import main
from kiosk.ledger import audit
from kiosk.ledger.checkpoint import NoteVerifier, verifier_key_text
from kiosk.ledger.witness import Cosigner, cosign, open_witnessed, witness_name
from kiosk.protocol import entry, keys

LOG = "clinic.example/log"
LOG_KEY = nacl.signing.SigningKey(bytes([5]) * 32)
VERIFIER = NoteVerifier(LOG, LOG_KEY.verify_key)
KIOSK_KEY = nacl.signing.SigningKey(bytes([7]) * 32)
OLD_KIOSK_KEY = nacl.signing.SigningKey(bytes([8]) * 32)   # retired by a re-key
ATTACKER = nacl.signing.SigningKey(bytes([66]) * 32)
WITNESS = Cosigner(witness_name(LOG, "kiosk-1"), KIOSK_KEY.verify_key)


def registry(kiosk: str):
    if kiosk != "kiosk-1":
        return None
    return {keys.kid(k.verify_key): k.verify_key for k in (KIOSK_KEY, OLD_KIOSK_KEY)}


def make_entry(decision: str = "permit", key=KIOSK_KEY, kiosk: str = "kiosk-1"):
    body, bh = entry.make_body({"decision": decision})
    env = entry.new_envelope("consent", site="clinic", kiosk=kiosk, body_hash=bh,
                             created_ms=int(time.time() * 1000), patient="p-0001")
    return entry.sign_leaf(env, key), body


def append(store, items) -> None:
    for leaf, body in items:
        store.put_body(entry.decode_leaf(leaf)[0].body_hash, body)
    store.append([leaf for leaf, _ in items])


def checkpoint(store) -> bytes:
    return audit.make_checkpoint(store, LOG, LOG, LOG_KEY)[1]


def run(store, **kw):
    return audit.verify_log(store, VERIFIER, LOG, check_leaves=True, kiosk_keys=registry, **kw)


def kinds(report) -> set[str]:
    return {f.kind for f in report.findings}


def _sql(store, sql: str, params=()):
    return store._conn.execute(store._q(sql), params)


@pytest.fixture
def log(store):
    append(store, [make_entry(key=OLD_KIOSK_KEY)] + [make_entry() for _ in range(5)])
    checkpoint(store)
    append(store, [make_entry() for _ in range(4)])
    checkpoint(store)
    return store


def test_intact_log_with_a_retired_key_verifies(log):
    r = run(log)
    assert r.ok, r.findings
    assert r.signatures_checked and r.bodies_ok == 10 and r.checkpoints_checked == 2
    assert r.uncovered is None and r.checkpoint_verified


def test_body_swap_is_named(log):
    # the attacker replaces a deny with a permit body under the same body_hash
    bh = entry.decode_leaf(log.get_leaf(3))[0].body_hash
    other, _ = entry.make_body({"decision": "deny"})
    _sql(log, "UPDATE bodies SET body = ? WHERE body_hash = ?", (other, bh))
    r = run(log)
    assert kinds(r) == {"body-mismatch"} and r.findings[0].index == 3


def test_erased_body_is_reported_as_erased_not_ok(log):
    log.delete_body(entry.decode_leaf(log.get_leaf(2))[0].body_hash)
    r = run(log)
    assert r.ok and r.erased_count == 1 and r.bodies_erased == [2] and r.bodies_ok == 9


def test_junk_and_attacker_signed_leaves_after_the_checkpoint_are_named(log):
    append(log, [make_entry(key=ATTACKER)])  # claims to be kiosk-1
    log.append([b"junk that is no ledger entry"])
    append(log, [make_entry(key=ATTACKER, kiosk="kiosk-9")])
    r = run(log)
    got = {(f.kind, f.index) for f in r.findings}
    assert got == {("leaf-signature", 10), ("leaf-malformed", 11), ("leaf-unknown-kiosk", 12)}
    assert r.uncovered == (10, 12)


def test_every_stored_checkpoint_is_checked_not_only_the_newest(log):
    # rewrite the first checkpoint row with a valid signature over another root: only a
    # check of every stored checkpoint sees that the log once signed a different tree
    from kiosk.ledger.checkpoint import Checkpoint, sign_checkpoint

    forged = sign_checkpoint(Checkpoint(LOG, 6, bytes(32)), LOG, LOG_KEY)
    _sql(log, "UPDATE checkpoints SET note = ? WHERE size = 6", (forged,))
    r = run(log)
    assert {(f.kind, f.index) for f in r.findings} == {("checkpoint-root", 6)}


def _rolled_back(tmp_path, source, keep: int, tail: list, name: str = "rolled-back") -> object:
    """What an insider leaves behind: the newest checkpoint rows deleted, the leaves the
    remaining checkpoint does not cover rewritten, the tree state rebuilt to match."""
    from kiosk.ledger.sqlite_store import SqliteLogStore

    fake = SqliteLogStore(tmp_path / f"{name}.sqlite3")
    items = []
    for i, leaf in source.iter_leaves():
        if i < keep:
            items.append((leaf, source.get_body(entry.decode_leaf(leaf)[0].body_hash)))
    append(fake, items + tail)
    for size, note in source.iter_checkpoints():
        if size <= keep:
            fake.save_checkpoint(size, note)
    return fake


def test_rollback_with_tail_rewrite_uncovered_without_witnesses_caught_with(log, tmp_path):
    witnessed_note = cosign(log.latest_checkpoint()[1], WITNESS.name, KIOSK_KEY, 1_700_000_000)
    w = open_witnessed(witnessed_note, VERIFIER, [WITNESS], LOG)
    # the patient's consent turns from deny to permit: leaves 6..9 rewritten
    fake = _rolled_back(tmp_path, log, 6, [make_entry("permit") for _ in range(4)])
    try:
        r = run(fake)
        assert r.ok and r.uncovered == (6, 9)  # nothing stored can tell
        r = run(fake, witnessed=w)
        assert kinds(r) == {"witness-inconsistent"} and r.witnesses[0]["state"] == "inconsistent"
    finally:
        fake.close()
    truncated = _rolled_back(tmp_path, log, 6, [], name="truncated")
    try:
        r = run(truncated, witnessed=w)
        assert kinds(r) == {"witness-ahead"}
    finally:
        truncated.close()


def test_honest_store_agrees_with_its_witnesses(log):
    note = cosign(log.latest_checkpoint()[1], WITNESS.name, KIOSK_KEY, 1_700_000_000)
    r = run(log, witnessed=open_witnessed(note, VERIFIER, [WITNESS], LOG))
    assert r.ok and r.witnesses == [{"witness": WITNESS.name, "size": 10,
                                     "timestamp": 1_700_000_000, "state": "ok"}]


# ------------------------------------------------------------------ the command line

def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_rollback_caught_from_witness_files(tmp_path, capsys):
    from kiosk.ledger.sqlite_store import SqliteLogStore

    honest = SqliteLogStore(tmp_path / "honest.sqlite3")
    append(honest, [make_entry("deny") for _ in range(6)])
    checkpoint(honest)
    append(honest, [make_entry("deny") for _ in range(2)])
    note = checkpoint(honest)
    wdir = tmp_path / "witnesses"
    wdir.mkdir()
    (wdir / "kiosk-1.note").write_bytes(cosign(note, WITNESS.name, KIOSK_KEY, 1_700_000_000))
    fake = _rolled_back(tmp_path, honest, 6, [make_entry("permit"), make_entry("permit")])
    fake.close()
    honest.close()
    db = str(tmp_path / "rolled-back.sqlite3")
    vkey = verifier_key_text(LOG, LOG_KEY.verify_key)
    code, out, err = _run(capsys, "ledger", "verify", "--db", db, "--vkey", vkey)
    assert code == 0 and "WARN uncovered: leaves 6..7" in out
    code, out, err = _run(capsys, "ledger", "verify", "--db", db, "--vkey", vkey,
                          "--witnesses", str(wdir), "--cosigner", WITNESS.text())
    assert code == 1 and "FAIL witness-inconsistent" in out, out + err
    code, out, err = _run(capsys, "ledger", "verify", "--db", db, "--vkey", vkey, "--json",
                          "--witnesses", str(wdir), "--cosigner", WITNESS.text())
    rep = json.loads(out)
    assert code == 1 and not rep["ok"] and rep["witnesses"][0]["state"] == "inconsistent"
    # --json is JSON even for a user's mistake
    code, out, err = _run(capsys, "ledger", "verify", "--db", str(tmp_path / "nope"), "--json")
    assert code == 66 and json.loads(out)["ok"] is False


def test_cli_forged_cosignature_is_refused(tmp_path, capsys):
    from kiosk.ledger.sqlite_store import SqliteLogStore

    s = SqliteLogStore(tmp_path / "log.sqlite3")
    append(s, [make_entry()])
    note = checkpoint(s)
    s.close()
    forged = cosign(note, WITNESS.name, ATTACKER, 1_700_000_000)  # the witness's name, not its key
    # the key id differs, so the line is not the witness's at all: no witnessed checkpoint
    (tmp_path / "w.note").write_bytes(forged)
    code, out, err = _run(capsys, "ledger", "verify", "--db", str(tmp_path / "log.sqlite3"),
                          "--witnesses", str(tmp_path / "w.note"), "--cosigner", WITNESS.text())
    assert code == 1 and "no witnessed checkpoint found" in err
