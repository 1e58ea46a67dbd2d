"""The gateway collects the kiosks' cosignatures and serves its checkpoint with them.

Each kiosk publishes its latest cosigned checkpoint (C2SP tlog-cosignature) retained on its
witness topic. The gateway checks each against the log key, the kiosk's registered keys and
its own store, keeps the newest per kiosk, and publishes retained on `ledger/witnessed` the
largest checkpoint any kiosk cosigned, with every cosignature on that same checkpoint. A
cosigned checkpoint the store contradicts (another root at that size, or a size the store
does not reach) is logged as an error and counted: the store was rolled back or rewritten.
"""
from __future__ import annotations

import collections
import logging
import threading

from nacl.signing import VerifyKey

from kiosk.errors import KioskError
from kiosk.gateway.registry import KioskRegistry
from kiosk.ledger.checkpoint import NoteVerifier
from kiosk.ledger.store import LogStore
from kiosk.ledger.witness import Cosigner, Witnessed, merge, open_witnessed, witness_name

log = logging.getLogger(__name__)


class WitnessCollector:
    """Cosigned checkpoints by kiosk; `add` returns the note to serve when it changed."""

    def __init__(self, log_name: str, log_key: VerifyKey, registry: KioskRegistry,
                 store: LogStore) -> None:
        self.log_name, self.registry, self.store = log_name, registry, store
        self.verifier = NoteVerifier(log_name, log_key)
        self._latest: dict[str, Witnessed] = {}
        self._served: bytes | None = None
        self.counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def add(self, kiosk: str, note: bytes) -> bytes | None:
        """Take one kiosk's cosigned checkpoint; the merged note to publish, or None."""
        keys = self.registry.keys_for(kiosk)
        name = witness_name(self.log_name, kiosk)
        try:
            got = open_witnessed(note, self.verifier, [Cosigner(name, k) for k in keys.values()],
                                 self.log_name)
        except KioskError as e:
            got = []
            log.warning("witness %s: cosigned checkpoint refused (%s)", kiosk, e.reason)
        if not got:
            self.counts["witness-refused"] += 1
            return None
        w = got[0]
        size = w.checkpoint.size
        if size > self.store.size() or self.store.root_hash(size) != w.checkpoint.root_hash:
            self.counts["witness-contradicts-store"] += 1
            log.error("witness %s cosigned a checkpoint of size %d that this store contradicts "
                      "(rolled back or rewritten?)", kiosk, size)
            return None
        with self._lock:
            old = self._latest.get(kiosk)
            if old is not None and old.checkpoint.size > size:
                return None
            self._latest[kiosk] = w
            self.counts["witness-accepted"] += 1
            return self._merged()

    def _merged(self) -> bytes | None:
        top = max(self._latest.values(), key=lambda w: w.checkpoint.size)
        note = top.note
        for w in self._latest.values():
            if w is not top and w.checkpoint == top.checkpoint:
                note = merge(note, w.note)
        if note == self._served:
            return None
        self._served = note
        return note

    def witnesses(self) -> dict[str, int]:
        """kiosk -> size of its newest accepted cosigned checkpoint."""
        with self._lock:
            return {k: w.checkpoint.size for k, w in self._latest.items()}
