"""Acceptance 4: ``kill -9`` of the broker in the middle of releases; after a restart no nonce works twice.

A stream of releases (fresh nonces, valid evidence) runs from several threads; once some have been granted,
the broker process is SIGKILLed while requests are in flight, then restarted on the same database. The audit
chain and transparency log must verify, every nonce used before the crash must give at most one release in
total (as the client saw it and as the audit log records it), every nonce granted before the crash must be
refused as replayed, and every receipt granted before the crash must verify against the restarted log.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from attestation.simulator.nitro import NitroSimulator
from tests.broker.helpers import SealedModel
from tests.release_e2e.harness import (
    REPLAYED,
    BrokerProcess,
    Brokers,
    Outcome,
    Prepared,
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

NONCES = 60
"""Challenges taken before the stream; those the stream never reaches are used after the restart."""
KILL_AFTER = 12
"""Grants seen before the kill."""
THREADS = 6
STREAM_TIMEOUT = 30.0


class Stream:
    """Release attempts from several threads, each taking the next unused nonce, until told to stop."""

    def __init__(self, broker: BrokerProcess, prepared: list[Prepared]) -> None:
        self._prepared = prepared
        self._client = httpx.Client(base_url=broker.url, timeout=30, limits=httpx.Limits(max_connections=THREADS))
        self._lock = threading.Lock()
        self._next = 0
        self.stopped = threading.Event()
        self.in_flight = 0
        self.outcomes: dict[int, Outcome] = {}

    def _take(self) -> int | None:
        with self._lock:
            if self.stopped.is_set() or self._next >= len(self._prepared):
                return None
            self._next += 1
            self.in_flight += 1
            return self._next - 1

    def _worker(self) -> None:
        while (index := self._take()) is not None:
            outcome = send(self._client, self._prepared[index])
            with self._lock:
                self.outcomes[index] = outcome
                self.in_flight -= 1

    def granted(self) -> int:
        with self._lock:
            return sum(o.granted for o in self.outcomes.values())

    def run_until_killed(self, broker: BrokerProcess) -> int:
        """Run the stream; SIGKILL ``broker`` after :data:`KILL_AFTER` grants while requests are in flight.

        Returns:
            How many requests were in flight (sent, unanswered) when the kill was sent.
        """
        with ThreadPoolExecutor(THREADS) as pool:
            workers = [pool.submit(self._worker) for _ in range(THREADS)]
            deadline = time.monotonic() + STREAM_TIMEOUT
            while self.granted() < KILL_AFTER:
                assert time.monotonic() < deadline, f"only {self.granted()} grants: {self.outcomes}"
                assert not any(w.done() for w in workers), f"the stream ended early: {self.outcomes}"
                time.sleep(0.002)
            with self._lock:
                while self.in_flight == 0:  # workers hand over within microseconds; wait for one inside a call
                    self._lock.release()
                    time.sleep(0.0005)
                    self._lock.acquire()
                in_flight = self.in_flight
                broker.kill()
                self.stopped.set()
            for worker in workers:
                worker.result(timeout=STREAM_TIMEOUT)
        self._client.close()
        return in_flight


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill_9_mid_release(
    backend: str,
    request: pytest.FixtureRequest,
    sealed_model: SealedModel,
    live_simulator: NitroSimulator,
    brokers: Brokers,
    tmp_path: Path,
) -> None:
    if backend == "sqlite":
        db = f"sqlite:///{tmp_path / 'broker.db'}"
    else:
        db = request.getfixturevalue("postgresql").new_database("crash")
    state = new_state(tmp_path)
    first = brokers.start(state, db, sealed_model.kek.uri)
    register(first.url, state, sealed_model, live_simulator)
    prepared = prepare([first.url], NONCES, live_simulator)

    stream = Stream(first, prepared)
    in_flight = stream.run_until_killed(first)
    before = stream.outcomes
    assert first.process is not None and first.process.returncode == -9
    assert in_flight > 0
    unexpected = {i: o for i, o in before.items() if not o.granted and o.error is None}
    assert not unexpected, f"answers other than a grant or a dropped connection: {unexpected}"
    granted = sorted(i for i, o in before.items() if o.granted)
    lost = sorted(i for i, o in before.items() if not o.granted)  # in flight at the kill: unknown fate
    unused = sorted(set(range(NONCES)) - set(before))
    assert len(granted) >= KILL_AFTER and lost and unused

    crashed = audit_verify(db, state)  # the database as the kill left it
    in_log = release_digests(audit_entries(db))
    assert all(count == 1 for count in in_log.values())
    assert all(in_log[evidence_digest(prepared[i])] == 1 for i in granted)
    assert crashed["kinds"]["release"] <= len(granted) + len(lost)

    second = brokers.start(state, db, sealed_model.kek.uri)
    assert second.info == first.info
    with httpx.Client(base_url=second.url, timeout=30) as client:
        after = {i: send(client, prepared[i]) for i in granted + lost}
        fresh = {i: send(client, prepared[i]) for i in unused[:3]}  # challenges issued before the crash survive it

    for i in granted:
        assert (after[i].status, after[i].reason) == (403, REPLAYED), f"nonce {i} granted twice: {after[i]}"
    for i in lost:
        assert after[i].granted or (after[i].status, after[i].reason) == (403, REPLAYED), after[i]
    successes = {i: int(before[i].granted) + int(after[i].granted) for i in granted + lost}
    assert max(successes.values()) == 1
    assert all(o.granted for o in fresh.values()), fresh

    report = audit_verify(db, state)
    entries = audit_entries(db)
    in_log = release_digests(entries)
    assert all(count == 1 for count in in_log.values()), "a nonce released twice"
    retried = [i for i in lost if after[i].granted]
    assert report["kinds"]["release"] == crashed["kinds"]["release"] + len(retried) + len(fresh)
    assert report["log_size"] == 1 + report["kinds"]["release"]
    denied = [e for e in entries if e.kind == "denial"]
    assert [e.body["reason"] for e in denied] == [REPLAYED] * (len(granted) + len(lost) - len(retried))

    leaves = log_leaf_hashes(db)
    grants = [before[i].grant for i in granted] + [after[i].grant for i in retried] + [o.grant for o in fresh.values()]
    for grant in grants:
        assert grant is not None
        verify_receipt_after(grant, second, leaves)
    first_grant = before[granted[0]].grant
    assert first_grant is not None
    check_dek_opens(sealed_model, open_dek(prepared[granted[0]], first_grant))
