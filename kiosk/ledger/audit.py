"""Audits over a log store: re-derive the tree, prove entries, make checkpoints.

`verify_log` trusts nothing stored but the leaf bytes: it recomputes every entry hash, every
complete subtree (RFC 9162 §2.1.1), the state row and the root the last signed checkpoint
committed to, and names each disagreement. `prove_entry` and `iter_entries` are the building
blocks later audit commands (history, consent-check) use.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import nacl.signing

from kiosk.errors import FormatError, StoreError, VerificationError
from kiosk.ledger import merkle
from kiosk.ledger.checkpoint import Checkpoint, NoteVerifier, open_checkpoint, parse_note, sign_checkpoint
from kiosk.ledger.store import LogStore

MAX_FINDINGS_PER_KIND = 20


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a log. `kind` is stable (machine-readable); `detail` is for people."""

    kind: str  # leaf-changed | gap | leaf-moved | node-mismatch | node-missing | node-extra |
    #            state-mismatch | checkpoint-signature | checkpoint-size | checkpoint-root
    index: int | None
    detail: str


@dataclass
class AuditReport:
    """What `verify_log` found. `ok` only if there are no findings."""

    entries: int = 0
    state_size: int = 0
    root: bytes = merkle.EMPTY_ROOT
    checkpoint: Checkpoint | None = None
    checkpoint_verified: bool = False
    findings: list[Finding] = field(default_factory=list)
    suppressed: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings

    def add(self, kind: str, index: int | None, detail: str) -> None:
        """Record a finding; after MAX_FINDINGS_PER_KIND of a kind, only count them."""
        if sum(1 for f in self.findings if f.kind == kind) >= MAX_FINDINGS_PER_KIND:
            self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
            return
        self.findings.append(Finding(kind, index, detail))


def _get(level: bytearray, i: int) -> bytes:
    return bytes(level[i * 32:(i + 1) * 32])


def _root_at(levels: list[bytearray], size: int) -> bytes:
    """MTH(D[0:size]) from recomputed levels (O(log n))."""
    if size == 0:
        return merkle.EMPTY_ROOT
    return merkle.fold([_get(levels[lv], i) for lv, i in merkle.range_nodes(0, size)])


