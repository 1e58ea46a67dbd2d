"""Ledger benchmark: append rate against a raw INSERT, and proof latency at 10^6 entries.

    python benchmarks/ledger_bench.py [--quick] [--dsn postgresql://postgres@127.0.0.1/test]

For SQLite (WAL, synchronous=FULL) and PostgreSQL (synchronous_commit on, its default), it
measures appends one at a time and in batches of 32 (and the gateway's batch: bodies, leaves
and a signed checkpoint in one transaction), beside a raw INSERT of the same bytes
into a plain table with the same durability in the same run, and prints the ratio. Then it
bulk-loads 10^6 entries (10^4 with --quick) and times inclusion and consistency proofs
(p50/p99). PostgreSQL runs in a schema of its own, dropped at the end.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

LEAF_BYTES = 240  # about a kiosk-signed COSE_Sign1 entry


def leaf(run: bytes, i: int) -> bytes:
    """Distinct, deterministic leaf bytes of LEAF_BYTES."""
    seed = hashlib.sha256(run + i.to_bytes(8, "big")).digest()
    return (seed * (LEAF_BYTES // 32 + 1))[:LEAF_BYTES]


def leaves(run: bytes, start: int, n: int) -> Iterator[bytes]:
    return (leaf(run, i) for i in range(start, start + n))


def rate(n: int, fn: Callable[[], None]) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def bench_appends(name: str, store, raw_insert: Callable[[list[bytes]], None],
                  singles: int, batches: int) -> None:
    run = os.urandom(8)
    data = list(leaves(run, 0, singles + 32 * batches))
    raw = list(leaves(run + b"raw", 0, singles + 32 * batches))

    def log_single() -> None:
        for x in data[:singles]:
            store.append([x])

    def raw_single() -> None:
        for x in raw[:singles]:
            raw_insert([x])

    def log_batch() -> None:
        for b in range(batches):
            store.append(data[singles + 32 * b: singles + 32 * (b + 1)])

    def raw_batch() -> None:
        for b in range(batches):
            raw_insert(raw[singles + 32 * b: singles + 32 * (b + 1)])

    from nacl.signing import SigningKey

    from kiosk.ledger.checkpoint import Checkpoint, sign_checkpoint

    gw = list(leaves(run + b"gw", 0, 32 * batches))
    key = SigningKey.generate()

    def sign(size: int, root: bytes) -> bytes:
        return sign_checkpoint(Checkpoint("bench.example/log", size, root), "bench.example/log", key)

    def gateway_batch() -> None:
        for b in range(batches):
            chunk = gw[32 * b: 32 * (b + 1)]
            store.append_batch(chunk, [(hashlib.sha256(x).digest(), x[:100]) for x in chunk], sign)

    r_raw1, r_log1 = rate(singles, raw_single), rate(singles, log_single)
    r_raw32, r_log32 = rate(32 * batches, raw_batch), rate(32 * batches, log_batch)
    r_gw32 = rate(32 * batches, gateway_batch)
    print(f"{name:10s} append x1 : {r_log1:9.0f}/s   raw INSERT {r_raw1:9.0f}/s   "
          f"ratio {r_log1 / r_raw1:5.2f}")
    print(f"{name:10s} append x32: {r_log32:9.0f}/s   raw INSERT {r_raw32:9.0f}/s   "
          f"ratio {r_log32 / r_raw32:5.2f}")
    print(f"{name:10s} gateway batch x32 (bodies + leaves + signed checkpoint, one commit): "
          f"{r_gw32:9.0f}/s   ratio to raw INSERT x32 {r_gw32 / r_raw32:5.2f}")


def bench_proofs(name: str, store, n: int, samples: int) -> None:
    run = os.urandom(8)
    t = time.perf_counter()
    store.bulk_load(leaves(run, 0, n), batch=50_000)
    print(f"{name:10s} bulk load {n} entries: {time.perf_counter() - t:6.1f} s")
    size = store.size()
    rng = random.Random(1)
    incl, cons = [], []
    for _ in range(samples):
        i = rng.randrange(size)
        t = time.perf_counter()
        store.inclusion_proof(i, size)
        incl.append((time.perf_counter() - t) * 1e3)
        m = rng.randrange(1, size)
        t = time.perf_counter()
        store.consistency_proof(m, size)
        cons.append((time.perf_counter() - t) * 1e3)
    t = time.perf_counter()
    store.root_hash(size - 12345 % size)
    root_ms = (time.perf_counter() - t) * 1e3
    print(f"{name:10s} at {size}: inclusion p50 {statistics.median(incl):.3f} ms "
          f"p99 {pct(incl, 99):.3f} ms | consistency p50 {statistics.median(cons):.3f} ms "
          f"p99 {pct(cons, 99):.3f} ms | historical root {root_ms:.3f} ms")


def sqlite_raw(path: Path) -> tuple[Callable[[list[bytes]], None], Callable[[], None]]:
    """A plain table with the log store's durability: WAL, synchronous=FULL, one txn per call."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE raw (id INTEGER PRIMARY KEY, data BLOB NOT NULL)")

    def insert(rows: list[bytes]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO raw (data) VALUES (?)", [(r,) for r in rows])
        conn.execute("COMMIT")
    return insert, conn.close


def pg_raw(dsn: str, schema: str):
    import psycopg

    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute(f'CREATE TABLE "{schema}".raw (id BIGSERIAL PRIMARY KEY, data BYTEA NOT NULL)')

    def insert(rows: list[bytes]) -> None:
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(f'INSERT INTO "{schema}".raw (data) VALUES (%s)', [(r,) for r in rows])
    return insert, conn.close


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10^4 entries instead of 10^6")
    ap.add_argument("--dsn", default=os.environ.get("KIOSK_BENCH_PG_DSN",
                                                    "postgresql://postgres@127.0.0.1/test"))
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args(argv)
    n = 10_000 if args.quick else 1_000_000
    singles, batches, samples = (200, 30, 300) if args.quick else (1000, 150, 1000)

    from kiosk.errors import StoreError
    from kiosk.ledger.sqlite_store import SqliteLogStore

    print(f"ledger benchmark: {'quick' if args.quick else 'full'}, {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]}, leaves of {LEAF_BYTES} bytes")
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
        store = SqliteLogStore(Path(tmp) / "append.sqlite3")
        insert, close = sqlite_raw(Path(tmp) / "raw.sqlite3")
        bench_appends("sqlite", store, insert, singles, batches)
        store.close()
        close()
        store = SqliteLogStore(Path(tmp) / "proofs.sqlite3")
        bench_proofs("sqlite", store, n, samples)
        store.close()

    if args.no_postgres:
        return 0
    from kiosk.ledger.postgres_store import PostgresLogStore

    schemas = [f"bench_{uuid.uuid4().hex[:12]}", f"bench_{uuid.uuid4().hex[:12]}"]
    try:
        store = PostgresLogStore(args.dsn, schema=schemas[0])
    except StoreError as e:
        print(f"postgres   skipped: {e.message}")
        return 0
    try:
        insert, close = pg_raw(args.dsn, schemas[0])
        bench_appends("postgres", store, insert, singles, batches)
        close()
        proofs = PostgresLogStore(args.dsn, schema=schemas[1])
        bench_proofs("postgres", proofs, n, samples)
        proofs.drop_schema()
        proofs.close()
    finally:
        store.drop_schema()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
