"""Acceptance 3: two broker processes on one PostgreSQL release each of 50 nonces exactly once out of 500 attempts."""

from __future__ import annotations

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from attestation.simulator.nitro import NitroSimulator
from tests.broker.helpers import SealedModel
from tests.pg import PostgresServer
from tests.release_e2e.harness import (
    REPLAYED,
    Brokers,
    Outcome,
    audit_entries,
    audit_verify,
    check_dek_opens,
    evidence_digest,
    log_leaf_hashes,
    new_state,
    open_dek,
    prepare,
    register,
    release_digests,
    send,
    verify_receipt_after,
)

NONCES = 50
USES = 10
THREADS = 32


@pytest.mark.slow
def test_two_replicas_release_each_nonce_once(
    postgresql: PostgresServer,
    sealed_model: SealedModel,
    live_simulator: NitroSimulator,
    brokers: Brokers,
    tmp_path: Path,
) -> None:
    db = postgresql.new_database("replicas")
    state = new_state(tmp_path)
    replicas = [brokers.start(state, db, sealed_model.kek.uri) for _ in range(2)]
    assert replicas[0].info == replicas[1].info  # one broker identity, two processes
    register(replicas[0].url, state, sealed_model, live_simulator)
    prepared = prepare([r.url for r in replicas], NONCES, live_simulator)  # challenges alternate between them

    # Attempt k uses nonce k % 50 at replica (k // 50) % 2: each nonce goes 5 times to each replica.
    jobs = [(k % NONCES, (k // NONCES) % 2) for k in range(NONCES * USES)]
    random.Random(6).shuffle(jobs)  # so that attempts on one nonce overlap in time
    clients = [httpx.Client(base_url=r.url, timeout=30, limits=httpx.Limits(max_connections=THREADS)) for r in replicas]
    start = threading.Barrier(THREADS)

    def attempt(job: tuple[int, int]) -> tuple[int, int, Outcome]:
        nonce, replica = job
        return nonce, replica, send(clients[replica], prepared[nonce])

    def first(job: tuple[int, int]) -> tuple[int, int, Outcome]:
        start.wait(timeout=30)  # the first 32 attempts leave together
        return attempt(job)

    try:
        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(first, jobs[:THREADS])) + list(pool.map(attempt, jobs[THREADS:]))
    finally:
        for client in clients:
            client.close()

    assert len(results) == NONCES * USES
    assert not [o for _, _, o in results if o.error], "transport errors or malformed problem documents"
    granted = [(n, r, o) for n, r, o in results if o.granted]
    assert Counter(n for n, _, _ in granted) == dict.fromkeys(range(NONCES), 1)  # exactly one release per nonce
    assert {r for _, r, _ in granted} == {0, 1}  # both replicas released
    refused = Counter((o.status, o.reason) for _, _, o in results if not o.granted)
    assert refused == {(403, REPLAYED): NONCES * USES - NONCES}

    deks = set()
    for nonce, _, outcome in granted:
        assert outcome.grant is not None
        deks.add(open_dek(prepared[nonce], outcome.grant))
    assert len(deks) == 1
    check_dek_opens(sealed_model, deks.pop())

    report = audit_verify(db, state)  # chain intact, every logged entry in the transparency log and nothing else
    assert report["entries"] == 1 + NONCES * USES
    assert report["kinds"] == {"model-registered": 1, "release": NONCES, "denial": NONCES * USES - NONCES}
    assert report["log_size"] == 1 + NONCES
    entries = audit_entries(db)
    assert release_digests(entries) == {evidence_digest(p): 1 for p in prepared}
    denials = Counter(e.body["reason"] for e in entries if e.kind == "denial")
    assert denials == {REPLAYED: NONCES * USES - NONCES}

    leaves = log_leaf_hashes(db)
    indices = set()
    for _, replica, outcome in granted:
        assert outcome.grant is not None
        indices.add(outcome.grant.log_entry["index"])
        verify_receipt_after(outcome.grant, replicas[1 - replica], leaves)  # the other replica proves it too
    assert indices == set(range(1, NONCES + 1))
