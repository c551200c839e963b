"""The SQLite broker store: the default, for one broker host (several processes may share the file).

WAL mode lets readers run beside the one writer; ``busy_timeout`` makes writers queue instead of failing; every
write runs in ``BEGIN IMMEDIATE``, so it holds the database's write lock from its first read, which serializes nonce
consumption and audit appends across threads and processes. ``synchronous=FULL`` makes each commit durable before
the call returns (a kill -9, or a power cut, loses nothing acknowledged). A release is one such commit: its audit
entry, its transparency-log leaf and its nonce's ``used_nonces`` row.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

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
    from_micros,
    nonce_key,
    to_micros,
)
from ccdeploy.errors import BrokerConfigError, BrokerUnavailable

__all__ = ["SqliteStore"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
DROP TABLE IF EXISTS nonces;
CREATE TABLE IF NOT EXISTS used_nonces (
    nonce_sha256 BLOB PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS used_nonces_expires_at ON used_nonces (expires_at);
CREATE TABLE IF NOT EXISTS models (
    name TEXT PRIMARY KEY,
    artifact_id TEXT NOT NULL,
    head BLOB NOT NULL,
    part_digests TEXT NOT NULL,
    policy BLOB NOT NULL,
    provenance BLOB,
    registered_at INTEGER NOT NULL,
    registered_by TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tlog_leaves (
    idx INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE REFERENCES audit_log (seq),
    data BLOB NOT NULL
);
"""


