"""Broker store behaviour, the same test body on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlite3
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ccdeploy.broker.store import (
    BrokerStore,
    ModelRecord,
    NonceReplayed,
    NonceUse,
    audit_leaf_data,
    open_store,
    verify_audit_chain,
)
from ccdeploy.broker.store import base as store_base
from ccdeploy.broker.store.base import DEFAULT_NONCE_RETENTION
from ccdeploy.errors import AuditChainBroken, BrokerConfigError, BrokerUnavailable, DependencyMissing
from tests.broker.store.workers import T0


def raw_sql(url: str, sql: str) -> None:
    """Run ``sql`` against the store's database behind its back (as an attacker with database access would)."""
    if url.startswith("sqlite:"):
        with sqlite3.connect(urlsplit(url).path) as conn:
            conn.execute(sql)
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.encode())


def model(name: str = "resnet", **changes: object) -> ModelRecord:
    fields: dict[str, object] = {
        "name": name,
        "artifact_id": "ab" * 16,
        "head": b"CCSEAL\x00\x01" + bytes(range(256)),
        "part_digests": ("11" * 32, "22" * 32),
        "policy": b"version: 1\nplatforms:\n  nitro: {}\n",
        "provenance": b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}',
        "registered_at": T0,
        "registered_by": "admin",
    }
    fields.update(changes)
    return ModelRecord(**fields)  # type: ignore[arg-type]


# -- nonces ------------------------------------------------------------------------------------------------------


def test_exclusive_nonce_use_appends_once(store: BrokerStore) -> None:
    use = NonceUse(b"\x01" * 32, T0 + timedelta(seconds=60))
    assert not store.nonce_used(use.nonce)
    first = store.append_event("release", {"i": 1}, T0, logged=True, nonce=use)
    assert store.nonce_used(use.nonce)
    with pytest.raises(NonceReplayed):
        store.append_event("release", {"i": 2}, T0, logged=True, nonce=use)
    # The refused append left nothing behind: no audit entry, no log leaf.
    assert list(store.audit_entries()) == [first.entry]
    assert store.log_leaves() == [audit_leaf_data(first.entry)]
    # A denial is recorded whether or not its nonce was used, and uses a fresh one up.
    denial = NonceUse(use.nonce, use.expires_at, exclusive=False)
    assert store.append_event("denial", {"i": 3}, T0, logged=False, nonce=denial).entry.seq == 2
    fresh = NonceUse(b"\x02" * 32, T0 + timedelta(seconds=60), exclusive=False)
    store.append_event("denial", {"i": 4}, T0, logged=False, nonce=fresh)
    with pytest.raises(NonceReplayed):
        store.append_event("release", {"i": 5}, T0, logged=True, nonce=NonceUse(fresh.nonce, fresh.expires_at))
    assert verify_audit_chain(store.audit_entries()) == 3
    assert not store.nonce_used(b"\x03" * 32)


def test_nonce_times_are_instants_not_wall_clock_text(store: BrokerStore) -> None:
    nonce = NonceUse(b"\x05" * 16, (T0 + timedelta(seconds=30)).astimezone(timezone(timedelta(hours=-5))))
    store.append_event("release", {}, T0.astimezone(timezone(timedelta(hours=9))), logged=False, nonce=nonce)
    # Purged exactly when its expiry instant is a retention period past, whatever the zones say.
    assert store.purge_nonces(T0 + timedelta(seconds=30) + DEFAULT_NONCE_RETENTION) == 0
    assert store.purge_nonces(T0 + timedelta(seconds=31) + DEFAULT_NONCE_RETENTION) == 1
    with pytest.raises(ValueError, match="timezone-aware"):
        store.purge_nonces(T0.replace(tzinfo=None))


def test_used_nonces_are_purged_after_retention(store: BrokerStore) -> None:
    old, recent = NonceUse(b"\x06" * 32, T0), NonceUse(b"\x07" * 32, T0 + DEFAULT_NONCE_RETENTION)
    for use in (old, recent):
        store.append_event("release", {}, T0, logged=False, nonce=use)
    now = T0 + DEFAULT_NONCE_RETENTION + timedelta(seconds=1)
    assert store.purge_nonces(now) == 1
    assert not store.nonce_used(old.nonce)
    assert store.nonce_used(recent.nonce)


