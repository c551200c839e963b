"""The key broker's durable state, in SQLite (the default, one host) or PostgreSQL (replicas).

It holds used challenge nonces (as digests), registered models, the hash-chained audit log and the transparency
log's leaves.

Open one with :func:`open_store`::

    store = open_store("sqlite:///var/lib/ccdeploy/broker.db")      # or a plain path
    store = open_store("postgresql://broker@db.internal/ccdeploy")    # needs ccdeploy[postgres]
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from ccdeploy.broker.store.audit import GENESIS_HASH, audit_entry_hash, audit_leaf_data, verify_audit_chain
from ccdeploy.broker.store.base import (
    Appended,
    AuditEntry,
    BrokerStore,
    ModelRecord,
    NonceReplayed,
    NonceUse,
)
from ccdeploy.errors import BrokerConfigError

__all__ = [
    "GENESIS_HASH",
    "Appended",
    "AuditEntry",
    "BrokerStore",
    "ModelRecord",
    "NonceReplayed",
    "NonceUse",
    "audit_entry_hash",
    "audit_leaf_data",
    "open_store",
    "verify_audit_chain",
]

_SQLITE_OPTIONS = frozenset({"synchronous"})


def open_store(url: str) -> BrokerStore:
    """Open (creating its schema if needed) the broker store a database URL names.

    Args:
        url: ``sqlite:///abs/path.db``, ``sqlite:relative.db``, a plain file path, or ``postgresql://...``
            (also ``postgres://``). A SQLite URL may end in ``?synchronous=normal`` to trade power-loss
            durability for speed (a killed process still loses nothing).

    Returns:
        The store; close it with :meth:`BrokerStore.close` (or use it as a context manager).

    Raises:
        BrokerConfigError: the URL is malformed or names an unsupported database.
        BrokerUnavailable: the database cannot be reached or opened.
        DependencyMissing: a PostgreSQL URL, and psycopg is not installed.
    """
    text = url.strip()
    if not text:
        raise BrokerConfigError("no broker database URL given")
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower() if sep else ""
    if scheme in ("postgresql", "postgres"):
        from ccdeploy.broker.store.postgres import PostgresStore  # noqa: PLC0415 - keeps psycopg optional

        return PostgresStore(text)
    from ccdeploy.broker.store.sqlite import SqliteStore  # noqa: PLC0415 - symmetric with the PostgreSQL import

    if scheme == "sqlite":
        path, options = _sqlite_target(rest)
        return SqliteStore(path, synchronous=options.get("synchronous", "full"))
    if "://" in text:
        raise BrokerConfigError(f"unsupported broker database URL scheme {text.split('://', 1)[0]!r}")
    return SqliteStore(text)


def _sqlite_target(rest: str) -> tuple[str, dict[str, str]]:
    """The path and options of a ``sqlite:`` URL's remainder."""
    path, _, query = rest.partition("?")
    if path.startswith("//"):
        if not path.startswith("///"):
            raise BrokerConfigError("a sqlite URL takes no host: use sqlite:///absolute/path.db or sqlite:relative.db")
        path = path[2:]
    if not path or path == "/":
        raise BrokerConfigError("the sqlite URL names no database file")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=True)) if query else {}
    except ValueError:
        raise BrokerConfigError("the sqlite URL's options are malformed") from None
    unknown = set(options) - _SQLITE_OPTIONS
    if unknown:
        raise BrokerConfigError(f"unknown sqlite URL option(s): {', '.join(sorted(unknown))}")
    return path, options
