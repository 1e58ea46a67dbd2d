"""Test helpers: signed leaves, and a tiny in-memory log that issues real receipts."""
from __future__ import annotations

import time

from nacl.signing import SigningKey

from kiosk.ledger import merkle
from kiosk.ledger.checkpoint import Checkpoint, NoteVerifier, sign_checkpoint
from kiosk.protocol import entry

LOG_NAME = "test.example/log"


def make_leaf(kiosk_key: SigningKey, *, kiosk: str = "kiosk-1", site: str = "clinic",
              type: str = "check-in", refs: tuple[bytes, ...] = ()) -> tuple[bytes, bytes]:
    """(leaf, body) of a fresh, correctly signed entry."""
    body, bh = entry.make_body({"note": "test"})
    env = entry.new_envelope(type, site=site, kiosk=kiosk, body_hash=bh,
                             created_ms=int(time.time() * 1000), refs=refs)
    return entry.sign_leaf(env, kiosk_key), body


def make_session(kiosk_key: SigningKey, kiosk: str = "kiosk-1") -> list[tuple[bytes, bytes, dict]]:
    """A check-in and its consent, linked by refs, sharing a presentation."""
    leaf1, body1 = make_leaf(kiosk_key, kiosk=kiosk)
    leaf2, body2 = make_leaf(kiosk_key, kiosk=kiosk, type="consent", refs=(entry.entry_hash(leaf1),))
    pres = {"ctx": "kiosk-qr-v1", "window": 1}
    return [(leaf1, body1, pres), (leaf2, body2, pres)]


class MiniLog:
    """An append-only list of leaves with RFC 9162 proofs, signing checkpoints like a gateway."""

    def __init__(self, key: SigningKey | None = None, name: str = LOG_NAME) -> None:
        self.key = key or SigningKey.generate()
        self.name = name
        self.leaves: list[bytes] = []

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.key.verify_key)

    def _read(self, nodes):
        out = []
        for level, index in nodes:
            lo = index << level
            out.append(merkle.root_from_leaf_hashes(
                [merkle.leaf_hash(x) for x in self.leaves[lo:lo + (1 << level)]]))
        return out

    def root(self, size: int | None = None) -> bytes:
        size = len(self.leaves) if size is None else size
        return merkle.root_from_leaf_hashes([merkle.leaf_hash(x) for x in self.leaves[:size]])

    def append(self, leaf: bytes) -> int:
        if leaf in self.leaves:
            return self.leaves.index(leaf)
        self.leaves.append(leaf)
        return len(self.leaves) - 1

    def note(self, size: int | None = None, key: SigningKey | None = None,
             origin: str | None = None) -> bytes:
        size = len(self.leaves) if size is None else size
        cp = Checkpoint(origin or self.name, size, self.root(size))
        return sign_checkpoint(cp, self.name, key or self.key)

    def receipt(self, leaf: bytes, last_size: int = 0, *, sign_with: SigningKey | None = None,
                **override) -> entry.Receipt:
        """A signed receipt for `leaf` (appended if new), proven from `last_size`."""
        index = self.append(leaf)
        size = len(self.leaves)
        fields = dict(
            entry_hash=entry.entry_hash(leaf), status=entry.STATUS_ACCEPTED, reason="",
            leaf_index=index, checkpoint=self.note(size),
            inclusion=tuple(merkle.inclusion_proof(index, size, self._read)),
            consistency=tuple(merkle.consistency_proof(last_size, size, self._read))
            if 0 < last_size < size else (), from_size=last_size)
        fields.update(override)
        return entry.Receipt(**fields).signed(sign_with or self.key)

    def reject(self, entry_hash: bytes, reason: str, *,
               sign_with: SigningKey | None = None) -> entry.Receipt:
        """A rejection signed by this log's key (or `sign_with`)."""
        return entry.Receipt(entry_hash, entry.STATUS_REJECTED, reason).signed(sign_with or self.key)


def make_event_session(kiosk_key: SigningKey, kiosk: str = "kiosk-1") -> list[tuple[bytes, bytes, None]]:
    """Two linked kiosk-event entries (no presentation needed): the gateway accepts them
    without a patient pass, so transport tests need no issuer."""
    leaf1, body1 = make_leaf(kiosk_key, kiosk=kiosk, type="kiosk-event")
    leaf2, body2 = make_leaf(kiosk_key, kiosk=kiosk, type="kiosk-event",
                             refs=(entry.entry_hash(leaf1),))
    return [(leaf1, body1, None), (leaf2, body2, None)]


def ledger_hashes(path) -> list[bytes]:
    """Entry hashes in a SQLite log, in index order (a fresh read-only look)."""
    from kiosk.ledger.sqlite_store import SqliteLogStore

    store = SqliteLogStore(path)
    try:
        return [entry.entry_hash(leaf) for _, leaf in store.iter_leaves()]
    finally:
        store.close()
