"""The audit log's hash chain: entry hashes, transparency-log leaf data, and chain verification.

Entry ``n`` commits to entry ``n-1``::

    entry_hash = SHA-256( prev_hash (32 bytes) || JCS({"seq", "time", "kind", "body"}) )

with ``time`` in RFC 3339 UTC with microseconds and the genesis ``prev_hash`` 32 zero bytes. JCS is RFC 8785.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import rfc8785

from ccdeploy.broker.store.base import AuditEntry, utc
from ccdeploy.errors import AuditChainBroken

__all__ = [
    "GENESIS_HASH",
    "audit_entry_hash",
    "audit_leaf_data",
    "canonical_body",
    "format_time",
    "next_entry",
    "verify_audit_chain",
]

GENESIS_HASH = "00" * 32
"""The ``prev_hash`` of the first audit entry."""


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a ``Z``: the one spelling of a time that is hashed."""
    return utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_body(body: Mapping[str, Any]) -> bytes:
    """RFC 8785 bytes of an event body (how stores keep it, so it reads back exactly as it was hashed)."""
    return rfc8785.dumps(dict(body))


def audit_entry_hash(prev_hash: str, seq: int, time: datetime, kind: str, body: Mapping[str, Any]) -> str:
    """The hex SHA-256 of an audit entry chained to ``prev_hash`` (hex of the previous entry's hash).

    Raises:
        ValueError: ``prev_hash`` is not 32 bytes of hex, or ``time`` is naive.
    """
    prev = bytes.fromhex(prev_hash)
    if len(prev) != 32:
        raise ValueError("prev_hash must be 32 bytes of hex")
    content = rfc8785.dumps({"seq": seq, "time": format_time(time), "kind": kind, "body": dict(body)})
    return hashlib.sha256(prev + content).hexdigest()


def audit_leaf_data(entry: AuditEntry) -> bytes:
    """The transparency-log leaf for an audit entry: JCS of its fields and its entry hash."""
    return rfc8785.dumps(
        {
            "seq": entry.seq,
            "time": format_time(entry.time),
            "kind": entry.kind,
            "body": entry.body,
            "entry_hash": entry.entry_hash,
        }
    )


def next_entry(last: tuple[int, str] | None, time: datetime, kind: str, body: dict[str, Any]) -> AuditEntry:
    """The entry that follows ``last`` (``(seq, entry_hash)`` of the newest entry; ``None`` before the first)."""
    seq, prev = (1, GENESIS_HASH) if last is None else (last[0] + 1, last[1])
    return AuditEntry(seq, time, kind, body, prev, audit_entry_hash(prev, seq, time, kind, body))


def verify_audit_chain(entries: Iterable[AuditEntry], *, prev_hash: str = GENESIS_HASH, first_seq: int = 1) -> int:
    """Check that ``entries`` form an unbroken chain: contiguous seqs, each linked to and hashing as it should.

    Args:
        entries: audit entries in order.
        prev_hash: the hash the first entry must chain to (the genesis hash for a whole log).
        first_seq: the seq the first entry must have (1 for a whole log).

    Returns:
        How many entries were checked.

    Raises:
        AuditChainBroken: naming the seq of the first entry that is missing, out of order, unlinked or altered.
    """
    expected_seq, expected_prev, count = first_seq, prev_hash, 0
    for entry in entries:
        if entry.seq != expected_seq:
            raise AuditChainBroken(f"audit log broken at seq {expected_seq}: found seq {entry.seq} in its place")
        if entry.prev_hash != expected_prev:
            raise AuditChainBroken(f"audit log broken at seq {entry.seq}: it does not link to the entry before it")
        try:
            recomputed = audit_entry_hash(entry.prev_hash, entry.seq, entry.time, entry.kind, entry.body)
        except ValueError as exc:  # rfc8785.CanonicalizationError included
            raise AuditChainBroken(f"audit log broken at seq {entry.seq}: entry cannot be hashed ({exc})") from None
        if recomputed != entry.entry_hash:
            raise AuditChainBroken(f"audit log broken at seq {entry.seq}: its contents do not match its hash")
        expected_seq, expected_prev, count = entry.seq + 1, entry.entry_hash, count + 1
    return count
