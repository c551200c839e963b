"""Run one task per file on a few threads; the first failure stops the others at their next batch."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")

Stop = threading.Event
"""Set when another task failed: a task checks it between batches (see :func:`check_stop`)."""


class Cancelled(Exception):
    """A task gave up because another one failed (internal control flow: never escapes run_all)."""


def check_stop(stop: Stop | None) -> None:
    """Raise :class:`Cancelled` if another task has failed."""
    if stop is not None and stop.is_set():
        raise Cancelled


def pool_size(tasks: int, workers: int | None) -> int:
    """Threads to use: ``workers`` (default one per core), at most one per task, at least one."""
    return max(1, min(tasks, workers or os.cpu_count() or 1))


def run_all(tasks: Sequence[Callable[[Stop], T]], workers: int | None = None) -> list[T]:
    """Run every task; return their results in order, or raise the first real failure.

    On a failure the remaining tasks are cancelled (queued ones never start, running ones stop at
    their next batch), so a tampered first file does not cost decrypting the rest of the model.
    """
    stop = Stop()

    def guarded(task: Callable[[Stop], T]) -> T:
        check_stop(stop)
        try:
            return task(stop)
        except BaseException:
            stop.set()  # before this thread can pick up another task
            raise

    with ThreadPoolExecutor(pool_size(len(tasks), workers), thread_name_prefix="ccseal-file") as pool:
        futures = [pool.submit(guarded, task) for task in tasks]
        wait(futures, return_when=FIRST_EXCEPTION)
        if stop.is_set():
            pool.shutdown(wait=True, cancel_futures=True)
            for future in futures:
                error = None if future.cancelled() else future.exception()
                if error is not None and not isinstance(error, Cancelled):
                    raise error
        return [future.result() for future in futures]
