"""`ledger verify` and friends: every kind of tampering is detected and named."""
from __future__ import annotations

import hashlib
import json

import nacl.signing
import pytest

from kiosk.cli import main
from kiosk.errors import VerificationError
from kiosk.ledger import audit, merkle
from kiosk.ledger.checkpoint import Checkpoint, NoteVerifier, sign_checkpoint, verifier_key_text

LOG = "clinic.example/log"
KEY = nacl.signing.SigningKey(bytes([5]) * 32)
VERIFIER = NoteVerifier(LOG, KEY.verify_key)
N = 40


def _sql(store, sql: str, params=()):
    """Tamper behind the store's back, as someone with database access could."""
    return store._conn.execute(store._q(sql), params)


@pytest.fixture
def filled(store):
    store.append([b"entry-%d" % i for i in range(N)])
    audit.make_checkpoint(store, LOG, LOG, KEY)
    return store


def kinds(report) -> set[str]:
    return {f.kind for f in report.findings}


def test_intact_log_verifies(filled):
    report = audit.verify_log(filled, VERIFIER, LOG)
    assert report.ok, report.findings
    assert report.entries == N and report.checkpoint_verified
    assert report.root == filled.root_hash()


def test_flipped_byte_is_named(filled):
    leaf = bytearray(filled.get_leaf(17))
    leaf[3] ^= 0x01
    _sql(filled, "UPDATE leaves SET leaf = ? WHERE idx = ?", (bytes(leaf), 17))
    report = audit.verify_log(filled, VERIFIER, LOG)
    assert "leaf-changed" in kinds(report)
    assert any(f.kind == "leaf-changed" and f.index == 17 for f in report.findings)


def test_flipped_byte_with_fixed_entry_hash_is_named(filled):
    leaf = b"entry-17 but different"
    _sql(filled, "UPDATE leaves SET leaf = ?, entry_hash = ? WHERE idx = ?",
         (leaf, hashlib.sha256(leaf).digest(), 17))
    report = audit.verify_log(filled, VERIFIER, LOG)
    assert any(f.kind == "leaf-moved" and f.index == 17 for f in report.findings)
    assert "checkpoint-root" in kinds(report)


def test_deleted_row_is_named(filled):
    _sql(filled, "DELETE FROM leaves WHERE idx = ?", (9,))
    report = audit.verify_log(filled, VERIFIER, LOG)
    assert [f for f in report.findings if f.kind == "gap"][0].index == 9
    # only the gap: the tree's own leaf hash stands in for the missing leaf above it
    assert kinds(report) == {"gap"}


def test_deleted_tail_rolls_back_under_the_checkpoint(filled):
    _sql(filled, "DELETE FROM leaves WHERE idx >= ?", (N - 3,))
    report = audit.verify_log(filled, VERIFIER, LOG)
    assert "gap" in kinds(report)


def _swap(store, i: int, j: int) -> None:
    a, b = store.get_leaf(i), store.get_leaf(j)
    _sql(store, "UPDATE leaves SET entry_hash = ?, leaf = ? WHERE idx = ?", (b"tmp", b"", i))
    _sql(store, "UPDATE leaves SET entry_hash = ?, leaf = ? WHERE idx = ?",
         (hashlib.sha256(a).digest(), a, j))
    _sql(store, "UPDATE leaves SET entry_hash = ?, leaf = ? WHERE idx = ?",
         (hashlib.sha256(b).digest(), b, i))


def test_swapped_rows_are_named(filled):
    _swap(filled, 3, 30)
    report = audit.verify_log(filled, VERIFIER, LOG)
    moved = sorted(f.index for f in report.findings if f.kind == "leaf-moved")
    assert moved == [3, 30]


def test_swapped_rows_with_rebuilt_tree_break_the_checkpoint(filled):
    _swap(filled, 3, 30)
    # a careful attacker rewrites every node and the state row too ...
    frontier = merkle.Frontier()
    _sql(filled, "DELETE FROM nodes")
    for _, leaf in list(filled.iter_leaves()):
        for (level, idx), h in frontier.append(merkle.leaf_hash(leaf)):
            _sql(filled, "INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)", (level, idx, h))
    _sql(filled, "UPDATE tree_state SET frontier = ? WHERE id = 1", (frontier.to_bytes(),))
    report = audit.verify_log(filled, VERIFIER, LOG)
    # ... but cannot re-sign the checkpoint
    assert kinds(report) == {"checkpoint-root"}


def test_checkpoint_by_another_key_is_named(filled):
    size = filled.size()
    other = nacl.signing.SigningKey(bytes([6]) * 32)
    forged = sign_checkpoint(Checkpoint(LOG, size, filled.root_hash()), LOG, other)
    filled.save_checkpoint(size, forged)
    report = audit.verify_log(filled, VERIFIER, LOG)
    assert kinds(report) == {"checkpoint-signature"}
    assert "not signed by key" in report.findings[0].detail


