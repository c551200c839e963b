"""The PostgreSQL broker store, for broker replicas sharing one database (``ccdeploy[postgres]``, psycopg 3).

Audit appends take a transaction-scoped advisory lock first, which serializes them across replicas (contiguous
seqs, one chain). A nonce is used up in the append's transaction by ``INSERT ... ON CONFLICT DO NOTHING RETURNING``
into ``used_nonces``: its primary key lets exactly one transaction insert the row (a second one waits for the
first to commit and then inserts nothing), so exactly one release per nonce commits. psycopg is imported only
when a PostgreSQL store is opened.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from ccdeploy.broker.store.audit import audit_leaf_data, canonical_body, next_entry
from ccdeploy.broker.store.base import (
    DEFAULT_NONCE_RETENTION,
    GC_EVERY,
    SCHEMA_VERSION,
    Appended,
    AuditEntry,
    BrokerStore,
    ModelRecord,
    NonceReplayed,
    NonceUse,
    nonce_key,
    utc,
)
from ccdeploy.errors import BrokerConfigError, BrokerUnavailable, DependencyMissing

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresStore"]

T = TypeVar("T")

# pg_advisory_xact_lock keys (any fixed bigints; advisory locks are per database).
_SCHEMA_LOCK = 0x6363_6470_0001
_AUDIT_LOCK = 0x6363_6470_0002

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)",
    "DROP TABLE IF EXISTS nonces",  # schema 1 kept issued nonces; they are stateless now
    """CREATE TABLE IF NOT EXISTS used_nonces (
        nonce_sha256 bytea PRIMARY KEY,
        expires_at timestamptz NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS used_nonces_expires_at ON used_nonces (expires_at)",
    """CREATE TABLE IF NOT EXISTS models (
        name text PRIMARY KEY,
        artifact_id text NOT NULL,
        head bytea NOT NULL,
        part_digests text NOT NULL,
        policy bytea NOT NULL,
        provenance bytea,
        registered_at timestamptz NOT NULL,
        registered_by text NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS audit_log (
        seq bigint PRIMARY KEY,
        time timestamptz NOT NULL,
        kind text NOT NULL,
        body text NOT NULL,
        prev_hash text NOT NULL,
        entry_hash text NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS tlog_leaves (
        idx bigint PRIMARY KEY,
        seq bigint NOT NULL UNIQUE REFERENCES audit_log (seq),
        data bytea NOT NULL
    )""",
)

_INSTALL = "the PostgreSQL broker store needs psycopg: pip install 'ccdeploy[postgres]'"


def _psycopg() -> Any:
    try:
        import psycopg  # noqa: PLC0415 - optional dependency, imported only for a postgresql:// store
    except ImportError:
        raise DependencyMissing(_INSTALL) from None
    return psycopg


