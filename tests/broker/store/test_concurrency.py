"""Single use and one chain under contention: threads, processes sharing a database, and kill -9."""

from __future__ import annotations

import collections
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from ccdeploy.broker.store import (
    BrokerStore,
    audit_leaf_data,
    open_store,
    verify_audit_chain,
)
from tests.broker.store.workers import T0, append_many, consume_all, use_nonce

REPO = Path(__file__).resolve().parents[3]
SPAWN = multiprocessing.get_context("spawn")  # a fork would copy this process's threads and connections


def issue(count: int, tag: int) -> list[bytes]:
    return [tag.to_bytes(2, "big") + i.to_bytes(4, "big") + bytes(26) for i in range(count)]


def test_each_nonce_is_accepted_once_across_threads(store: BrokerStore) -> None:
    nonces = issue(40, 1)
    outcomes: list[tuple[bytes, bool]] = []
    lock, barrier = threading.Lock(), threading.Barrier(8)

    def attempt(offset: int) -> None:
        barrier.wait()
        for i in range(len(nonces)):
            nonce = nonces[(i + offset * 5) % len(nonces)]
            outcome = use_nonce(store, nonce, f"t{offset}")
            with lock:
                outcomes.append((nonce, outcome))

    threads = [threading.Thread(target=attempt, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    accepted = collections.Counter(nonce for nonce, outcome in outcomes if outcome)
    assert len(outcomes) == 8 * 40
    assert set(accepted) == set(nonces) and set(accepted.values()) == {1}
    assert {outcome for _, outcome in outcomes} == {True, False}
    # Exactly one audit entry per nonce: the refused appends left nothing.
    assert verify_audit_chain(store.audit_entries()) == 40


def test_each_nonce_is_accepted_once_across_processes(store_url: str, store: BrokerStore) -> None:
    nonces = issue(60, 2)
    barrier, results = SPAWN.Barrier(3), SPAWN.Queue()
    workers = [SPAWN.Process(target=consume_all, args=(store_url, nonces, 3, barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    barrier.wait(timeout=60)
    won = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    assert sorted(won[0] + won[1]) == sorted(nonces)  # every nonce once, none twice
    assert not use_nonce(store, nonces[0], "late")
    assert verify_audit_chain(store.audit_entries()) == 60


def test_concurrent_appends_form_one_chain(store_url: str, store: BrokerStore) -> None:
    barrier, results = SPAWN.Barrier(3), SPAWN.Queue()
    workers = [SPAWN.Process(target=append_many, args=(store_url, tag, 15, barrier, results)) for tag in ("p", "q")]
    for worker in workers:
        worker.start()
    seen: list[tuple[int, int | None]] = []
    lock = threading.Lock()

    def append_here(k: int) -> None:
        for i in range(6):
            appended = store.append_event("denial", {"tag": f"t{k}", "i": i}, T0, logged=i % 3 == 0)
            with lock:
                seen.append((appended.entry.seq, appended.log_index))

    threads = [threading.Thread(target=append_here, args=(k,)) for k in range(4)]
    barrier.wait(timeout=60)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for _ in workers:
        seen += results.get(timeout=60)[1]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0

    entries = list(store.audit_entries())
    total = 2 * 15 + 4 * 6
    assert verify_audit_chain(entries) == total
    assert [e.seq for e in entries] == list(range(1, total + 1))
    assert sorted(seq for seq, _ in seen) == list(range(1, total + 1))  # each caller got its own seq
    logged = sorted((index, seq) for seq, index in seen if index is not None)
    assert [index for index, _ in logged] == list(range(len(logged)))  # leaf indices contiguous from 0
    by_seq = {e.seq: e for e in entries}
    assert store.log_leaves() == [audit_leaf_data(by_seq[seq]) for _, seq in logged]


def test_kill_9_loses_no_acknowledged_append(store_url: str, store: BrokerStore) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.broker.store.workers", store_url],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    acknowledged = [child.stdout.readline() for _ in range(40)]
    os.kill(child.pid, signal.SIGKILL)
    acknowledged += child.stdout.readlines()  # whatever it printed before dying was acknowledged too
    child.wait(timeout=30)
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    store.close()
    with open_store(store_url) as reopened:
        entries = list(reopened.audit_entries())
        assert verify_audit_chain(entries) == len(entries)
        bodies = {e.seq: e.body for e in entries}
        for line in acknowledged:
            seq, i = map(int, line.split())
            assert bodies[seq] == {"i": i}
            assert not use_nonce(reopened, i.to_bytes(32, "big"), "again")  # no acknowledged nonce works twice
        assert len(entries) >= len(acknowledged) >= 40
        assert reopened.log_leaves() == [audit_leaf_data(e) for e in entries]
        after = reopened.append_event("release", {"after": "restart"}, T0, logged=True)
        assert after.entry.seq == len(entries) + 1 and after.log_index == len(entries)
        assert verify_audit_chain(reopened.audit_entries()) == len(entries) + 1
