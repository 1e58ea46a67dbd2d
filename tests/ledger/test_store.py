"""Both log stores: same behaviour, checked against the pure Merkle functions."""
from __future__ import annotations

import hashlib
import multiprocessing as mp

import pytest

from kiosk.errors import LogIntegrityError, StoreError
from kiosk.ledger import merkle
from kiosk.ledger.store import AppendResult, LogStore

from .conftest import PG_DSN


def leaves(n: int, prefix: bytes = b"e") -> list[bytes]:
    return [prefix + b"-%d" % i for i in range(n)]


def test_is_a_log_store(store):
    assert isinstance(store, LogStore)
    assert store.size() == 0
    assert store.root_hash() == merkle.EMPTY_ROOT
    assert store.latest_checkpoint() is None


def test_append_roots_and_proofs(store):
    data = leaves(37)
    results = store.append(data[:5])
    assert results == [AppendResult(i, hashlib.sha256(data[i]).digest(), False) for i in range(5)]
    for i in range(5, 37, 8):
        store.append(data[i:i + 8])
    assert store.size() == 37
    hashes = [merkle.leaf_hash(x) for x in data]
    for n in range(1, 38):
        root = merkle.root_from_leaf_hashes(hashes[:n])
        assert store.root_hash(n) == root
        for i in range(n):
            merkle.verify_inclusion(hashes[i], i, n, store.inclusion_proof(i, n), root)
        for m in range(1, n + 1):
            merkle.verify_consistency(m, n, merkle.root_from_leaf_hashes(hashes[:m]), root,
                                      store.consistency_proof(m, n))
    assert store.root_hash() == merkle.root_from_leaf_hashes(hashes)
    assert store.inclusion_proof(3) == store.inclusion_proof(3, 37)


def test_duplicates_are_not_appended_twice(store):
    first = store.append([b"a", b"b"])
    again = store.append([b"c", b"a", b"c", b"b"])
    assert [r.index for r in again] == [2, 0, 2, 1]
    assert [r.duplicate for r in again] == [False, True, True, True]
    assert again[1].entry_hash == first[0].entry_hash
    assert store.size() == 3
    assert store.find(hashlib.sha256(b"c").digest()) == 2
    assert store.find(hashlib.sha256(b"zzz").digest()) is None


def test_get_and_iterate(store):
    store.append(leaves(5000))
    assert store.get_leaf(4321) == b"e-4321"
    got = list(store.iter_leaves(4990))
    assert got == [(i, b"e-%d" % i) for i in range(4990, 5000)]
    assert sum(1 for _ in store.iter_leaves()) == 5000
    with pytest.raises(StoreError, match="no leaf"):
        store.get_leaf(5000)


def test_bad_proof_requests_are_store_errors(store):
    store.append(leaves(4))
    with pytest.raises(StoreError):
        store.inclusion_proof(4, 4)
    with pytest.raises(StoreError):
        store.inclusion_proof(0, 5)
    with pytest.raises(StoreError):
        store.consistency_proof(0, 4)
    with pytest.raises(StoreError):
        store.root_hash(9)
    assert store.consistency_proof(4, 4) == []


def test_bodies(store):
    h = hashlib.sha256(b"salt" + b"body").digest()
    assert store.get_body(h) is None
    store.put_body(h, b"body")
    store.put_body(h, b"body")
    assert store.get_body(h) == b"body"
    assert store.delete_body(h) is True
    assert store.delete_body(h) is False
    assert store.get_body(h) is None


def test_checkpoints(store):
    store.save_checkpoint(3, b"note-3")
    store.save_checkpoint(7, b"note-7")
    store.save_checkpoint(5, b"note-5")
    assert store.latest_checkpoint() == (7, b"note-7")
    store.save_checkpoint(7, b"note-7b")
    assert store.latest_checkpoint() == (7, b"note-7b")


def test_bulk_load_then_append(store):
    data = leaves(3000)
    assert store.bulk_load(iter(data[:2500]), batch=700) == 2500
    store.append(data[2500:])
    root = merkle.root_from_leaf_hashes([merkle.leaf_hash(x) for x in data])
    assert store.root_hash() == root
    merkle.verify_inclusion(merkle.leaf_hash(data[1234]), 1234, 3000,
                            store.inclusion_proof(1234), root)
    assert store.append([data[7]])[0] == AppendResult(7, hashlib.sha256(data[7]).digest(), True)
    with pytest.raises(StoreError):
        store.bulk_load([data[0]])
    assert store.size() == 3000


def test_failed_append_leaves_nothing_behind(store):
    store.append([b"x"])
    with pytest.raises((StoreError, TypeError)):
        store.append([b"y", None])  # type: ignore[list-item]
    assert store.size() == 1
    assert store.find(hashlib.sha256(b"y").digest()) is None
    assert store.append([b"y"])[0].index == 1


def test_reopen_keeps_everything(store_factory):
    _, open_ = store_factory
    s = open_()
    s.append(leaves(10))
    root = s.root_hash()
    s.close()
    s2 = open_()
    assert s2.size() == 10 and s2.root_hash() == root
    assert s2.append([b"e-3"])[0].duplicate


def test_missing_node_is_an_integrity_error(tmp_path):
    from kiosk.ledger.sqlite_store import SqliteLogStore

    s = SqliteLogStore(tmp_path / "l.sqlite3")
    s.append(leaves(8))
    s._conn.execute("DELETE FROM nodes WHERE level = 1 AND idx = 1")
    with pytest.raises(LogIntegrityError, match="missing"):
        s.inclusion_proof(0, 8)
    s.close()