class PostgresStore(BrokerStore):
    """Broker state in a PostgreSQL database, with one connection per thread.

    Args:
        url: a libpq connection URL (``postgresql://user@host:port/db``) or key=value conninfo string.
        connect_timeout: how long to wait for the server when connecting.
        nonce_retention: how long a used nonce's row outlives the nonce's expiry.

    Raises:
        DependencyMissing: psycopg is not installed.
        BrokerConfigError: the URL is malformed, or the database has a newer schema.
        BrokerUnavailable: the server cannot be reached.
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: timedelta = timedelta(seconds=10),
        nonce_retention: timedelta = DEFAULT_NONCE_RETENTION,
    ) -> None:
        pg = _psycopg()
        self._pg = pg
        try:
            pg.conninfo.conninfo_to_dict(url)
        except pg.ProgrammingError:
            raise BrokerConfigError("the PostgreSQL connection URL is malformed") from None
        self._url = url
        self._connect_timeout = max(1, int(connect_timeout.total_seconds()))
        self._retention = nonce_retention
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[psycopg.Connection[Any]] = []
        self._pid = os.getpid()
        self._nonce_appends = 0
        self._closed = False
        try:
            self._transaction(self._create_schema)
        except BaseException:
            self.close()
            raise

    # -- connections ---------------------------------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        if self._closed:
            raise BrokerUnavailable("the broker store is closed")
        if os.getpid() != self._pid:  # forked: a libpq connection must never be shared across a fork
            self._local = threading.local()
            self._connections, self._pid = [], os.getpid()
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if conn is not None:
            self._forget(conn)
        try:
            conn = self._pg.connect(
                self._url,
                autocommit=True,
                connect_timeout=self._connect_timeout,
                application_name="ccdeploy-broker",
            )
            conn.execute("SET synchronous_commit TO on")  # a commit is durable before the call returns
        except self._pg.ProgrammingError:
            raise BrokerConfigError("the PostgreSQL connection URL is malformed") from None
        except self._pg.Error as exc:
            raise BrokerUnavailable(f"cannot connect to the broker database: {_first_line(exc)}") from None
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn

    def _forget(self, conn: psycopg.Connection[Any]) -> None:
        with contextlib.suppress(Exception):
            conn.close()
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)
        self._local.conn = None

    def _run(self, work: Callable[[psycopg.Connection[Any]], T], *, transaction: bool) -> T:
        conn = self._connection()
        try:
            if not transaction:
                return work(conn)
            with conn.transaction():
                return work(conn)
        except self._pg.Error as exc:
            if conn.broken or conn.closed:
                self._forget(conn)  # the next call on this thread reconnects
            raise BrokerUnavailable(f"broker database error: {_first_line(exc)}") from None

    def _transaction(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run ``work`` in one transaction, committed before returning."""
        return self._run(work, transaction=True)

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self._run(lambda c: c.execute(sql, params).fetchall(), transaction=False)

    @staticmethod
    def _create_schema(conn: psycopg.Connection[Any]) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))  # concurrent CREATEs race otherwise
        conn.execute(_SCHEMA[0])
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        version = None if row is None else row[0]
        if version is not None and version > SCHEMA_VERSION:
            raise BrokerConfigError(
                f"the broker database has schema version {version}; this ccdeploy knows only up to {SCHEMA_VERSION}"
            )
        for statement in _SCHEMA[1:]:
            conn.execute(statement)
        if version is None:
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION,))
        elif version < SCHEMA_VERSION:
            conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(Exception):
                conn.close()

    # -- nonces --------------------------------------------------------------------------------------------------

    def nonce_used(self, nonce: bytes) -> bool:
        return bool(self._rows("SELECT 1 FROM used_nonces WHERE nonce_sha256 = %s", (nonce_key(nonce),)))

    def purge_nonces(self, now: datetime) -> int:
        return self._run(lambda c: self._purge(c, now), transaction=False)

    def _purge(self, conn: psycopg.Connection[Any], now: datetime) -> int:
        cutoff = utc(now) - self._retention
        deleted: int = conn.execute("DELETE FROM used_nonces WHERE expires_at < %s", (cutoff,)).rowcount
        return deleted

    def _use_nonce(self, conn: psycopg.Connection[Any], use: NonceUse, now: datetime) -> None:
        inserted = conn.execute(
            "INSERT INTO used_nonces (nonce_sha256, expires_at) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING 1",
            (nonce_key(use.nonce), utc(use.expires_at)),
        ).fetchone()
        if inserted is None and use.exclusive:
            raise NonceReplayed("the nonce was already used")
        with self._lock:
            self._nonce_appends += 1
            collect = self._nonce_appends % GC_EVERY == 1
        if collect:
            self._purge(conn, now)

    # -- models --------------------------------------------------------------------------------------------------

    def put_model(self, record: ModelRecord) -> None:
        self._transaction(lambda c: self._put_model(c, record))

    @staticmethod
    def _put_model(conn: psycopg.Connection[Any], record: ModelRecord) -> None:
        params = (
            record.name,
            record.artifact_id,
            record.head,
            json.dumps(list(record.part_digests)),
            record.policy,
            record.provenance,
            utc(record.registered_at),
            record.registered_by,
        )
        conn.execute(
            "INSERT INTO models VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET"
            " artifact_id = EXCLUDED.artifact_id, head = EXCLUDED.head, part_digests = EXCLUDED.part_digests,"
            " policy = EXCLUDED.policy, provenance = EXCLUDED.provenance,"
            " registered_at = EXCLUDED.registered_at, registered_by = EXCLUDED.registered_by",
            params,
        )

    def get_model(self, name: str) -> ModelRecord | None:
        rows = self._rows(
            "SELECT name, artifact_id, head, part_digests, policy, provenance, registered_at, registered_by"
            " FROM models WHERE name = %s",
            (name,),
        )
        if not rows:
            return None
        name, artifact_id, head, digests, policy, provenance, registered_at, registered_by = rows[0]
        return ModelRecord(
            name=name,
            artifact_id=artifact_id,
            head=bytes(head),
            part_digests=tuple(json.loads(digests)),
            policy=bytes(policy),
            provenance=None if provenance is None else bytes(provenance),
            registered_at=registered_at.astimezone(UTC),
            registered_by=registered_by,
        )

    def model_names(self) -> list[str]:
        return [row[0] for row in self._rows("SELECT name FROM models ORDER BY name")]

    # -- audit log and transparency log --------------------------------------------------------------------------

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
        text = canonical_body(body).decode("utf-8")
        parsed: dict[str, Any] = json.loads(text)
        time = utc(now)

        def append(conn: psycopg.Connection[Any]) -> Appended:
            if nonce is not None:  # before the audit lock: a replay waits only for the nonce's row, then gives up
                self._use_nonce(conn, nonce, now)
            if model is not None:
                self._put_model(conn, model)
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_AUDIT_LOCK,))
            # READ COMMITTED: this statement's snapshot is taken after the lock, so it sees the last append.
            last = conn.execute("SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            entry = next_entry(last, time, kind, parsed)
            conn.execute(
                "INSERT INTO audit_log VALUES (%s, %s, %s, %s, %s, %s)",
                (entry.seq, time, kind, text, entry.prev_hash, entry.entry_hash),
            )
            if not logged:
                return Appended(entry, None)
            row = conn.execute("SELECT coalesce(max(idx) + 1, 0) FROM tlog_leaves").fetchone()
            index = int(row[0]) if row is not None else 0
            conn.execute("INSERT INTO tlog_leaves VALUES (%s, %s, %s)", (index, entry.seq, audit_leaf_data(entry)))
            return Appended(entry, index)

        return self._transaction(append)

    def _audit_page(self, after_seq: int, limit: int) -> list[AuditEntry]:
        rows = self._rows(
            "SELECT seq, time, kind, body, prev_hash, entry_hash FROM audit_log WHERE seq > %s ORDER BY seq LIMIT %s",
            (after_seq, limit),
        )
        return [
            AuditEntry(seq, at.astimezone(UTC), kind, json.loads(body), prev_hash, entry_hash)
            for seq, at, kind, body, prev_hash, entry_hash in rows
        ]

    def log_leaves(self, start: int = 0) -> list[bytes]:
        rows = self._rows("SELECT data FROM tlog_leaves WHERE idx >= %s ORDER BY idx", (start,))
        return [bytes(row[0]) for row in rows]

    def log_leaf(self, index: int) -> bytes | None:
        rows = self._rows("SELECT data FROM tlog_leaves WHERE idx = %s", (index,))
        return bytes(rows[0][0]) if rows else None


def _first_line(exc: BaseException) -> str:
    """The first line of a driver error: enough to act on, without the query text libpq may append."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
