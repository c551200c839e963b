"""Code the store tests run in other processes (spawned by multiprocessing, or ``python -m`` for kill -9)."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from ccdeploy.broker.store import NonceOutcome, open_store

T0 = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def consume_all(url: str, nonces: list[bytes], threads: int, barrier: Any, results: Any) -> None:
    """Consume every nonce from ``threads`` threads at once; report the ones this process won."""
    store = open_store(url)
    won: list[bytes] = []
    lock = threading.Lock()

    def run(offset: int) -> None:
        for i in range(len(nonces)):
            nonce = nonces[(i + offset) % len(nonces)]
            if store.consume_nonce(nonce, T0) is NonceOutcome.ACCEPTED:
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
    """Append events until killed, printing ``seq i`` for each only after append_event has returned."""
    store = open_store(url)
    i = 0
    while True:
        appended = store.append_event("release", {"i": i}, T0 + timedelta(milliseconds=i), logged=True)
        sys.stdout.write(f"{appended.entry.seq} {i}\n")
        sys.stdout.flush()
        i += 1


if __name__ == "__main__":
    append_forever(sys.argv[1])