def test_sqlite_errors_become_store_errors(tmp_path):
    from kiosk.ledger.sqlite_store import SqliteLogStore

    with pytest.raises(StoreError):
        SqliteLogStore(tmp_path / "no" / "such" / "dir.sqlite3")


@pytest.mark.postgres
def test_postgres_unreachable_is_a_store_error():
    from kiosk.ledger.postgres_store import PostgresLogStore

    with pytest.raises(StoreError):
        PostgresLogStore("postgresql://postgres@127.0.0.1:1/test", schema="x", connect_timeout_s=2)
    with pytest.raises(StoreError):
        PostgresLogStore(PG_DSN, schema="Bad; name")


# ------------------------------------------------------------------ concurrency

def _writer(kind: str, target: str, worker: int, n: int, shared: int, q) -> None:
    try:
        if kind == "postgres":
            from kiosk.ledger.postgres_store import PostgresLogStore

            s = PostgresLogStore(PG_DSN, schema=target)
        else:
            from kiosk.ledger.sqlite_store import SqliteLogStore

            s = SqliteLogStore(target)
        out = []
        for i in range(0, n, 4):  # small batches, own entries plus entries every writer sends
            batch = [b"w%d-%d" % (worker, j) for j in range(i, min(i + 4, n))]
            batch.append(b"shared-%d" % ((i // 4) % shared))
            out.extend((r.index, r.entry_hash, r.duplicate) for r in s.append(batch))
        s.close()
        q.put(("ok", out))
    except BaseException as e:  # report, do not hang the parent
        q.put(("error", repr(e)))


def _run_writers(kind: str, target: str, workers: int = 2, n: int = 120, shared: int = 10):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(kind, target, w, n, shared, q))
             for w in range(workers)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    for status, payload in results:
        assert status == "ok", payload
    return [r for _, payload in results for r in payload]


def _check_one_tree(store, results, workers: int, n: int, shared: int) -> None:
    expected = workers * n + shared
    assert store.size() == expected
    stored = list(store.iter_entries())
    assert [e.index for e in stored] == list(range(expected))  # no gap
    assert len({e.entry_hash for e in stored}) == expected  # no duplicate
    by_hash = {e.entry_hash: e.index for e in stored}
    for index, eh, _dup in results:  # every writer was told the true index
        assert by_hash[eh] == index
    assert sum(1 for r in results if not r[2]) == expected  # each entry appended once
    hashes = [merkle.leaf_hash(e.leaf) for e in stored]
    assert store.root_hash() == merkle.root_from_leaf_hashes(hashes)
    for i in (0, expected // 2, expected - 1):
        merkle.verify_inclusion(hashes[i], i, expected, store.inclusion_proof(i),
                                store.root_hash())


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_two_processes_append_to_one_postgres_log(pg_schema):
    from kiosk.ledger.postgres_store import PostgresLogStore

    results = _run_writers("postgres", pg_schema)
    s = PostgresLogStore(PG_DSN, schema=pg_schema)
    try:
        _check_one_tree(s, results, workers=2, n=120, shared=10)
    finally:
        s.close()


@pytest.mark.timeout(240)
def test_two_processes_append_to_one_sqlite_log(tmp_path):
    from kiosk.ledger.sqlite_store import SqliteLogStore

    path = str(tmp_path / "shared.sqlite3")
    SqliteLogStore(path).close()
    results = _run_writers("sqlite", path)
    s = SqliteLogStore(path)
    try:
        _check_one_tree(s, results, workers=2, n=120, shared=10)
    finally:
        s.close()


def test_append_batch_writes_bodies_leaves_and_one_checkpoint_together(store):
    signed: list[tuple[int, bytes]] = []

    def sign(size: int, root: bytes) -> bytes:
        signed.append((size, root))
        return b"note-%d" % size

    data = leaves(5)
    results, (size, note) = store.append_batch(data, [(b"h%d" % i, b"body") for i in range(5)], sign)
    assert [r.index for r in results] == list(range(5)) and size == 5 and note == b"note-5"
    assert signed == [(5, merkle.root_from_leaf_hashes([merkle.leaf_hash(x) for x in data]))]
    assert store.latest_checkpoint() == (5, b"note-5") and store.get_body(b"h3") == b"body"
    # only resends: nothing new to sign, the saved checkpoint answers them
    results, cp = store.append_batch(data[:2], [], sign)
    assert [r.duplicate for r in results] == [True, True] and cp == (5, b"note-5")
    assert len(signed) == 1

    def broken(size: int, root: bytes) -> bytes:
        raise RuntimeError("signer gone")

    with pytest.raises(RuntimeError):  # all or nothing: no body, no leaf without the checkpoint
        store.append_batch(leaves(3, b"x"), [(b"hx", b"bx")], broken)
    assert store.size() == 5 and store.get_body(b"hx") is None


def test_inclusion_proofs_of_a_batch_equal_the_single_ones(store):
    store.append(leaves(45))
    indices = [0, 7, 31, 32, 44, 7]
    assert store.inclusion_proofs(indices, 45) == [store.inclusion_proof(i, 45) for i in indices]
    assert store.inclusion_proofs([3], 10) == [store.inclusion_proof(3, 10)]
    with pytest.raises(StoreError):
        store.inclusion_proofs([1, 45], 45)