def test_nonces_are_stored_as_digests_only(store_url: str, store: BrokerStore) -> None:
    nonce = bytes(range(32))
    store.append_event("release", {}, T0, logged=False, nonce=NonceUse(nonce, T0 + timedelta(seconds=60)))
    store.close()
    if store_url.startswith("sqlite:"):
        path = Path(urlsplit(store_url).path)
        files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]
        assert files and all(nonce not in p.read_bytes() for p in files)
    else:
        import psycopg

        with psycopg.connect(store_url) as conn:
            (stored,) = conn.execute("SELECT nonce_sha256 FROM used_nonces").fetchone() or (None,)
        assert stored is not None and nonce not in bytes(stored) and len(stored) == 32


# -- models ------------------------------------------------------------------------------------------------------


def test_models_put_get_replace(store: BrokerStore) -> None:
    assert store.get_model("resnet") is None
    assert store.model_names() == []
    first = model()
    store.put_model(first)
    store.put_model(model("alpha", provenance=None, part_digests=()))
    assert store.get_model("resnet") == first
    assert store.model_names() == ["alpha", "resnet"]
    alpha = store.get_model("alpha")
    assert alpha is not None and alpha.provenance is None and alpha.part_digests == ()
    replacement = model(policy=b"version: 1\n", registered_at=T0.astimezone(timezone(timedelta(hours=3))), head=b"x")
    store.put_model(replacement)
    got = store.get_model("resnet")
    assert got == replacement and got.registered_at.tzinfo == UTC and got.registered_at == T0
    assert store.model_names() == ["alpha", "resnet"]


# -- audit log ---------------------------------------------------------------------------------------------------


def test_append_event_chains_and_logs_only_logged_entries(store: BrokerStore) -> None:
    first = store.append_event("release", {"model": "m", "n": (1, 2)}, T0, logged=True)
    second = store.append_event("denial", {"reason": "nonce-replayed"}, T0 + timedelta(microseconds=1), logged=False)
    third = store.append_event("model-registered", {"model": "m"}, T0 + timedelta(seconds=2), logged=True)
    assert [first.log_index, second.log_index, third.log_index] == [0, None, 1]
    assert first.entry.body == {"model": "m", "n": [1, 2]}  # as stored and hashed: JSON, tuples are lists
    entries = list(store.audit_entries())
    assert entries == [first.entry, second.entry, third.entry]
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[1].time == T0 + timedelta(microseconds=1) and entries[1].time.tzinfo == UTC
    assert verify_audit_chain(entries) == 3
    assert store.log_leaves() == [audit_leaf_data(first.entry), audit_leaf_data(third.entry)]
    assert store.log_leaves(1) == [audit_leaf_data(third.entry)]
    assert list(store.audit_entries(after_seq=2)) == [third.entry]
    assert verify_audit_chain(store.audit_entries(after_seq=1), prev_hash=first.entry.entry_hash, first_seq=2) == 2


@pytest.mark.parametrize("page", [1, 2, 3, 7])
def test_audit_entries_are_read_page_by_page(store: BrokerStore, monkeypatch: pytest.MonkeyPatch, page: int) -> None:
    appended = [store.append_event("denial", {"n": n}, T0, logged=False).entry for n in range(6)]
    monkeypatch.setattr(store_base, "AUDIT_PAGE", page)
    assert list(store.audit_entries()) == appended  # pages ending exactly at, before and after the last entry
    assert list(store.audit_entries(after_seq=4)) == appended[4:]


