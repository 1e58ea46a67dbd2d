"""RFC 9162 §2.1 Merkle tree hashing, proof generation and proof verification.

Pure functions over plain bytes. Proof *generation* never walks leaves: it plans which
complete subtrees it needs (a handful of `(level, index)` node ids, O(log n)) and asks a
small `NodeReader` for their hashes in one call, so a store answers a proof with one query
(the transparency-dev/merkle "hash reader" idea).

Node ids: `(level, index)` names the complete (perfect) subtree of 2**level leaves that
starts at leaf `index * 2**level`. Level 0 nodes are leaf hashes.

Verification follows transparency-dev/merkle `proof/verify.go`, which passes the published
vectors: hashes must be 32 bytes, indices and sizes are unsigned 64-bit integers.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from kiosk.errors import VerificationError

HASH_SIZE = 32
MAX_UINT64 = (1 << 64) - 1
# RFC 9162 §2.1.1: the hash of an empty list is the hash of an empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeID = tuple[int, int]
NodeReader = Callable[[Sequence[NodeID]], Sequence[bytes]]
"""Returns the hashes of the given complete subtrees, in the order asked."""


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: MTH({d(0)}) = SHA-256(0x00 || d(0))."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: interior node = SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n > 1), RFC 9162 §2.1.1's k."""
    return 1 << ((n - 1).bit_length() - 1)


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes (RFC 9162 §2.1.1), computed bottom-up in O(n)."""
    if not hashes:
        return EMPTY_ROOT
    frontier = Frontier()
    for h in hashes:
        frontier.append(h)
    return frontier.root()


# ---------------------------------------------------------------------------- planning

def range_nodes(begin: int, end: int) -> list[NodeID]:
    """The complete subtrees whose right-to-left fold is MTH(D[begin:end]).

    Valid for the ranges RFC 9162 recursion produces: `begin` is a multiple of the
    smallest power of two >= end - begin. The nodes come largest (leftmost) first.
    """
    size = end - begin
    if size <= 0:
        raise ValueError(f"empty range [{begin}, {end})")
    if begin % (1 << (size - 1).bit_length()):
        raise ValueError(f"range [{begin}, {end}) is not aligned as in an RFC 9162 tree")
    nodes: list[NodeID] = []
    while size:
        level = size.bit_length() - 1
        nodes.append((level, begin >> level))
        begin += 1 << level
        size -= 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """Fold the hashes of `range_nodes()` right to left into the range's MTH."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_plan(index: int, size: int) -> list[list[NodeID]]:
    """Node ids for each element of PATH(index, D[0:size]) (RFC 9162 §2.1.3.1), leaf first."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not below tree size {size}")
    out: list[list[NodeID]] = []
    start, m, n = 0, index, size
    while n > 1:  # walk down from the root; elements are emitted root-side first
        k = _split(n)
        if m < k:
            out.append(range_nodes(start + k, start + n))
            n = k
        else:
            out.append(range_nodes(start, start + k))
            start, m, n = start + k, m - k, n - k
    out.reverse()
    return out


def consistency_plan(size1: int, size2: int) -> list[list[NodeID]]:
    """Node ids for each element of PROOF(size1, D[0:size2]) (RFC 9162 §2.1.4.1)."""
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to {size2}")
    out: list[list[NodeID]] = []
    start, m, n, b = 0, size1, size2, True
    while m != n:  # SUBPROOF(m, D[start:start+n], b), emitted root-side first
        k = _split(n)
        if m <= k:
            out.append(range_nodes(start + k, start + n))
            n = k
        else:
            out.append(range_nodes(start, start + k))
            start, m, n, b = start + k, m - k, n - k, False
    if not b:
        out.append(range_nodes(start, start + n))
    out.reverse()
    return out


def _resolve(plan: list[list[NodeID]], read: NodeReader) -> list[bytes]:
    wanted = sorted({node for element in plan for node in element})
    got = dict(zip(wanted, read(wanted), strict=False))
    if len(got) != len(wanted):
        raise ValueError("node reader returned the wrong number of hashes")
    return [fold([got[node] for node in element]) for element in plan]


def inclusion_proof(index: int, size: int, read: NodeReader) -> list[bytes]:
    """The inclusion proof of leaf `index` in the tree of `size`, from O(log n) node reads."""
    return _resolve(inclusion_plan(index, size), read)


def inclusion_proofs(indices: Sequence[int], size: int, read: NodeReader) -> list[list[bytes]]:
    """`inclusion_proof` of several leaves in one tree, from ONE call to `read`."""
    plans = [inclusion_plan(i, size) for i in indices]
    wanted = sorted({node for plan in plans for element in plan for node in element})
    got = dict(zip(wanted, read(wanted), strict=False))
    if len(got) != len(wanted):
        raise ValueError("node reader returned the wrong number of hashes")
    return [[fold([got[node] for node in element]) for element in plan] for plan in plans]


def consistency_proof(size1: int, size2: int, read: NodeReader) -> list[bytes]:
    """The consistency proof between tree sizes `size1` <= `size2`, from O(log n) reads."""
    if size1 == size2:
        return []
    return _resolve(consistency_plan(size1, size2), read)


def root_hash(size: int, read: NodeReader) -> bytes:
    """MTH(D[0:size]) from at most log2(size) + 1 node reads."""
    if size == 0:
        return EMPTY_ROOT
    nodes = range_nodes(0, size)
    return fold(list(read(nodes)))


# ---------------------------------------------------------------------------- appending

class Frontier:
    """The right edge of the tree (a compact range): one complete subtree per set bit of size.

    Appending a leaf needs no reads: it merges equal-sized subtrees like a binary counter
    and reports every complete node it created, so a store can persist them.
    """

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != bin(size).count("1"):
            raise ValueError("frontier does not match tree size")
        self.size = size
        self.hashes = list(hashes)  # largest subtree first

    @classmethod
    def from_bytes(cls, size: int, blob: bytes) -> Frontier:
        """Decode `to_bytes()` output."""
        if len(blob) % HASH_SIZE:
            raise ValueError("frontier blob has a partial hash")
        return cls(size, [blob[i:i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)])

    def to_bytes(self) -> bytes:
        """The frontier hashes concatenated, largest subtree first."""
        return b"".join(self.hashes)

    def append(self, leaf_h: bytes) -> list[tuple[NodeID, bytes]]:
        """Add one leaf hash; return the new complete nodes `((level, index), hash)`."""
        index, level, h = self.size, 0, leaf_h
        created = [((0, index), h)]
        while (self.size >> level) & 1:  # a complete sibling of this level waits on the left
            h = node_hash(self.hashes.pop(), h)
            level += 1
            created.append(((level, index >> level), h))
        self.hashes.append(h)
        self.size += 1
        return created

    def root(self) -> bytes:
        """MTH of the whole tree: fold the frontier right to left."""
        return fold(self.hashes) if self.hashes else EMPTY_ROOT


# ---------------------------------------------------------------------------- verifying

def _check_u64(name: str, value: int) -> None:
    if not isinstance(value, int) or not 0 <= value <= MAX_UINT64:
        raise VerificationError(f"{name} {value!r} is not an unsigned 64-bit integer")


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise VerificationError(f"{name} is {len(value)} bytes, want {HASH_SIZE}")


def _inner_border(index: int, size: int) -> tuple[int, int]:
    """Split a proof for `index` in `size` where the paths to index and size-1 diverge."""
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if not (index >> i) & 1 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def root_from_inclusion_proof(leaf_h: bytes, index: int, size: int,
                              proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof implies (RFC 9162 §2.1.3.2); raise if it is malformed."""
    _check_u64("index", index)
    _check_u64("size", size)
    if index >= size:
        raise VerificationError(f"index {index} is beyond tree size {size}")
    _check_hash("leaf hash", leaf_h)
    inner, border = _inner_border(index, size)
    if len(proof) != inner + border:
        raise VerificationError(f"inclusion proof has {len(proof)} hashes, want {inner + border}")
    for i, h in enumerate(proof):
        _check_hash(f"inclusion proof[{i}]", h)
    res = _chain_inner(leaf_h, proof[:inner], index)
    return _chain_border_right(res, proof[inner:])


