"""RFC 9162 §2.1 Merkle tree hashes, inclusion and consistency proofs (SHA-256).

Leaves hash as ``SHA-256(0x00 ‖ data)``, interior nodes as ``SHA-256(0x01 ‖ left ‖ right)``; the empty
tree's hash is ``SHA-256("")``. A tree of ``n`` leaves splits at ``k``, the largest power of two below
``n`` (not the midpoint), so roots and proofs agree with every RFC 6962/9162 log (Certificate
Transparency, Rekor, the Go checksum database).

:class:`MerkleTree` keeps the hash of every complete, aligned power-of-two subtree as leaves are
appended, so a root or a proof costs O(log² n) hashes instead of O(n). The list functions
(:func:`root_hash`, :func:`inclusion_proof`, :func:`consistency_proof`) build such a tree over the list
given; the verifiers follow the RFC's algorithms (§2.1.3.2 and §2.1.4.2) literally.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Final

from ccdeploy.errors import AuditChainBroken

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """The hash of a leaf: ``SHA-256(0x00 ‖ data)``."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: ``SHA-256(0x01 ‖ left ‖ right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only Merkle tree over leaf hashes, caching complete subtree hashes.

    ``_levels[h][i]`` is the hash of leaves ``[i·2^h, (i+1)·2^h)``. Not thread-safe by itself: callers that
    share one (see :class:`~ccdeploy.transparency.log.TransparencyLog`) hold a lock.
    """

    def __init__(self, leaf_hashes: Sequence[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        """The number of leaves."""
        return len(self._levels[0])

    def leaf(self, index: int) -> bytes:
        """The hash of leaf ``index``.

        Raises:
            ValueError: ``index`` is outside the tree.
        """
        if not 0 <= index < self.size:
            raise ValueError(f"leaf index {index} outside a tree of {self.size}")
        return self._levels[0][index]

    def append(self, leaf: bytes) -> None:
        """Append one leaf hash.

        Raises:
            ValueError: not a 32-byte hash.
        """
        if len(leaf) != HASH_SIZE:
            raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, not {len(leaf)}")
        self._levels[0].append(leaf)
        index, height = self.size - 1, 0
        while index & 1:
            level = self._levels[height]
            if height + 1 == len(self._levels):
                self._levels.append([])
            self._levels[height + 1].append(node_hash(level[index - 1], level[index]))
            index >>= 1
            height += 1

    def extend(self, leaf_hashes: Sequence[bytes]) -> None:
        """Append leaf hashes in order."""
        for leaf in leaf_hashes:
            self.append(leaf)

    def _subtree(self, start: int, end: int) -> bytes:
        """MTH of leaves ``[start, end)``; ``0 <= start < end <= size``."""
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            return self._levels[n.bit_length() - 1][start // n]
        k = _split(n)
        return node_hash(self._subtree(start, start + k), self._subtree(start + k, end))

    def _check_size(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} outside 0..{self.size}")
        return size

    def root(self, size: int | None = None) -> bytes:
        """The root hash of the first ``size`` leaves (default: all).

        Raises:
            ValueError: ``size`` is larger than the tree or negative.
        """
        size = self._check_size(size)
        return EMPTY_ROOT if size == 0 else self._subtree(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.3.1 ``PATH(index, D[size])``: the audit path of leaf ``index`` in the first ``size`` leaves.

        Raises:
            ValueError: ``size`` out of range, or ``index`` not below ``size``.
        """
        size = self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} outside a tree of {size}")
        proof: list[bytes] = []
        start, end = 0, size
        # Walk down from the root; each level contributes its sibling subtree. Collected root-first, so reverse.
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                proof.append(self._subtree(start + k, end))
                end = start + k
            else:
                proof.append(self._subtree(start, start + k))
                start += k
        proof.reverse()
        return proof

    def consistency_proof(self, old_size: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.4.1 ``PROOF(old_size, D[size])``; empty when ``old_size`` is 0 or equals ``size``.

        Raises:
            ValueError: ``size`` out of range, or ``old_size`` not in ``0..size``.
        """
        size = self._check_size(size)
        if not 0 <= old_size <= size:
            raise ValueError(f"old size {old_size} outside 0..{size}")
        if old_size in (0, size):
            return []
        proof: list[bytes] = []
        start, end, complete = 0, size, True
        # SUBPROOF(m, D[start:end], complete) unrolled; m = old_size - start.
        while old_size - start != end - start:
            k = _split(end - start)
            if old_size - start <= k:
                proof.append(self._subtree(start + k, end))
                end = start + k
            else:
                proof.append(self._subtree(start, start + k))
                start += k
                complete = False
        if not complete:
            proof.append(self._subtree(start, end))
        proof.reverse()
        return proof


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 ``MTH(D[n])`` of a list of leaf hashes (``SHA-256("")`` for none)."""
    return MerkleTree(leaf_hashes).root()


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The inclusion proof of leaf ``index`` in the tree of ``leaf_hashes``.

    Raises:
        ValueError: ``index`` outside the list.
    """
    return MerkleTree(leaf_hashes).inclusion_proof(index)


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The consistency proof from the first ``old_size`` leaves to all of ``leaf_hashes``.

    Raises:
        ValueError: ``old_size`` outside ``0..len(leaf_hashes)``.
    """
    return MerkleTree(leaf_hashes).consistency_proof(old_size)


def _check_hashes(proof: Sequence[bytes], *named: tuple[str, bytes]) -> None:
    for name, value in named:
        if len(value) != HASH_SIZE:
            raise AuditChainBroken(f"{name} is {len(value)} bytes, not a {HASH_SIZE}-byte hash")
    if any(len(p) != HASH_SIZE for p in proof):
        raise AuditChainBroken(f"a proof element is not a {HASH_SIZE}-byte hash")


def root_from_inclusion_proof(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes]) -> bytes:
    """The root an inclusion proof leads to (RFC 9162 §2.1.3.2 without the final comparison).

    Raises:
        AuditChainBroken: the index is outside the tree, or the proof has the wrong length.
    """
    _check_hashes(proof, ("the leaf hash", leaf))
    if not 0 <= index < tree_size:
        raise AuditChainBroken(f"leaf index {index} is outside a tree of {tree_size}")
    fn, sn, r = index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            raise AuditChainBroken("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise AuditChainBroken("the inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Verify that ``leaf`` is leaf ``index`` of the tree of ``tree_size`` with root ``root`` (RFC 9162 §2.1.3.2).

    Raises:
        AuditChainBroken: the proof does not verify.
    """
    _check_hashes(proof, ("the root hash", root))
    if not hmac.compare_digest(root_from_inclusion_proof(leaf, index, tree_size, proof), root):
        raise AuditChainBroken(
            f"the inclusion proof of leaf {index} does not lead to the root of tree size {tree_size}"
        )


def verify_consistency(old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes) -> None:
    """Verify that the tree of ``new_size`` extends the tree of ``old_size`` (RFC 9162 §2.1.4.2).

    ``old_size == new_size`` needs an empty proof and equal roots; ``old_size == 0`` an empty proof.

    Raises:
        AuditChainBroken: the proof does not verify (including ``old_size > new_size``).
    """
    _check_hashes(proof, ("the old root hash", old_root), ("the new root hash", new_root))
    if not 0 <= old_size <= new_size:
        raise AuditChainBroken(f"a tree of {new_size} cannot extend a tree of {old_size}")
    if old_size == new_size:
        if proof or not hmac.compare_digest(old_root, new_root):
            raise AuditChainBroken(f"two trees of size {old_size} differ")
        return
    if old_size == 0:
        if proof:
            raise AuditChainBroken("a consistency proof from the empty tree must be empty")
        return
    if not proof:
        raise AuditChainBroken("the consistency proof is empty")
    fr, sr, sn = _consistency_roots(old_size, new_size, proof, old_root)
    if sn != 0 or not hmac.compare_digest(fr, old_root) or not hmac.compare_digest(sr, new_root):
        raise AuditChainBroken(f"the consistency proof from tree size {old_size} to {new_size} does not verify")


def _consistency_roots(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes
) -> tuple[bytes, bytes, int]:
    """Steps 2-6 of RFC 9162 §2.1.4.2 (``0 < old_size < new_size``, non-empty proof): ``(fr, sr, sn)``."""
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise AuditChainBroken("the consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not (fn & 1 or fn == 0):
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr, sr, sn