def test_corrupted_interior_node_is_named(filled):
    _sql(filled, "UPDATE nodes SET hash = ? WHERE level = 2 AND idx = 1", (bytes(32),))
    report = audit.verify_log(filled, VERIFIER, LOG)
    assert any(f.kind == "node-mismatch" and f.index == 1 for f in report.findings)


def test_prove_entry_and_iterate(filled):
    p = audit.prove_entry(filled, 7, from_size=5)
    p.verify()
    assert p.root == filled.root_hash() and p.from_root == filled.root_hash(5)
    bad = audit.EntryProof(**{**p.__dict__, "index": 8})
    with pytest.raises(VerificationError):
        bad.verify()
    assert [i for i, _ in audit.iter_entries(filled, 38)] == [38, 39]


# ------------------------------------------------------------------ the command line

@pytest.fixture
def db(tmp_path):
    from kiosk.ledger.sqlite_store import SqliteLogStore

    from .test_audit_attacks import append, make_entry

    path = tmp_path / "ledger.sqlite3"
    s = SqliteLogStore(path)
    append(s, [make_entry() for _ in range(N)])
    audit.make_checkpoint(s, LOG, LOG, KEY)
    s.close()
    return path


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def test_cli_verify_ok(db, capsys):
    code, out = _run(capsys, "ledger", "verify", "--db", str(db),
                     "--vkey", verifier_key_text(LOG, KEY.verify_key), "--origin", LOG)
    assert code == 0, out
    assert "ok: 40 entries" in out


def test_cli_verify_names_tampering(db, capsys):
    import sqlite3

    conn = sqlite3.connect(db)
    conn.execute("UPDATE leaves SET leaf = ? WHERE idx = 11", (b"entry-1X",))
    conn.commit()
    conn.close()
    code, out = _run(capsys, "ledger", "verify", "--db", str(db),
                     "--vkey", verifier_key_text(LOG, KEY.verify_key))
    assert code == 1
    assert "FAIL leaf-changed: leaf 11 changed" in out
    assert "FAIL leaf-malformed: leaf 11" in out
    assert "log verification failed" in out


def test_cli_verify_json_and_wrong_key(db, capsys):
    other = nacl.signing.SigningKey(bytes([9]) * 32)
    code, out = _run(capsys, "ledger", "verify", "--db", str(db), "--json",
                     "--vkey", verifier_key_text(LOG, other.verify_key))
    assert code == 1
    report = json.loads(out)
    assert [f["kind"] for f in report["findings"]] == ["checkpoint-signature"]


def test_cli_prove(db, capsys):
    code, out = _run(capsys, "ledger", "prove", "--db", str(db), "--index", "3", "--from", "2")
    assert code == 0, out
    got = json.loads(out)
    assert got["index"] == 3 and got["size"] == N and len(got["consistency"]) > 0
    from kiosk.ledger.sqlite_store import SqliteLogStore

    s = SqliteLogStore(db)
    eh = hashlib.sha256(s.get_leaf(5)).hexdigest()
    s.close()
    code, out = _run(capsys, "ledger", "prove", "--db", str(db), "--entry-hash", eh)
    assert json.loads(out)["index"] == 5
    code, out = _run(capsys, "ledger", "prove", "--db", str(db), "--index", "99")
    assert code == 66 and "index 99" in out  # an entry the log does not hold: a missing input


def test_cli_checkpoint_sign_with_config(tmp_path, capsys):
    from kiosk.protocol.keys import new_signing_key

    key = new_signing_key(tmp_path / "log.key", tmp_path / "log.pub")
    (tmp_path / "state").mkdir()
    from kiosk.ledger.sqlite_store import SqliteLogStore

    from .test_audit_attacks import append, make_entry

    s = SqliteLogStore(tmp_path / "state" / "ledger.sqlite3")
    append(s, [make_entry() for _ in range(3)])
    s.close()
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'schema_version = 1\n[paths]\nstate_dir = "state"\n'
                   f'[keys]\nlog_public = "log.pub"\nlog_name = "{LOG}"\n'
                   f'[gateway]\nlog_key = "log.key"\n')
    code, out = _run(capsys, "ledger", "checkpoint", "--config", str(cfg), "--sign")
    assert code == 0, out
    assert out.startswith(f"{LOG}\n3\n")
    code, out = _run(capsys, "ledger", "verify", "--config", str(cfg))
    assert code == 0 and "newest at size 3 matches (signatures verified)" in out, out
    code, out2 = _run(capsys, "ledger", "checkpoint", "--config", str(cfg))
    assert code == 0 and out2.startswith(f"{LOG}\n3\n")
    assert key is not None


def test_cli_missing_db(tmp_path, capsys):
    code, out = _run(capsys, "ledger", "verify", "--db", str(tmp_path / "nope.sqlite3"))
    assert code == 66 and "no log store" in out