def verify_log(store: LogStore, verifier: NoteVerifier | None = None,
               origin: str | None = None) -> AuditReport:
    """Recompute the whole tree from the stored leaves and compare everything stored with it.

    Without `verifier` the latest checkpoint's body is still compared with the tree, but its
    signature is not checked (`checkpoint_verified` stays False).
    """
    report = AuditReport()
    state_size, frontier_blob = store.tree_state()
    report.state_size = state_size

    # 1. the leaves: entry hashes and gaps; level 0 = recomputed leaf hashes
    level0 = bytearray()
    gaps: set[int] = set()
    expected = 0
    for e in store.iter_entries():
        if e.index != expected:
            report.add("gap", expected, f"leaves {expected}..{e.index - 1} are missing")
            level0 += bytes(32) * (e.index - expected)  # placeholders keep positions aligned
            gaps.update(range(expected, e.index))
            expected = e.index
        if hashlib.sha256(e.leaf).digest() != e.entry_hash:
            report.add("leaf-changed", e.index,
                       f"leaf {e.index} changed: its bytes do not match its stored entry hash")
        level0 += merkle.leaf_hash(e.leaf)
        expected += 1
    report.entries = expected
    if expected < state_size:
        report.add("gap", expected, f"leaves {expected}..{state_size - 1} are missing "
                                    f"(tree state says {state_size})")
    elif expected > state_size:
        report.add("state-mismatch", None,
                   f"the log holds {expected} leaves but its tree state says {state_size}")

    # 2. every stored complete subtree against the recomputed one, level by level
    levels = [level0]
    level, current = 0, level0
    while len(current) >= 32:
        count = len(current) // 32
        seen = 0
        for idx, h in store.iter_nodes(level):
            if idx >= count:
                report.add("node-extra", idx, f"stored node (level {level}, index {idx}) is "
                                              "beyond the tree")
                continue
            seen += 1
            if level == 0 and idx in gaps:
                # a missing leaf: use the tree's own leaf hash above it, so only the gap is named
                current[idx * 32:(idx + 1) * 32] = h
                continue
            if h != _get(current, idx):
                if level == 0:
                    report.add("leaf-moved", idx, f"leaf {idx} is not the leaf the tree "
                                                  "committed to there (moved or replaced)")
                else:
                    report.add("node-mismatch", idx, f"stored node (level {level}, index {idx}) "
                                                     "does not match the leaves under it")
        if seen < count:
            report.add("node-missing", None, f"{count - seen} stored nodes of level {level} "
                                             "are missing")
        nxt = bytearray()
        for i in range(count // 2):
            nxt += merkle.node_hash(_get(current, 2 * i), _get(current, 2 * i + 1))
        level, current = level + 1, nxt
        if current:
            levels.append(current)

    # 3. the state row's right edge
    report.root = _root_at(levels, expected)
    if expected == state_size:
        want = b"".join(_get(levels[lv], i) for lv, i in merkle.range_nodes(0, state_size)) \
            if state_size else b""
        if want != frontier_blob:
            report.add("state-mismatch", None, "the stored tree state does not match the leaves")

    # 4. the last signed checkpoint
    latest = store.latest_checkpoint()
    if latest is not None:
        _check_checkpoint(report, levels, latest, verifier, origin)
    return report


def _check_checkpoint(report: AuditReport, levels: list[bytearray], latest: tuple[int, bytes],
                      verifier: NoteVerifier | None, origin: str | None) -> None:
    stored_size, note = latest
    try:
        if verifier is not None:
            cp = open_checkpoint(note, verifier, origin)
            report.checkpoint_verified = True
        else:
            cp = Checkpoint.from_text(parse_note(note)[0])
    except (FormatError, VerificationError) as e:
        report.add("checkpoint-signature", stored_size, f"latest checkpoint: {e.message}")
        return
    report.checkpoint = cp
    if cp.size != stored_size:
        report.add("checkpoint-size", cp.size,
                   f"checkpoint says size {cp.size} but is stored as size {stored_size}")
    if cp.size > report.entries:
        report.add("checkpoint-size", cp.size, f"checkpoint commits to {cp.size} leaves but "
                                               f"the log holds {report.entries} (rolled back?)")
    elif _root_at(levels, cp.size) != cp.root_hash:
        report.add("checkpoint-root", cp.size, f"the leaves do not give the root the checkpoint "
                                               f"signed for size {cp.size}")


# ---------------------------------------------------------------------------- building blocks

def iter_entries(store: LogStore, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """(index, leaf bytes) in log order: what `history` and `consent-check` scan."""
    return store.iter_leaves(start)


@dataclass(frozen=True)
class EntryProof:
    """Everything a third party needs to check one entry against a tree (and an older tree)."""

    index: int
    size: int
    leaf_hash: bytes
    root: bytes
    inclusion: list[bytes]
    from_size: int | None = None
    from_root: bytes | None = None
    consistency: list[bytes] | None = None

    def verify(self) -> None:
        """Check the proofs; VerificationError if they do not hold."""
        merkle.verify_inclusion(self.leaf_hash, self.index, self.size, self.inclusion, self.root)
        if self.from_size is not None and self.from_root is not None:
            merkle.verify_consistency(self.from_size, self.size, self.from_root, self.root,
                                      self.consistency or [])


def prove_entry(store: LogStore, index: int, size: int | None = None,
                from_size: int | None = None) -> EntryProof:
    """The inclusion proof of entry `index` in tree `size` (default: now), and optionally the
    consistency proof from an older tree `from_size`."""
    size = store.size() if size is None else size
    leaf = store.get_leaf(index)
    proof = EntryProof(index, size, merkle.leaf_hash(leaf), store.root_hash(size),
                       store.inclusion_proof(index, size))
    if from_size is not None:
        if not 0 < from_size <= size:
            raise StoreError(f"no consistency proof from size {from_size} to {size}")
        proof = EntryProof(**{**proof.__dict__, "from_size": from_size,
                              "from_root": store.root_hash(from_size),
                              "consistency": store.consistency_proof(from_size, size)})
    return proof


def make_checkpoint(store: LogStore, origin: str, name: str,
                    signing_key: nacl.signing.SigningKey) -> tuple[Checkpoint, bytes]:
    """Sign a checkpoint for the log's current size and save it; return it and its note."""
    size, _ = store.tree_state()
    cp = Checkpoint(origin, size, store.root_hash(size))
    note = sign_checkpoint(cp, name, signing_key)
    store.save_checkpoint(size, note)
    return cp, note
