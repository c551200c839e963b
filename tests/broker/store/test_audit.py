"""The audit hash chain helpers, independent of any database."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ccdeploy.broker.store import GENESIS_HASH, AuditEntry, audit_entry_hash, audit_leaf_data, verify_audit_chain
from ccdeploy.errors import AuditChainBroken

T0 = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
bodies = st.dictionaries(st.text(max_size=8), json_values, max_size=5)


def chain(items: list[tuple[str, dict[str, Any]]]) -> list[AuditEntry]:
    entries, prev = [], GENESIS_HASH
    for seq, (kind, body) in enumerate(items, start=1):
        at = T0 + timedelta(seconds=seq)
        digest = audit_entry_hash(prev, seq, at, kind, body)
        entries.append(AuditEntry(seq, at, kind, body, prev, digest))
        prev = digest
    return entries


def test_entry_hash_is_the_documented_construction() -> None:
    body = {"model": "m", "n": 1}
    expected = hashlib.sha256(
        bytes(32) + b'{"body":{"model":"m","n":1},"kind":"release","seq":1,"time":"2030-01-02T03:04:05.678901Z"}'
    ).hexdigest()
    assert audit_entry_hash(GENESIS_HASH, 1, T0, "release", body) == expected
    # The same instant in another zone hashes the same; a microsecond later does not.
    plus2 = T0.astimezone(timezone(timedelta(hours=2)))
    assert audit_entry_hash(GENESIS_HASH, 1, plus2, "release", body) == expected
    assert audit_entry_hash(GENESIS_HASH, 1, T0 + timedelta(microseconds=1), "release", body) != expected


def test_entry_hash_rejects_naive_time_and_bad_prev() -> None:
    with pytest.raises(ValueError):
        audit_entry_hash(GENESIS_HASH, 1, T0.replace(tzinfo=None), "release", {})
    with pytest.raises(ValueError):
        audit_entry_hash("00" * 31, 1, T0, "release", {})


def test_leaf_data_is_jcs_of_the_entry() -> None:
    (entry,) = chain([("denial", {"reason": "nonce-replayed"})])
    leaf = audit_leaf_data(entry)
    assert json.loads(leaf) == {
        "seq": 1,
        "time": "2030-01-02T03:04:06.678901Z",
        "kind": "denial",
        "body": {"reason": "nonce-replayed"},
        "entry_hash": entry.entry_hash,
    }
    assert rfc8785.dumps(json.loads(leaf)) == leaf


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["release", "denial", "model-registered"]), bodies), min_size=1, max_size=6))
def test_chains_verify_and_any_change_is_caught(items: list[tuple[str, dict[str, Any]]]) -> None:
    entries = chain(items)
    assert verify_audit_chain(entries) == len(entries)
    victim = len(entries) // 2
    altered = replace(entries[victim], body={**entries[victim].body, "tampered": True})
    with pytest.raises(AuditChainBroken, match=f"seq {victim + 1}:"):
        verify_audit_chain([*entries[:victim], altered, *entries[victim + 1 :]])


def test_chain_breaks_are_named_by_seq() -> None:
    entries = chain([("release", {"i": i}) for i in range(5)])
    with pytest.raises(AuditChainBroken, match="seq 3"):  # one entry dropped
        verify_audit_chain([*entries[:2], *entries[3:]])
    with pytest.raises(AuditChainBroken, match="seq 2"):  # two swapped
        verify_audit_chain([entries[0], entries[2], entries[1], *entries[3:]])
    # An entry re-hashed in place verifies as a prefix, but the next entry no longer links to it.
    forged = replace(entries[3], kind="denial")
    forged = replace(forged, entry_hash=audit_entry_hash(forged.prev_hash, 4, forged.time, "denial", forged.body))
    assert verify_audit_chain([*entries[:3], forged]) == 4
    with pytest.raises(AuditChainBroken, match="seq 5"):
        verify_audit_chain([*entries[:3], forged, entries[4]])
    with pytest.raises(AuditChainBroken, match="seq 1"):  # a later slice without its anchor
        verify_audit_chain(entries[2:])
    assert verify_audit_chain(entries[2:], prev_hash=entries[1].entry_hash, first_seq=3) == 3
    assert verify_audit_chain([]) == 0
