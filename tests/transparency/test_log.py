"""TransparencyLog over a leaf source: append-only fetching, proofs, checkpoints, threads, speed."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ccdeploy.errors import AuditChainBroken, BundleMalformed
from ccdeploy.transparency import (
    LogEntry,
    NoteSigner,
    TransparencyLog,
    leaf_hash,
    open_checkpoint,
    root_hash,
    verify_consistency,
)

ORIGIN = "ccdeploy.test/broker-log"


class SqliteLeaves:
    """A real SQLite table of leaf data, read as the broker's store does (index order, from a start)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("CREATE TABLE leaves (idx INTEGER PRIMARY KEY, data BLOB NOT NULL)")
        self._lock = threading.Lock()
        self.starts: list[int] = []

    def append(self, data: bytes) -> int:
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO leaves (idx, data) VALUES ((SELECT COUNT(*) FROM leaves), ?)", (data,)
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def __call__(self, start: int) -> list[bytes]:
        with self._lock:
            self.starts.append(start)
            rows = self._db.execute("SELECT data FROM leaves WHERE idx >= ? ORDER BY idx", (start,)).fetchall()
        return [row[0] for row in rows]


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner(ORIGIN, Ed25519PrivateKey.generate())


@pytest.fixture
def leaves(tmp_path: Path) -> SqliteLeaves:
    return SqliteLeaves(tmp_path / "log.db")


def test_entries_verify_and_only_new_leaves_are_fetched(leaves: SqliteLeaves, signer: NoteSigner) -> None:
    log = TransparencyLog(leaves, signer, ORIGIN)
    assert log.refresh() == 0
    vkey = log.verifier_key()
    data = [f"event {i}".encode() for i in range(37)]
    for i, item in enumerate(data):
        assert leaves.append(item) == i
        entry = log.entry(i)
        assert entry.index == i and entry.tree_size == i + 1
        checkpoint = entry.verify([vkey], leaf_data=item, origin=ORIGIN)
        assert checkpoint.root_hash == root_hash([leaf_hash(d) for d in data[: i + 1]])
        assert LogEntry.from_dict(entry.to_dict()) == entry
    assert leaves.starts == [0, *range(37)]  # each leaf fetched once, never the prefix again
    # An older index is proven against the size held, without fetching.
    old = log.entry(3)
    assert old.tree_size == 37 and leaves.starts[-1] == 36
    old.verify([vkey], leaf_data=data[3])
    with pytest.raises(AuditChainBroken):
        old.verify([vkey], leaf_data=b"something else")
    with pytest.raises(ValueError):
        log.entry(37)


def test_checkpoints_and_consistency(leaves: SqliteLeaves, signer: NoteSigner) -> None:
    log = TransparencyLog(leaves, signer, ORIGIN)
    vkey = signer.verifier_key()
    seen = []
    for batch in range(6):
        for i in range(batch * 5 + 1):
            leaves.append(f"{batch}/{i}".encode())
        seen.append(open_checkpoint(log.checkpoint(), [vkey], origin=ORIGIN))
    assert log.checkpoint() == log.checkpoint()  # cached for an unchanged size (Ed25519 is deterministic anyway)
    for older in seen:
        for newer in seen:
            if older.size <= newer.size:
                proof = log.consistency(older.size, newer.size)
                verify_consistency(older.size, newer.size, proof, older.root_hash, newer.root_hash)
    with pytest.raises(ValueError):
        log.consistency(seen[-1].size + 1)


def test_tampered_entries_fail(leaves: SqliteLeaves, signer: NoteSigner) -> None:
    log = TransparencyLog(leaves, signer, ORIGIN)
    for i in range(11):
        leaves.append(bytes([i]))
    entry = log.entry(6)
    vkey = signer.verifier_key()
    document = entry.to_dict()
    flipped = list(document["inclusion_proof"])
    flipped[0] = ("0" if flipped[0][0] != "0" else "1") + flipped[0][1:]
    bad = [
        {**document, "inclusion_proof": flipped},
        {**document, "index": 7},
        {**document, "tree_size": 10},
        {**document, "leaf_hash": leaf_hash(b"x").hex()},
        {**document, "checkpoint": document["checkpoint"].replace("\n11\n", "\n12\n")},
    ]
    for forged in bad:
        with pytest.raises(AuditChainBroken):
            LogEntry.from_dict(forged).verify([vkey])
    other = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    with pytest.raises(AuditChainBroken):
        entry.verify([other.verifier_key()])
    for malformed in [{**document, "index": -1}, {**document, "leaf_hash": "zz"}, {**document, "index": True}, {}]:
        with pytest.raises(BundleMalformed):
            LogEntry.from_dict(malformed)


def test_threads_share_one_log(leaves: SqliteLeaves, signer: NoteSigner) -> None:
    log = TransparencyLog(leaves, signer, ORIGIN)
    vkey = signer.verifier_key()
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(40):
                data = f"{n}:{i}".encode()
                index = leaves.append(data)
                log.entry(index).verify([vkey], leaf_data=data)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert log.refresh() == 320
    assert log.root_hash() == root_hash([leaf_hash(d) for d in leaves(0)])


def test_proofs_are_fast_on_a_large_log(signer: NoteSigner) -> None:
    """The broker needs >= 100 releases/s with thousands of entries: one entry (proof + checkpoint) is far below 1 ms."""
    data: list[bytes] = [f"leaf {i}".encode() for i in range(20_000)]
    log = TransparencyLog(lambda start: data[start:], signer, ORIGIN)
    started = time.perf_counter()
    log.refresh()
    for i in range(200):
        data.append(f"new {i}".encode())
        log.entry(len(data) - 1)
    per_entry = (time.perf_counter() - started) / 200
    assert per_entry < 0.005, f"{per_entry * 1000:.2f} ms per entry"
    assert len(log.entry(12_345).inclusion_proof) == 15


def test_origin_is_validated(leaves: SqliteLeaves, signer: NoteSigner) -> None:
    with pytest.raises(ValueError):
        TransparencyLog(leaves, signer, "two\nlines")
