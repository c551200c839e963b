"""The broker's state store interface: used nonces, registered models, the audit log and the transparency log's leaves.

A store is shared by every worker thread of a broker and, through its database, by every broker replica. It holds
no key material: a DEK never reaches it, and nonces are kept only as SHA-256 digests (a nonce is single-use, not
secret, but a digest is all the store needs to recognise one).

Challenge nonces are stateless (the broker authenticates them with a MAC, see :mod:`ccdeploy.broker.keys`), so
issuing one writes nothing. A nonce is used up by the transaction that appends the audit event deciding on it:
the event and a ``used_nonces`` row keyed by the nonce's digest commit together or not at all, and the row's
primary key makes the use exclusive across threads, processes and replicas. A release therefore costs exactly
one commit.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ccdeploy.errors import DecisionError

__all__ = [
    "DEFAULT_NONCE_RETENTION",
    "SCHEMA_VERSION",
    "Appended",
    "AuditEntry",
    "BrokerStore",
    "ModelRecord",
    "NonceReplayed",
    "NonceUse",
]

SCHEMA_VERSION = 2
"""The database schema this build writes; a database with a newer version is refused."""

DEFAULT_NONCE_RETENTION = timedelta(hours=1)
"""How long a used nonce's row outlives the nonce's expiry. An expired nonce is refused before the store is asked,
so the row is only needed until then; the margin covers clocks of replicas that disagree (or step back)."""

GC_EVERY = 128
"""Used nonces past their retention are purged in one nonce-consuming append in this many (per store object)."""


class NonceReplayed(DecisionError):
    """The nonce of an exclusive :class:`NonceUse` was used before; nothing was appended."""


AUDIT_PAGE = 1000
"""Audit entries read per query by :meth:`BrokerStore.audit_entries`."""


@dataclass(frozen=True)
class NonceUse:
    """A challenge nonce used up by the transaction of an audit append.

    Attributes:
        nonce: the nonce (stored only as its SHA-256 digest).
        expires_at: when the nonce stops being accepted; its row may be purged a retention period later.
        exclusive: the append happens only if this is the nonce's first use (else :class:`NonceReplayed`);
            when False (a denial) the nonce is marked used if it was not, and the append happens either way.
    """

    nonce: bytes
    expires_at: datetime
    exclusive: bool = True


@dataclass(frozen=True)
class ModelRecord:
    """A registered model: what the broker needs to decide on and perform a release.

    Attributes:
        name: the model name releases ask for.
        artifact_id: hex artifact id from the sealed header.
        head: the sealed artifact's head part exactly as on disk (preamble, header JSON, MAC).
        part_digests: hex BLAKE3 digests of the stream parts.
        policy: the release policy YAML, raw bytes.
        provenance: the ``NAME.provenance.sigstore.json`` bundle bytes, if any.
        registered_at: when it was registered (timezone-aware).
        registered_by: who registered it (the admin client's name).
    """

    name: str
    artifact_id: str
    head: bytes
    part_digests: tuple[str, ...]
    policy: bytes
    provenance: bytes | None
    registered_at: datetime
    registered_by: str


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the hash-chained audit log (see :func:`ccdeploy.broker.store.audit.audit_entry_hash`)."""

    seq: int
    time: datetime
    kind: str
    body: dict[str, Any]
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True)
class Appended:
    """An appended audit entry and, when it was also logged, its index in the transparency log."""

    entry: AuditEntry
    log_index: int | None


class BrokerStore(abc.ABC):
    """Durable broker state. Every method is thread-safe and commits before it returns."""

    @abc.abstractmethod
    def nonce_used(self, nonce: bytes) -> bool:
        """Whether ``nonce`` was used up already (a read: cheap, early refusal of replays; not the exclusive check).

        Raises:
            BrokerUnavailable: the database could not be reached.
        """

    @abc.abstractmethod
    def put_model(self, record: ModelRecord) -> None:
        """Insert a model record, or replace the one with the same name."""

    @abc.abstractmethod
    def get_model(self, name: str) -> ModelRecord | None:
        """The model registered under ``name``, or None."""

    @abc.abstractmethod
    def model_names(self) -> list[str]:
        """The names of every registered model, sorted."""

    @abc.abstractmethod
    def append_event(
        self,
        kind: str,
        body: Mapping[str, Any],
        now: datetime,
        *,
        logged: bool,
        nonce: NonceUse | None = None,
        model: ModelRecord | None = None,
    ) -> Appended:
        """Append an audit entry and, if ``logged``, its transparency-log leaf, in one transaction.

        Appends are serialized across threads, processes and replicas, so sequence numbers are contiguous
        and each entry chains to the one before it.

        Args:
            kind: the event kind ("release", "denial", "model-registered", ...).
            body: JSON-compatible event details (RFC 8785 canonicalizable: no floats beyond 2**53 integers).
            now: the event time (timezone-aware).
            logged: also append a transparency-log leaf holding ``audit_leaf_data(entry)``.
            nonce: a nonce this event uses up, in the same transaction (see :class:`NonceUse`).
            model: a model record this event registers (inserted or replacing the one of its name), in the same
                transaction: a registration and its audit entry commit together or not at all.

        Raises:
            NonceReplayed: ``nonce`` is exclusive and was used before; nothing was appended.
            ValueError: ``body`` is not RFC 8785 canonicalizable, or ``now`` is naive; nothing was appended.
            BrokerUnavailable: the database could not be reached; nothing was appended.
        """

    def audit_entries(self, after_seq: int = 0) -> Iterator[AuditEntry]:
        """The audit entries with ``seq > after_seq``, in order (read a page at a time)."""
        last = after_seq
        while True:
            page = self._audit_page(last, AUDIT_PAGE)
            yield from page
            if len(page) < AUDIT_PAGE:
                return
            last = page[-1].seq

    @abc.abstractmethod
    def _audit_page(self, after_seq: int, limit: int) -> list[AuditEntry]:
        """At most ``limit`` audit entries with ``seq > after_seq``, in order."""

    @abc.abstractmethod
    def log_leaves(self, start: int = 0) -> list[bytes]:
        """The transparency log's leaf data (not hashes) from index ``start`` on, in index order."""

    @abc.abstractmethod
    def log_leaf(self, index: int) -> bytes | None:
        """The transparency log's leaf data at ``index``, or None if the log has no such leaf."""

    def purge_nonces(self, now: datetime) -> int:
        """Delete used nonces that expired more than the retention period before ``now``; returns how many.

        Backends also purge opportunistically while appending; this base version keeps everything.
        """
        return 0

    @abc.abstractmethod
    def close(self) -> None:
        """Close every connection; the store must not be used afterwards."""

    def __enter__(self) -> BrokerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def nonce_key(nonce: bytes) -> bytes:
    """The key a nonce is stored under: its SHA-256 digest."""
    return hashlib.sha256(nonce).digest()


def utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is a programming error (its meaning would depend on the host)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("broker store times must be timezone-aware")
    return value.astimezone(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(value: datetime) -> int:
    """Microseconds since the Unix epoch: how the SQLite store keeps times (exact, and comparable in SQL)."""
    return (utc(value) - _EPOCH) // timedelta(microseconds=1)


def from_micros(value: int) -> datetime:
    """The inverse of :func:`to_micros`."""
    return _EPOCH + timedelta(microseconds=value)
