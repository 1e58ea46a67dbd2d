"""Audits over a log store: re-derive the tree, prove entries, make checkpoints.

`verify_log` trusts nothing stored but the leaf bytes: it recomputes every entry hash, every
complete subtree (RFC 9162 §2.1.1), the state row and the root every stored signed checkpoint
committed to, and names each disagreement. With `check_leaves` it also decodes every leaf
(one canonical encoding) and checks its kiosk signature against every key the registry ever
held for that kiosk, and checks every stored body against the leaf's `body_hash` (an erased
body is counted as erased, never as ok). Leaves past the newest stored checkpoint are
*uncovered*: nothing stored can tell a rewritten tail from an honest one, so `witnessed`
checkpoints (cosigned by kiosks, held outside the store) are compared with the tree too: a
store smaller than, or different from, any of them has been rolled back or rewritten.
`prove_entry` and `iter_entries` are the building blocks of `history` and `consent-check`.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import nacl.signing

from kiosk.errors import FormatError, KioskError, StoreError, VerificationError
from kiosk.ledger import merkle
from kiosk.ledger.checkpoint import Checkpoint, NoteVerifier, open_checkpoint, parse_note, sign_checkpoint
from kiosk.ledger.store import LogStore
from kiosk.ledger.witness import Witnessed
from kiosk.protocol import cose, entry

# kiosk id -> every key (by COSE kid) the registry ever held for it
KioskKeys = Callable[[str], "Mapping[bytes, nacl.signing.VerifyKey] | None"]

MAX_FINDINGS_PER_KIND = 20


@dataclass(frozen=True)
class Finding:
    """One thing wrong with a log. `kind` is stable (machine-readable); `detail` is for people."""

    kind: str  # leaf-changed | gap | leaf-moved | node-mismatch | node-missing | node-extra |
    #            state-mismatch | checkpoint-signature | checkpoint-size | checkpoint-root |
    #            leaf-malformed | leaf-unknown-kiosk | leaf-signature | body-mismatch |
    #            witness-ahead | witness-inconsistent
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
    checkpoints_checked: int = 0
    leaves_checked: bool = False      # canonical encoding decoded for every leaf
    signatures_checked: bool = False  # and every kiosk signature checked against the registry
    bodies_ok: int = 0
    bodies_erased: list[int] = field(default_factory=list)  # leaf indexes (first 1,000)
    erased_count: int = 0
    covered: int = 0                  # leaves under the newest valid stored checkpoint
    witnesses: list[dict] = field(default_factory=list)     # what each witnessed checkpoint said
    findings: list[Finding] = field(default_factory=list)
    suppressed: dict[str, int] = field(default_factory=dict)

    @property
    def uncovered(self) -> tuple[int, int] | None:
        """(first, last) leaf index no stored checkpoint commits to, or None."""
        return (self.covered, self.entries - 1) if self.entries > self.covered else None

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
               origin: str | None = None, *, check_leaves: bool = False,
               kiosk_keys: KioskKeys | None = None,
               witnessed: Sequence[Witnessed] = ()) -> AuditReport:
    """Recompute the whole tree from the stored leaves and compare everything stored with it.

    Without `verifier` the checkpoints' bodies are still compared with the tree, but their
    signatures are not checked (`checkpoint_verified` stays False). `check_leaves` decodes
    every leaf and checks its body; `kiosk_keys(kiosk id)` (every key the registry ever held
    for it) also checks its signature. `witnessed` are verified cosigned checkpoints held
    outside the store.
    """
    report = AuditReport()
    report.leaves_checked = check_leaves
    report.signatures_checked = check_leaves and kiosk_keys is not None
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
        if check_leaves:
            _check_leaf(report, store, e.index, e.leaf, kiosk_keys)
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

    # 4. every stored signed checkpoint: each must be a view of this one tree, so each is
    # consistent with the next (two that differ from the tree cannot both be honest)
    verified_all = True
    for stored in store.iter_checkpoints():
        report.checkpoints_checked += 1
        cp = _check_checkpoint(report, levels, stored, verifier, origin)
        if cp is None:
            verified_all = False
            continue
        report.checkpoint = cp if report.checkpoint is None or cp.size >= report.checkpoint.size \
            else report.checkpoint
    report.checkpoint_verified = verifier is not None and verified_all and \
        report.checkpoint is not None

    # 5. checkpoints the witnesses hold: the store must contain and agree with each
    for w in witnessed:
        _check_witnessed(report, levels, w)
    return report


def _check_leaf(report: AuditReport, store: LogStore, index: int, leaf: bytes,
                kiosk_keys: KioskKeys | None) -> None:
    try:
        env, _ = entry.decode_leaf(leaf)
    except FormatError as e:
        report.add("leaf-malformed", index, f"leaf {index} is not a canonical ledger entry "
                                            f"({e.message})")
        return
    if kiosk_keys is not None:
        keys = kiosk_keys(env.kiosk)
        if not keys:
            report.add("leaf-unknown-kiosk", index,
                       f"leaf {index} names kiosk {env.kiosk}, which the registry never held")
        elif not _signed_by(leaf, keys):
            report.add("leaf-signature", index, f"leaf {index} is not signed by any key kiosk "
                                                f"{env.kiosk} ever had")
    body = store.get_body(env.body_hash)
    if body is None:
        report.erased_count += 1
        if len(report.bodies_erased) < 1000:
            report.bodies_erased.append(index)
        return
    try:
        ok = entry.body_hash_of(body) == env.body_hash
    except FormatError:
        ok = False
    if ok:
        report.bodies_ok += 1
    else:
        report.add("body-mismatch", index, f"the body stored for leaf {index} does not match "
                                           "the leaf's body_hash (altered or swapped)")


def _signed_by(leaf: bytes, keys: Mapping[bytes, nacl.signing.VerifyKey]) -> bool:
    try:
        cose.verify_sign1(leaf, keys, "leaf")
        return True
    except KioskError:
        return False


def _check_checkpoint(report: AuditReport, levels: list[bytearray], stored: tuple[int, bytes],
                      verifier: NoteVerifier | None, origin: str | None) -> Checkpoint | None:
    stored_size, note = stored
    try:
        if verifier is not None:
            cp = open_checkpoint(note, verifier, origin)
        else:
            cp = Checkpoint.from_text(parse_note(note)[0])
    except (FormatError, VerificationError) as e:
        report.add("checkpoint-signature", stored_size, f"checkpoint stored as size "
                                                        f"{stored_size}: {e.message}")
        return None
    if cp.size != stored_size:
        report.add("checkpoint-size", cp.size,
                   f"checkpoint says size {cp.size} but is stored as size {stored_size}")
        return None
    if cp.size > report.entries:
        report.add("checkpoint-size", cp.size, f"checkpoint commits to {cp.size} leaves but "
                                               f"the log holds {report.entries} (rolled back?)")
        return None
    if _root_at(levels, cp.size) != cp.root_hash:
        report.add("checkpoint-root", cp.size, f"the leaves do not give the root the checkpoint "
                                               f"signed for size {cp.size}")
        return None
    report.covered = max(report.covered, cp.size)
    return cp


def _check_witnessed(report: AuditReport, levels: list[bytearray], w: Witnessed) -> None:
    size = w.checkpoint.size
    state = "ok"
    if size > report.entries:
        state = "ahead"
        report.add("witness-ahead", size, f"witness {w.witness} cosigned size {size} but the "
                                          f"store holds {report.entries} leaves (rolled back)")
    elif _root_at(levels, size) != w.checkpoint.root_hash:
        state = "inconsistent"
        report.add("witness-inconsistent", size, f"witness {w.witness} cosigned a different "
                                                 f"tree of size {size} (history rewritten)")
    else:
        report.covered = max(report.covered, size)
    report.witnesses.append({"witness": w.witness, "size": size, "timestamp": w.timestamp,
                             "state": state})


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
