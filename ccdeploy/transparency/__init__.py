"""The transparency log: RFC 9162 Merkle trees, C2SP signed checkpoints, and the broker's log of releases.

Public API::

    from ccdeploy.transparency import (
        leaf_hash, root_hash, inclusion_proof, consistency_proof, verify_inclusion, verify_consistency,
        Checkpoint, NoteSigner, sign_checkpoint, open_checkpoint, TransparencyLog, LogEntry,
    )

Formats and the auditor's procedure are described in ``docs/transparency.md``.
"""

from __future__ import annotations

from ccdeploy.transparency.checkpoint import (
    Checkpoint,
    Note,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    parse_note,
    sign_checkpoint,
    sign_note,
)
from ccdeploy.transparency.log import LogEntry, TransparencyLog
from ccdeploy.transparency.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "Checkpoint",
    "LogEntry",
    "MerkleTree",
    "Note",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "TransparencyLog",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint",
    "parse_note",
    "root_from_inclusion_proof",
    "root_hash",
    "sign_checkpoint",
    "sign_note",
    "verify_consistency",
    "verify_inclusion",
]
