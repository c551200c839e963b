"""Stateless challenge nonces: MAC, expiry, the state directory's nonce key, and single use at the audit append."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccdeploy.broker.keys import NONCE_KEY_FILE, NONCE_SIZE, NonceKey, NonceStatus, init_state, load_state
from ccdeploy.broker.store import open_store
from ccdeploy.broker.store.base import SCHEMA_VERSION
from ccdeploy.errors import BrokerConfigError
from ccdeploy.release.protocol import DenialReason
from tests.broker.helpers import Broker, policy_document, public_pem
from tests.broker.test_service import MODEL, denied

T0 = datetime(2030, 1, 1, tzinfo=UTC)
KEY = NonceKey(bytes(range(32)))


def test_a_nonce_is_valid_until_its_expiry_exclusive() -> None:
    nonce, expires = KEY.mint(T0 + timedelta(seconds=60, microseconds=1500))
    assert len(nonce) == NONCE_SIZE
    assert expires == T0 + timedelta(seconds=60, milliseconds=1)  # kept to the millisecond
    assert KEY.check(nonce, T0) == (NonceStatus.VALID, expires)
    assert KEY.check(nonce, expires - timedelta(microseconds=1)) == (NonceStatus.VALID, expires)
    assert KEY.check(nonce, expires) == (NonceStatus.EXPIRED, expires)
    assert KEY.mint(T0)[0] != KEY.mint(T0)[0]  # random part


def test_another_key_or_any_flipped_bit_is_unknown() -> None:
    nonce, _ = KEY.mint(T0 + timedelta(seconds=60))
    assert NonceKey(bytes(32)).check(nonce, T0) == (NonceStatus.UNKNOWN, None)
    for index in range(NONCE_SIZE):
        for bit in (0, 7):
            tampered = bytearray(nonce)
            tampered[index] ^= 1 << bit
            assert KEY.check(bytes(tampered), T0) == (NonceStatus.UNKNOWN, None)
    # A later expiry cannot be forged: the expiry bytes are under the MAC.
    assert KEY.check(nonce[:1] + b"\xff" * 6 + nonce[7:], T0) == (NonceStatus.UNKNOWN, None)


@given(st.binary(max_size=80))
def test_arbitrary_bytes_are_unknown(data: bytes) -> None:
    assert KEY.check(data, T0) == (NonceStatus.UNKNOWN, None)


def test_nonce_key_is_never_shown() -> None:
    assert "00010203" not in repr(KEY)
    with pytest.raises(BrokerConfigError):
        NonceKey(b"short")


def test_state_directory_holds_a_private_nonce_key(tmp_path: Path) -> None:
    state = tmp_path / "state"
    init_state(state)
    path = state / NONCE_KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(bytes.fromhex(path.read_text())) == 32
    nonce, _ = load_state(state).nonce_key.mint(T0 + timedelta(seconds=5))
    assert load_state(state).nonce_key.check(nonce, T0)[0] is NonceStatus.VALID  # replicas share the key

    path.chmod(0o644)
    with pytest.raises(BrokerConfigError, match="readable by other users"):
        load_state(state)
    path.write_text("not hex\n")
    path.chmod(0o600)
    with pytest.raises(BrokerConfigError, match="32 bytes of hex"):
        load_state(state)


def test_old_state_directory_is_refused_with_the_upgrade_command(tmp_path: Path) -> None:
    state = tmp_path / "state"
    init_state(state)
    (state / NONCE_KEY_FILE).unlink()
    with pytest.raises(BrokerConfigError) as refused:
        load_state(state)
    assert "openssl rand -hex 32 >" in refused.value.message and NONCE_KEY_FILE in refused.value.message
    os.system(f"(umask 077 && openssl rand -hex 32 > {state / NONCE_KEY_FILE})")
    assert load_state(state).nonce_key is not None


def test_schema_1_database_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (1)")
        conn.execute("CREATE TABLE nonces (nonce_sha256 BLOB PRIMARY KEY, client TEXT, expires_at INTEGER, used_at)")
    with open_store(f"sqlite://{path}") as store:
        assert not store.nonce_used(b"\x00" * 32)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "used_nonces" in tables and "nonces" not in tables


@pytest.fixture
def registered(broker: Broker) -> Broker:
    broker.register(MODEL, policy_document(broker.simulator, provenance={"key": public_pem(broker.model.signer)}))
    return broker


def test_challenges_write_nothing(registered: Broker) -> None:
    before = registered.kinds()
    nonce = registered.service.challenge().nonce
    assert registered.kinds() == before and not registered.store.nonce_used(nonce)


def test_a_race_past_the_early_check_is_refused_by_the_append(
    registered: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    enclave = registered.enclave()
    nonce = registered.service.challenge().nonce
    registered.service.release(enclave.request(MODEL, nonce), "c")
    # As if a replica used the nonce between this request's early read and its append.
    monkeypatch.setattr(registered.store, "nonce_used", lambda _nonce: False)
    denied(registered, enclave.request(MODEL, nonce), DenialReason.NONCE_REPLAYED)
    assert registered.kinds().count("release") == 1
