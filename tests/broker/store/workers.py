"""Code the store tests run in other processes (spawned by multiprocessing, or ``python -m`` for kill -9)."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from ccdeploy.broker.store import BrokerStore, NonceReplayed, NonceUse, open_store

T0 = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def use_nonce(store: BrokerStore, nonce: bytes, tag: str) -> bool:
    """Append a release that uses ``nonce`` up exclusively; whether it was appended (False: already used)."""
    try:
        store.append_event("release", {"tag": tag}, T0, logged=True, nonce=NonceUse(nonce, T0 + timedelta(minutes=5)))
    except NonceReplayed:
        return False
    return True


def consume_all(url: str, nonces: list[bytes], threads: int, barrier: Any, results: Any) -> None:
    """Consume every nonce from ``threads`` threads at once; report the ones this process won."""
    store = open_store(url)
    won: list[bytes] = []
    lock = threading.Lock()

    def run(offset: int) -> None:
        for i in range(len(nonces)):
            nonce = nonces[(i + offset) % len(nonces)]
            if use_nonce(store, nonce, f"{offset}"):
                with lock:
                    won.append(nonce)

    workers = [threading.Thread(target=run, args=(k * 7,)) for k in range(threads)]
    barrier.wait(timeout=60)
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    store.close()
    results.put(won)


def append_many(url: str, tag: str, count: int, barrier: Any, results: Any) -> None:
    """Append ``count`` events (every other one logged); report (seq, log_index) of each."""
    store = open_store(url)
    barrier.wait(timeout=60)
    done = []
    for i in range(count):
        appended = store.append_event("release", {"tag": tag, "i": i}, T0 + timedelta(seconds=i), logged=i % 2 == 0)
        done.append((appended.entry.seq, appended.log_index))
    store.close()
    results.put((tag, done))


def append_forever(url: str) -> None:
    """Append events (each using nonce ``i``) until killed, printing ``seq i`` only after append_event has returned."""
    store = open_store(url)
    i = 0
    while True:
        use = NonceUse(i.to_bytes(32, "big"), T0 + timedelta(minutes=5))
        appended = store.append_event("release", {"i": i}, T0 + timedelta(milliseconds=i), logged=True, nonce=use)
        sys.stdout.write(f"{appended.entry.seq} {i}\n")
        sys.stdout.flush()
        i += 1


if __name__ == "__main__":
    append_forever(sys.argv[1])
