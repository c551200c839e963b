"""Re-verify a broker's logs from its database: the audit hash chain and the transparency log over it.

Every audit entry must chain to the one before it; every transparency-log leaf must be the leaf data of an
audit entry, in order; and every entry of a logged kind (releases, registrations) must have its leaf. The
Merkle root is recomputed over all leaves, so it can be compared with any checkpoint the broker signed.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from ccdeploy.broker.service import LOGGED_KINDS
from ccdeploy.broker.store import BrokerStore, audit_leaf_data, verify_audit_chain
from ccdeploy.errors import AuditChainBroken
from ccdeploy.transparency import leaf_hash, root_hash

__all__ = ["LogReport", "verify_logs"]


@dataclass(frozen=True)
class LogReport:
    """What :func:`verify_logs` found (every check passed)."""

    entries: int
    kinds: dict[str, int] = field(default_factory=dict)
    log_size: int = 0
    root_hash: bytes = b""


def verify_logs(store: BrokerStore) -> LogReport:
    """Verify the audit chain and the transparency log a store holds.

    Raises:
        AuditChainBroken: a broken or altered chain, a leaf that is no audit entry's, a logged entry without its
            leaf, or leaves out of order.
    """
    entries = list(store.audit_entries())
    count = verify_audit_chain(entries)
    leaves = store.log_leaves()
    by_seq = {entry.seq: entry for entry in entries}
    logged_seqs: list[int] = []
    for index, data in enumerate(leaves):
        try:
            seq = json.loads(data)["seq"]
        except (ValueError, KeyError, TypeError):
            raise AuditChainBroken(f"transparency log leaf {index} is not an audit entry") from None
        entry = by_seq.get(seq) if isinstance(seq, int) else None
        if entry is None or audit_leaf_data(entry) != data:
            raise AuditChainBroken(f"transparency log leaf {index} does not match audit entry {seq}")
        if logged_seqs and seq <= logged_seqs[-1]:
            raise AuditChainBroken(f"transparency log leaf {index} is out of order")
        logged_seqs.append(seq)
    logged = set(logged_seqs)
    for entry in entries:
        if entry.kind in LOGGED_KINDS and entry.seq not in logged:
            raise AuditChainBroken(f"audit entry {entry.seq} ({entry.kind}) is missing from the transparency log")
    kinds = Counter(entry.kind for entry in entries)
    return LogReport(count, dict(sorted(kinds.items())), len(leaves), root_hash([leaf_hash(d) for d in leaves]))
