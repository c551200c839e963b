"""The broker's transparency log: leaf data from the store, Merkle proofs and signed checkpoints.

The leaves themselves live in the broker's database (written in the same transaction as the audit
entry they record); :class:`TransparencyLog` reads them through ``leaf_source(start)``, which returns
the leaf *data* from index ``start`` on, and keeps their hashes in an in-memory
:class:`~ccdeploy.transparency.merkle.MerkleTree`. The log is append-only, so only leaves after those
already held are ever fetched, and a proof costs O(log² n) hashes. One lock serializes refreshes and
proof building, which lets the broker share one log between request threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ccdeploy.errors import AuditChainBroken, BundleMalformed
from ccdeploy.transparency.checkpoint import Checkpoint, NoteSigner, NoteVerifier, open_checkpoint, sign_checkpoint
from ccdeploy.transparency.merkle import HASH_SIZE, MerkleTree, leaf_hash, verify_inclusion

__all__ = ["LogEntry", "TransparencyLog"]


def _hex_hash(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise BundleMalformed(f"log entry {what} is not a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise BundleMalformed(f"log entry {what} is not hex") from None
    if len(raw) != HASH_SIZE:
        raise BundleMalformed(f"log entry {what} is not a {HASH_SIZE}-byte hash")
    return raw


def _count(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BundleMalformed(f"log entry {what} is not a non-negative integer")
    return value


@dataclass(frozen=True)
class LogEntry:
    """One leaf's place in the log: its index, the tree it was proven in, the proof and the signed checkpoint."""

    index: int
    tree_size: int
    leaf_hash: bytes
    inclusion_proof: tuple[bytes, ...]
    checkpoint: str
    """The signed checkpoint note for ``tree_size``."""

    def to_dict(self) -> dict[str, Any]:
        """The ``ReleaseGrant.log_entry`` form: index, tree_size, leaf_hash, inclusion_proof (hex), checkpoint."""
        return {
            "index": self.index,
            "tree_size": self.tree_size,
            "leaf_hash": self.leaf_hash.hex(),
            "inclusion_proof": [p.hex() for p in self.inclusion_proof],
            "checkpoint": self.checkpoint,
        }

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> LogEntry:
        """Parse :meth:`to_dict`'s form.

        Raises:
            BundleMalformed: a member is missing or has the wrong type.
        """
        proof = document.get("inclusion_proof")
        checkpoint = document.get("checkpoint")
        if not isinstance(proof, list) or not isinstance(checkpoint, str):
            raise BundleMalformed("log entry needs an inclusion_proof list and a checkpoint note")
        return cls(
            _count(document.get("index"), "index"),
            _count(document.get("tree_size"), "tree_size"),
            _hex_hash(document.get("leaf_hash"), "leaf_hash"),
            tuple(_hex_hash(p, "proof element") for p in proof),
            checkpoint,
        )

    def verify(
        self, verifier_keys: Sequence[str | NoteVerifier], *, leaf_data: bytes | None = None, origin: str | None = None
    ) -> Checkpoint:
        """Verify the checkpoint signature and the leaf's inclusion in the checkpoint's tree.

        Args:
            verifier_keys: trusted log verifier keys.
            leaf_data: when given, its leaf hash must be :attr:`leaf_hash`.
            origin: when given, the checkpoint's origin must be this.

        Returns:
            The verified checkpoint.

        Raises:
            AuditChainBroken: bad checkpoint, a size that differs from :attr:`tree_size`, a proof that
                does not verify, or leaf data with another hash.
            TrustRootInvalid: a verifier key is malformed.
        """
        checkpoint = open_checkpoint(self.checkpoint, verifier_keys, origin=origin)
        if checkpoint.size != self.tree_size:
            raise AuditChainBroken(f"the checkpoint is for tree size {checkpoint.size}, the proof for {self.tree_size}")
        if leaf_data is not None and leaf_hash(leaf_data) != self.leaf_hash:
            raise AuditChainBroken("the leaf data does not hash to the logged leaf hash")
        verify_inclusion(self.leaf_hash, self.index, self.tree_size, self.inclusion_proof, checkpoint.root_hash)
        return checkpoint


class TransparencyLog:
    """A read side over the broker's log leaves: cached hashes, proofs and freshly signed checkpoints.

    Args:
        leaf_source: ``leaf_source(start)`` returns the leaf data from index ``start`` to the end, in order.
        signer: signs checkpoints; its name is usually ``origin``.
        origin: the checkpoint origin line (the log's identity, for example ``ccdeploy.example/broker-log``).
    """

    def __init__(self, leaf_source: Callable[[int], list[bytes]], signer: NoteSigner, origin: str) -> None:
        Checkpoint(origin, 0, b"\x00" * HASH_SIZE)  # validates the origin
        self._source = leaf_source
        self._signer = signer
        self._origin = origin
        self._tree = MerkleTree()
        self._lock = threading.Lock()
        self._signed: tuple[int, str] | None = None

    @property
    def origin(self) -> str:
        """The checkpoint origin line."""
        return self._origin

    def verifier_key(self) -> str:
        """The verifier key string auditors need for this log's checkpoints."""
        return self._signer.verifier_key()

    def _refresh_locked(self) -> int:
        self._tree.extend([leaf_hash(data) for data in self._source(self._tree.size)])
        return self._tree.size

    def refresh(self) -> int:
        """Fetch leaves appended since the last refresh; return the tree size."""
        with self._lock:
            return self._refresh_locked()

    @property
    def size(self) -> int:
        """The number of leaves held (without fetching)."""
        with self._lock:
            return self._tree.size

    def _checkpoint_locked(self) -> str:
        size = self._tree.size
        if self._signed is None or self._signed[0] != size:
            signed = sign_checkpoint(Checkpoint(self._origin, size, self._tree.root()), self._signer)
            self._signed = (size, signed)
        return self._signed[1]

    def checkpoint(self) -> str:
        """A signed checkpoint of the log as it is now (after fetching new leaves)."""
        with self._lock:
            self._refresh_locked()
            return self._checkpoint_locked()

    def entry(self, index: int) -> LogEntry:
        """Leaf ``index`` with its inclusion proof and a signed checkpoint of the same tree size.

        New leaves are fetched only when ``index`` is beyond those held; the proof is against the size held.

        Raises:
            ValueError: no leaf ``index`` exists, even after fetching.
        """
        with self._lock:
            if index >= self._tree.size:
                self._refresh_locked()
            size = self._tree.size
            if not 0 <= index < size:
                raise ValueError(f"the log has no leaf {index} (size {size})")
            return LogEntry(
                index, size, self._tree.leaf(index), tuple(self._tree.inclusion_proof(index)), self._checkpoint_locked()
            )

    def consistency(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The consistency proof from ``old_size`` to ``new_size`` (default: the size after fetching).

        Raises:
            ValueError: sizes out of range.
        """
        with self._lock:
            if new_size is None or new_size > self._tree.size:
                self._refresh_locked()
            return self._tree.consistency_proof(old_size, new_size)

    def root_hash(self, size: int | None = None) -> bytes:
        """The root hash of the first ``size`` leaves held (default: all held).

        Raises:
            ValueError: ``size`` larger than held.
        """
        with self._lock:
            return self._tree.root(size)