def verify_inclusion(leaf_h: bytes, index: int, size: int, proof: Sequence[bytes],
                     root: bytes) -> None:
    """Check that `leaf_h` sits at `index` in the tree of `size` with `root`.

    Raises VerificationError naming what failed; returns None on success.
    """
    calculated = root_from_inclusion_proof(leaf_h, index, size, proof)
    _check_hash("root", root)
    if calculated != root:
        raise VerificationError(
            f"inclusion proof for index {index} in size {size} does not lead to the root")


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes,
                       proof: Sequence[bytes]) -> None:
    """Check that the tree of `size2` with `root2` extends the tree of `size1` with `root1`.

    RFC 9162 §2.1.4.2, as transparency-dev/merkle does it: with equal sizes only an empty
    proof and equal roots are required (its published vector with 12-byte roots passes).
    Raises VerificationError naming what failed.
    """
    _check_u64("size1", size1)
    _check_u64("size2", size2)
    if size2 < size1:
        raise VerificationError(f"size2 {size2} is smaller than size1 {size1}")
    if size1 == 0:
        raise VerificationError("a consistency proof from the empty tree is meaningless")
    if size1 == size2:
        if proof:
            raise VerificationError("sizes are equal but the consistency proof is not empty")
        if root1 != root2:
            raise VerificationError(f"trees of equal size {size1} have different roots")
        return
    if not proof:
        raise VerificationError("consistency proof is empty")
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    for i, h in enumerate(proof):
        _check_hash(f"consistency proof[{i}]", h)

    inner, border = _inner_border(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # trailing zeros of size1
    inner -= shift
    # The proof starts with the hash of the size-2**shift subtree, unless size1 is that subtree.
    if size1 == 1 << shift:
        seed, start = root1, 0
    else:
        seed, start = proof[0], 1
    if len(proof) != start + inner + border:
        raise VerificationError(
            f"consistency proof has {len(proof)} hashes, want {start + inner + border}")
    rest = proof[start:]
    mask = (size1 - 1) >> shift
    hash1 = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    if hash1 != root1:
        raise VerificationError(f"consistency proof does not lead to root1 (size {size1})")
    hash2 = _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    if hash2 != root2:
        raise VerificationError(f"consistency proof does not lead to root2 (size {size2})")
