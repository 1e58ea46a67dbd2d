"""The log store interface: an append-only Merkle log, the bodies beside it, and checkpoints.

Two implementations share one SQL core (`sql_store.py`): `SqliteLogStore` (the default, one
gateway) and `PostgresLogStore` (several gateways on one log); `backends.open_store` picks one. Both keep every complete
subtree hash (`nodes`, level 0 = leaf hashes) and the tree's right edge (a compact range,
`merkle.Frontier`) in one state row, so an append costs no reads and roots and proofs cost
O(log n) node reads. Library exceptions never leave a store: they become StoreError.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class AppendResult:
    """Where an appended leaf sits. `duplicate` means it was already there (not appended again)."""

    index: int
    entry_hash: bytes
    duplicate: bool


@dataclass(frozen=True)
class StoredEntry:
    """A leaf row as stored, unchecked: for audits."""

    index: int
    entry_hash: bytes
    leaf: bytes


@runtime_checkable
class LogStore(Protocol):
    """An append-only RFC 9162 log with a body store and a checkpoint store."""

    # --- the log
    def append(self, leaves: list[bytes]) -> list[AppendResult]:
        """Append leaves atomically (all or none); known entries return their old index."""
    def append_batch(self, leaves: list[bytes], bodies: Sequence[tuple[bytes, bytes]],
                     sign: Callable[[int, bytes], bytes]
                     ) -> tuple[list[AppendResult], tuple[int, bytes]]:
        """Bodies, leaves and the checkpoint `sign(size, root)` makes, in one transaction;
        returns the append results and (size, note) of the newest checkpoint."""
    def size(self) -> int:
        """The number of leaves."""
    def root_hash(self, size: int | None = None) -> bytes:
        """MTH of the first `size` leaves (default: all)."""
    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.3 inclusion proof of leaf `index` in the tree of `size`."""
    def inclusion_proofs(self, indices: Sequence[int], size: int | None = None) -> list[list[bytes]]:
        """`inclusion_proof` for several leaves of one tree, read together."""
    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.4 consistency proof from `size1` to `size2`."""
    def get_leaf(self, index: int) -> bytes:
        """The leaf bytes at `index` (StoreError if there is none)."""
    def find(self, entry_hash: bytes) -> int | None:
        """The index of the entry with this SHA-256(leaf), or None."""
    def iter_leaves(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        """(index, leaf) in index order from `start`."""
    def bulk_load(self, leaves: Iterable[bytes], batch: int = 50_000) -> int:
        """Append many new leaves fast (no duplicate lookup; a duplicate is a StoreError)."""

    # --- raw access for audits (`ledger verify`)
    def iter_entries(self, start: int = 0) -> Iterator[StoredEntry]:
        """Stored leaf rows in index order, exactly as stored."""
    def iter_nodes(self, level: int) -> Iterator[tuple[int, bytes]]:
        """Stored (index, hash) of complete subtrees of one level, in index order."""
    def tree_state(self) -> tuple[int, bytes]:
        """The state row: (size, frontier bytes)."""

    # --- bodies beside the log
    def put_body(self, body_hash: bytes, body: bytes) -> None:
        """Store a body under its hash (idempotent)."""
    def put_bodies(self, items: Sequence[tuple[bytes, bytes]]) -> None:
        """Store several (body_hash, body) in one transaction (idempotent)."""
    def get_body(self, body_hash: bytes) -> bytes | None:
        """The body, or None if absent or erased."""
    def delete_body(self, body_hash: bytes) -> bool:
        """Erase a body (retention); True if one was there."""

    # --- checkpoints
    def save_checkpoint(self, size: int, note: bytes) -> None:
        """Keep a signed checkpoint note for tree `size`."""
    def latest_checkpoint(self) -> tuple[int, bytes] | None:
        """(size, note) of the largest saved checkpoint, or None."""
    def iter_checkpoints(self) -> Iterator[tuple[int, bytes]]:
        """Every saved (size, note), by size then age: what `ledger verify` checks."""

    def close(self) -> None:
        """Release the connection."""