@pytest.mark.parametrize(
    ("sql", "broken_at"),
    [
        ('UPDATE audit_log SET body = \'{"reason":"none"}\' WHERE seq = 2', 2),
        ("UPDATE audit_log SET kind = 'release' WHERE seq = 2", 2),
        ("DELETE FROM audit_log WHERE seq = 2", 2),
        ("UPDATE audit_log SET time = time WHERE seq = 2", None),  # a no-op write changes nothing
    ],
)
def test_tampering_is_detected(store_url: str, store: BrokerStore, sql: str, broken_at: int | None) -> None:
    for i in range(3):
        store.append_event("denial", {"reason": "nonce-expired", "i": i}, T0 + timedelta(seconds=i), logged=False)
    raw_sql(store_url, sql)
    if broken_at is None:
        assert verify_audit_chain(store.audit_entries()) == 3
        return
    with pytest.raises(AuditChainBroken, match=f"seq {broken_at}:"):
        verify_audit_chain(store.audit_entries())


def test_reopen_keeps_everything(store_url: str, store: BrokerStore) -> None:
    use = NonceUse(b"\x08" * 32, T0 + timedelta(seconds=60))
    store.put_model(model())
    appended = store.append_event("release", {"model": "resnet"}, T0, logged=True, nonce=use)
    store.close()
    with pytest.raises(BrokerUnavailable, match="closed"):
        store.model_names()
    with open_store(store_url) as reopened:
        assert reopened.get_model("resnet") == model()
        assert list(reopened.audit_entries()) == [appended.entry]
        assert reopened.log_leaves() == [audit_leaf_data(appended.entry)]
        with pytest.raises(NonceReplayed):
            reopened.append_event("release", {}, T0, logged=True, nonce=use)
        assert reopened.append_event("denial", {}, T0, logged=True).log_index == 1
        assert verify_audit_chain(reopened.audit_entries()) == 2


def test_newer_schema_is_refused(store_url: str, store: BrokerStore) -> None:
    store.close()
    with open_store(store_url):  # opening again is idempotent
        pass
    raw_sql(store_url, "UPDATE schema_version SET version = 99")
    with pytest.raises(BrokerConfigError, match="schema version 99"):
        open_store(store_url)


# -- opening -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "mysql://user@host/db",
        "sqlite://host/broker.db",
        "sqlite:",
        "sqlite:///",
        ":memory:",
        "sqlite::memory:",
        "sqlite:///nonexistent-directory-ccdeploy/broker.db",
        "sqlite:broker.db?cache=shared",
        "sqlite:broker.db?synchronous=off",
        "postgresql://host:notaport/db x=",
    ],
)
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(BrokerConfigError):
        open_store(url)


def test_sqlite_url_forms(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    for url in ("sqlite:rel.db", "plain.db", f"sqlite://{tmp_path}/abs.db", "sqlite:norm.db?synchronous=normal"):
        with open_store(url) as opened:
            opened.put_model(model())
    assert {p.name for p in tmp_path.iterdir() if p.suffix == ".db"} == {"rel.db", "plain.db", "abs.db", "norm.db"}  # type: ignore[attr-defined]


def test_unreachable_postgresql_is_unavailable() -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(BrokerUnavailable, match="cannot connect"):
        open_store("postgresql://nobody:secret-password@127.0.0.1:1/ccdeploy")
    try:
        open_store("postgresql://nobody:secret-password@127.0.0.1:1/ccdeploy")
    except BrokerUnavailable as exc:
        assert "secret-password" not in str(exc)


def test_postgresql_without_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what an install without ccdeploy[postgres] sees
    with pytest.raises(DependencyMissing, match=r"ccdeploy\[postgres\]"):
        open_store("postgresql://postgres@127.0.0.1/ccdeploy")


def test_naive_datetimes_are_refused(store: BrokerStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.append_event("release", {}, datetime(2030, 1, 1), logged=True)
    assert list(store.audit_entries()) == []


def test_uncanonicalizable_bodies_append_nothing(store: BrokerStore) -> None:
    for body in ({"x": float("nan")}, {"x": 2**60}, {"x": object()}):
        with pytest.raises(ValueError):
            store.append_event("release", body, T0, logged=True)
    assert list(store.audit_entries()) == [] and store.log_leaves() == []
    assert store.append_event("release", {"x": 1.5}, T0, logged=True).entry.seq == 1