class SqliteStore(BrokerStore):
    """Broker state in one SQLite file, with one connection per thread.

    Args:
        path: the database file (created if missing; its directory must exist).
        busy_timeout: how long a writer waits for the lock before the call fails with BrokerUnavailable.
        nonce_retention: how long a used nonce's row outlives the nonce's expiry.
        synchronous: SQLite's ``synchronous`` level: "full" (default, durable against power loss) or "normal"
            (durable against process crashes only).

    Raises:
        BrokerConfigError: the path is unusable or the database has a newer schema.
        BrokerUnavailable: the database cannot be opened.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: timedelta = timedelta(seconds=10),
        nonce_retention: timedelta = DEFAULT_NONCE_RETENTION,
        synchronous: str = "full",
    ) -> None:
        self._path = Path(path)
        if str(path) in ("", ":memory:") or str(path).startswith("file:"):
            raise BrokerConfigError("the SQLite broker store needs a file path (an in-memory database is not durable)")
        if not self._path.parent.is_dir():
            raise BrokerConfigError(f"the directory of the broker database does not exist: {self._path.parent}")
        if synchronous not in ("full", "normal"):
            raise BrokerConfigError(f"synchronous must be 'full' or 'normal', not {synchronous!r}")
        self._busy_ms = int(busy_timeout / timedelta(milliseconds=1))
        self._retention = nonce_retention
        self._synchronous = synchronous.upper()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._pid = os.getpid()
        self._nonce_appends = 0
        self._closed = False
        try:
            self._write(self._create_schema)
        except BaseException:
            self.close()
            raise

    # -- connections ---------------------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise BrokerUnavailable("the broker store is closed")
        if os.getpid() != self._pid:  # forked: a SQLite connection must never cross a fork
            self._local = threading.local()
            self._connections, self._pid = [], os.getpid()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute(f"PRAGMA synchronous = {self._synchronous}")
                conn.execute("PRAGMA foreign_keys = ON")
            except sqlite3.Error as exc:
                raise BrokerUnavailable(f"cannot open the broker database {self._path}: {exc}") from None
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one ``BEGIN IMMEDIATE`` transaction, committed before returning."""
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:  # a constraint or trigger failure too: nothing was committed, fail closed
            raise BrokerUnavailable(f"broker database error: {exc}") from None
        return result

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self._connection().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise BrokerUnavailable(f"broker database error: {exc}") from None

    @staticmethod
    def _create_schema(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        if row[0] is not None and row[0] > SCHEMA_VERSION:
            raise BrokerConfigError(
                f"the broker database has schema version {row[0]}; this ccdeploy knows only up to {SCHEMA_VERSION}"
            )
        # Version 1 kept issued nonces in a "nonces" table; nonces are stateless now (outstanding ones are lost).
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        if row[0] is None:
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        elif row[0] < SCHEMA_VERSION:
            conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    # -- nonces --------------------------------------------------------------------------------------------------

    def nonce_used(self, nonce: bytes) -> bool:
        return bool(self._read("SELECT 1 FROM used_nonces WHERE nonce_sha256 = ?", (nonce_key(nonce),)))

    def purge_nonces(self, now: datetime) -> int:
        return self._write(lambda c: self._purge(c, now))

    def _purge(self, conn: sqlite3.Connection, now: datetime) -> int:
        cutoff = to_micros(now - self._retention)
        return conn.execute("DELETE FROM used_nonces WHERE expires_at < ?", (cutoff,)).rowcount

    def _use_nonce(self, conn: sqlite3.Connection, use: NonceUse, now: datetime) -> None:
        inserted = conn.execute(
            "INSERT OR IGNORE INTO used_nonces (nonce_sha256, expires_at) VALUES (?, ?)",
            (nonce_key(use.nonce), to_micros(use.expires_at)),
        ).rowcount
        if inserted == 0 and use.exclusive:
            raise NonceReplayed("the nonce was already used")
        with self._lock:
            self._nonce_appends += 1
            collect = self._nonce_appends % GC_EVERY == 1
        if collect:
            self._purge(conn, now)

    # -- models --------------------------------------------------------------------------------------------------

    def put_model(self, record: ModelRecord) -> None:
        self._write(lambda c: self._put_model(c, record))

    @staticmethod
    def _put_model(conn: sqlite3.Connection, record: ModelRecord) -> None:
        params = (
            record.name,
            record.artifact_id,
            record.head,
            json.dumps(list(record.part_digests)),
            record.policy,
            record.provenance,
            to_micros(record.registered_at),
            record.registered_by,
        )
        conn.execute("INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?)", params)

    def get_model(self, name: str) -> ModelRecord | None:
        rows = self._read(
            "SELECT name, artifact_id, head, part_digests, policy, provenance, registered_at, registered_by"
            " FROM models WHERE name = ?",
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
            registered_at=from_micros(registered_at),
            registered_by=registered_by,
        )

    def model_names(self) -> list[str]:
        return [row[0] for row in self._read("SELECT name FROM models ORDER BY name")]

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
        at = to_micros(now)

        def append(conn: sqlite3.Connection) -> Appended:
            if nonce is not None:
                self._use_nonce(conn, nonce, now)  # first: a replay rolls the whole transaction back
            if model is not None:
                self._put_model(conn, model)
            last = conn.execute("SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            entry = next_entry(last, from_micros(at), kind, parsed)
            conn.execute(
                "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?)",
                (entry.seq, at, kind, text, entry.prev_hash, entry.entry_hash),
            )
            if not logged:
                return Appended(entry, None)
            index = conn.execute("SELECT coalesce(max(idx) + 1, 0) FROM tlog_leaves").fetchone()[0]
            conn.execute("INSERT INTO tlog_leaves VALUES (?, ?, ?)", (index, entry.seq, audit_leaf_data(entry)))
            return Appended(entry, index)

        return self._write(append)

    def _audit_page(self, after_seq: int, limit: int) -> list[AuditEntry]:
        rows = self._read(
            "SELECT seq, time, kind, body, prev_hash, entry_hash FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [
            AuditEntry(seq, from_micros(at), kind, json.loads(body), prev_hash, entry_hash)
            for seq, at, kind, body, prev_hash, entry_hash in rows
        ]

    def log_leaves(self, start: int = 0) -> list[bytes]:
        rows = self._read("SELECT data FROM tlog_leaves WHERE idx >= ? ORDER BY idx", (start,))
        return [bytes(row[0]) for row in rows]

    def log_leaf(self, index: int) -> bytes | None:
        rows = self._read("SELECT data FROM tlog_leaves WHERE idx = ?", (index,))
        return bytes(rows[0][0]) if rows else None
