"""The SQL core both log stores share. Subclasses supply connection, transactions, schema.

Tables (same names in SQLite and PostgreSQL):
- `leaves(idx, entry_hash UNIQUE, leaf)` — the log; entry_hash = SHA-256(leaf) (docs/design-notes.md).
- `nodes(level, idx, hash)` — every complete subtree (RFC 9162 §2.1.1), level 0 = leaf hashes.
- `tree_state(id = 1, size, frontier)` — the one row writers lock; frontier = compact range.
- `bodies(body_hash, body)` and `checkpoints(id, size, note)`.

SQL is written with `?` placeholders; a subclass with another paramstyle sets `_PARAM`.
"""
from __future__ import annotations

import hashlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from kiosk.errors import LogIntegrityError, StoreError
from kiosk.ledger import merkle
from kiosk.ledger.store import AppendResult, StoredEntry

PAGE = 2000  # rows per query when iterating


class SqlLogStore(ABC):
    """Log store logic over a DB-API connection; see the module docstring."""

    _PARAM = "?"
    _LOCK_STATE = ""  # " FOR UPDATE" where the database locks rows

    def __init__(self) -> None:
        self._lock = threading.RLock()

    # ----------------------------------------------------------- hooks for subclasses
    @abstractmethod
    def _guard(self) -> AbstractContextManager[None]:
        """Translate the library's exceptions into StoreError."""

    @abstractmethod
    def _write(self) -> AbstractContextManager[Any]:
        """A write transaction that serialises writers; yields a cursor."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Any]:
        """A read; yields a cursor."""

    def _bulk_insert(self, cur: Any, table: str, columns: Sequence[str],
                     rows: list[tuple]) -> None:
        cols = ", ".join(columns)
        marks = ", ".join("?" * len(columns))
        cur.executemany(self._q(f"INSERT INTO {table} ({cols}) VALUES ({marks})"), rows)

    def _q(self, sql: str) -> str:
        return sql if self._PARAM == "?" else sql.replace("?", self._PARAM)

    # ----------------------------------------------------------- state and nodes
    def _state(self, cur: Any, lock: bool = False) -> merkle.Frontier:
        row = cur.execute("SELECT size, frontier FROM tree_state WHERE id = 1"
                          + (self._LOCK_STATE if lock else "")).fetchone()
        if row is None:
            raise LogIntegrityError("log store has no tree state row")
        try:
            return merkle.Frontier.from_bytes(int(row[0]), bytes(row[1]))
        except ValueError as e:
            raise LogIntegrityError(f"stored tree state is corrupt: {e}") from None

    def _reader(self, cur: Any) -> merkle.NodeReader:
        def read(nodes: Sequence[merkle.NodeID]) -> list[bytes]:
            found: dict[tuple[int, int], bytes] = {}
            for i in range(0, len(nodes), 200):
                chunk = nodes[i:i + 200]
                # OR of point lookups: SQLite scans the table for a row-value IN (VALUES ...)
                where = " OR ".join(["(level = ? AND idx = ?)"] * len(chunk))
                params = [x for node in chunk for x in node]
                rows = cur.execute(self._q(f"SELECT level, idx, hash FROM nodes WHERE {where}"),
                                   params).fetchall()
                found.update({(int(r[0]), int(r[1])): bytes(r[2]) for r in rows})
            try:
                return [found[(n[0], n[1])] for n in nodes]
            except KeyError as e:
                raise LogIntegrityError(f"tree node (level, index) {e.args[0]} is missing") from None
        return read

    def _check_size(self, cur: Any, size: int | None) -> int:
        current = self._state(cur).size
        if size is None:
            return current
        if not 0 <= size <= current:
            raise StoreError(f"tree size {size} is beyond the log's size {current}")
        return size

    # ----------------------------------------------------------- the log
    def append(self, leaves: list[bytes]) -> list[AppendResult]:
        """Append atomically; an entry already present returns its index with duplicate=True."""
        if not leaves:
            return []
        with self._lock, self._guard(), self._write() as cur:
            return self._append(cur, leaves)

    def append_batch(self, leaves: list[bytes], bodies: Sequence[tuple[bytes, bytes]],
                     sign: Callable[[int, bytes], bytes]
                     ) -> tuple[list[AppendResult], tuple[int, bytes]]:
        """Bodies, leaves and a signed checkpoint of the tree they make, in ONE transaction.

        `sign(size, root_hash)` returns the checkpoint note; it is called only when no
        checkpoint of the new size is saved yet (a batch of resends signs nothing new). One
        commit for the whole batch: the bodies are still stored before (here: with) their
        entries, and no committed append is ever without its checkpoint.
        """
        with self._lock, self._guard(), self._write() as cur:
            if bodies:
                self._put_bodies(cur, bodies)
            results = self._append(cur, leaves) if leaves else []
            frontier = self._state(cur)
            row = cur.execute("SELECT size, note FROM checkpoints "
                              "ORDER BY size DESC, id DESC LIMIT 1").fetchone()
            if row is not None and int(row[0]) == frontier.size:
                return results, (int(row[0]), bytes(row[1]))
            note = sign(frontier.size, frontier.root())
            cur.execute(self._q("INSERT INTO checkpoints (size, note) VALUES (?, ?)"),
                        (frontier.size, note))
            return results, (frontier.size, note)

    def _append(self, cur: Any, leaves: list[bytes]) -> list[AppendResult]:
        hashes = [hashlib.sha256(leaf).digest() for leaf in leaves]
        frontier = self._state(cur, lock=True)
        seen = self._lookup(cur, list(dict.fromkeys(hashes)))
        results: list[AppendResult] = []
        new_leaves: list[tuple] = []
        new_nodes: list[tuple] = []
        for leaf, eh in zip(leaves, hashes, strict=False):
            if eh in seen:
                results.append(AppendResult(seen[eh], eh, True))
                continue
            index = frontier.size
            for (level, idx), h in frontier.append(merkle.leaf_hash(leaf)):
                new_nodes.append((level, idx, h))
            seen[eh] = index
            new_leaves.append((index, eh, leaf))
            results.append(AppendResult(index, eh, False))
        if new_leaves:
            cur.executemany(self._q(
                "INSERT INTO leaves (idx, entry_hash, leaf) VALUES (?, ?, ?)"), new_leaves)
            cur.executemany(self._q(
                "INSERT INTO nodes (level, idx, hash) VALUES (?, ?, ?)"), new_nodes)
            cur.execute(self._q("UPDATE tree_state SET size = ?, frontier = ? WHERE id = 1"),
                        (frontier.size, frontier.to_bytes()))
        return results

    def _lookup(self, cur: Any, hashes: list[bytes]) -> dict[bytes, int]:
        found: dict[bytes, int] = {}
        for i in range(0, len(hashes), 200):
            chunk = hashes[i:i + 200]
            marks = ", ".join("?" * len(chunk))
            rows = cur.execute(self._q(
                f"SELECT entry_hash, idx FROM leaves WHERE entry_hash IN ({marks})"), chunk)
            found.update({bytes(r[0]): int(r[1]) for r in rows.fetchall()})
        return found

    def bulk_load(self, leaves: Iterable[bytes], batch: int = 50_000) -> int:
        """Append many new leaves in large transactions, without duplicate lookups.

        For benchmarks and migrations. A leaf already in the log makes the batch fail
        with StoreError (the unique index refuses it). Returns the new size.
        """
        it = iter(leaves)
        while True:
            chunk = [leaf for _, leaf in zip(range(batch), it, strict=False)]
            if not chunk:
                break
            with self._lock, self._guard(), self._write() as cur:
                frontier = self._state(cur, lock=True)
                leaf_rows, node_rows = [], []
                for leaf in chunk:
                    leaf_rows.append((frontier.size, hashlib.sha256(leaf).digest(), leaf))
                    for (level, idx), h in frontier.append(merkle.leaf_hash(leaf)):
                        node_rows.append((level, idx, h))
                self._bulk_insert(cur, "leaves", ("idx", "entry_hash", "leaf"), leaf_rows)
                self._bulk_insert(cur, "nodes", ("level", "idx", "hash"), node_rows)
                cur.execute(self._q("UPDATE tree_state SET size = ?, frontier = ? WHERE id = 1"),
                            (frontier.size, frontier.to_bytes()))
        return self.size()

    def size(self) -> int:
        """The number of leaves in the log."""
        with self._lock, self._guard(), self._read() as cur:
            return self._state(cur).size

    def root_hash(self, size: int | None = None) -> bytes:
        """MTH of the first `size` leaves; the current root comes from the state row alone."""
        with self._lock, self._guard(), self._read() as cur:
            frontier = self._state(cur)
            if size is None or size == frontier.size:
                return frontier.root()
            size = self._check_size(cur, size)
            return merkle.root_hash(size, self._reader(cur))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.3.1 PATH(index, D[0:size]) from one batched node read."""
        with self._lock, self._guard(), self._read() as cur:
            size = self._check_size(cur, size)
            if not 0 <= index < size:
                raise StoreError(f"leaf index {index} is not in a tree of size {size}")
            return merkle.inclusion_proof(index, size, self._reader(cur))

    def inclusion_proofs(self, indices: Sequence[int], size: int | None = None) -> list[list[bytes]]:
        """`inclusion_proof` for several leaves of one tree: the nodes of all of them read
        together (a gateway batch answers every record from one checkpoint)."""
        with self._lock, self._guard(), self._read() as cur:
            size = self._check_size(cur, size)
            for index in indices:
                if not 0 <= index < size:
                    raise StoreError(f"leaf index {index} is not in a tree of size {size}")
            return merkle.inclusion_proofs(list(indices), size, self._reader(cur))

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.4.1 PROOF(size1, D[0:size2]) from one batched node read."""
        with self._lock, self._guard(), self._read() as cur:
            size2 = self._check_size(cur, size2)
            if not 0 < size1 <= size2:
                raise StoreError(f"no consistency proof from size {size1} to size {size2}")
            return merkle.consistency_proof(size1, size2, self._reader(cur))

    def get_leaf(self, index: int) -> bytes:
        """The leaf bytes at `index`; StoreError if there is none."""
        with self._lock, self._guard(), self._read() as cur:
            row = cur.execute(self._q("SELECT leaf FROM leaves WHERE idx = ?"), (index,)).fetchone()
        if row is None:
            raise StoreError(f"no leaf at index {index}")
        return bytes(row[0])

    def find(self, entry_hash: bytes) -> int | None:
        """The index of the entry named by SHA-256(leaf), or None."""
        with self._lock, self._guard(), self._read() as cur:
            return self._lookup(cur, [bytes(entry_hash)]).get(bytes(entry_hash))

    def iter_entries(self, start: int = 0) -> Iterator[StoredEntry]:
        """Stored rows in index order, unchecked, paged so no cursor stays open."""
        last = start - 1
        while True:
            with self._lock, self._guard(), self._read() as cur:
                rows = cur.execute(self._q(
                    "SELECT idx, entry_hash, leaf FROM leaves WHERE idx > ? ORDER BY idx LIMIT ?"),
                    (last, PAGE)).fetchall()
            if not rows:
                return
            for r in rows:
                yield StoredEntry(int(r[0]), bytes(r[1]), bytes(r[2]))
            last = int(rows[-1][0])

    def iter_leaves(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        """(index, leaf) in index order from `start`."""
        for e in self.iter_entries(start):
            yield e.index, e.leaf

    def iter_nodes(self, level: int) -> Iterator[tuple[int, bytes]]:
        """Stored (index, hash) of the complete subtrees of one level, in index order."""
        last = -1
        while True:
            with self._lock, self._guard(), self._read() as cur:
                rows = cur.execute(self._q(
                    "SELECT idx, hash FROM nodes WHERE level = ? AND idx > ? ORDER BY idx LIMIT ?"),
                    (level, last, PAGE * 4)).fetchall()
            if not rows:
                return
            for r in rows:
                yield int(r[0]), bytes(r[1])
            last = int(rows[-1][0])

    def tree_state(self) -> tuple[int, bytes]:
        """(size, frontier bytes) as stored."""
        with self._lock, self._guard(), self._read() as cur:
            f = self._state(cur)
            return f.size, f.to_bytes()

    # ----------------------------------------------------------- bodies
    def put_body(self, body_hash: bytes, body: bytes) -> None:
        """Store a body under its hash; storing the same hash again keeps the first."""
        self.put_bodies([(body_hash, body)])

    def put_bodies(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        """`put_body` for a whole batch in one transaction (one commit, not one each)."""
        if not items:
            return
        with self._lock, self._guard(), self._write() as cur:
            self._put_bodies(cur, items)

    def _put_bodies(self, cur: Any, items: Sequence[tuple[bytes, bytes]]) -> None:
        cur.executemany(self._q("INSERT INTO bodies (body_hash, body) VALUES (?, ?) "
                                "ON CONFLICT (body_hash) DO NOTHING"), list(items))

    def get_body(self, body_hash: bytes) -> bytes | None:
        """The body, or None if it is absent or was erased."""
        with self._lock, self._guard(), self._read() as cur:
            row = cur.execute(self._q("SELECT body FROM bodies WHERE body_hash = ?"),
                              (body_hash,)).fetchone()
        return None if row is None else bytes(row[0])

    def delete_body(self, body_hash: bytes) -> bool:
        """Erase a body under the retention policy; the log and its proofs are untouched."""
        with self._lock, self._guard(), self._write() as cur:
            n = cur.execute(self._q("DELETE FROM bodies WHERE body_hash = ?"), (body_hash,)).rowcount
        return n > 0

    # ----------------------------------------------------------- checkpoints
    def save_checkpoint(self, size: int, note: bytes) -> None:
        """Keep a signed checkpoint note for tree `size`."""
        with self._lock, self._guard(), self._write() as cur:
            cur.execute(self._q("INSERT INTO checkpoints (size, note) VALUES (?, ?)"), (size, note))

    def latest_checkpoint(self) -> tuple[int, bytes] | None:
        """(size, note) of the largest checkpoint, the newest among equals; None if none."""
        with self._lock, self._guard(), self._read() as cur:
            row = cur.execute("SELECT size, note FROM checkpoints "
                              "ORDER BY size DESC, id DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def iter_checkpoints(self) -> Iterator[tuple[int, bytes]]:
        """Every saved (size, note), by size then age, paged so no cursor stays open."""
        last = (-1, -1)
        while True:
            with self._lock, self._guard(), self._read() as cur:
                rows = cur.execute(self._q(
                    "SELECT size, id, note FROM checkpoints WHERE size > ? OR (size = ? AND id > ?)"
                    " ORDER BY size, id LIMIT ?"), (last[0], last[0], last[1], PAGE)).fetchall()
            if not rows:
                return
            for r in rows:
                yield int(r[0]), bytes(r[2])
            last = (int(rows[-1][0]), int(rows[-1][1]))


@contextmanager
def translate(library_error: type[BaseException] | tuple[type[BaseException], ...],
              what: str) -> Iterator[None]:
    """Turn a library's exceptions into StoreError at the store boundary (STYLE §5)."""
    try:
        yield
    except library_error as e:
        lines = str(e).strip().splitlines()
        raise StoreError(f"{what}: {type(e).__name__}: {lines[0] if lines else ''}") from e
