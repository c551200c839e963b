"""Per-client token buckets: how often one client may call the broker.

Each client (an IP address) gets a bucket of ``burst`` tokens refilled at ``rate`` per second; a call
takes one token or is refused with the time until one is back. The clock is injected (monotonic
seconds), so tests step time instead of sleeping. Buckets of clients not seen for a while are dropped,
and the table is bounded, so a flood of source addresses cannot grow it without limit.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RateLimiter"]


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A thread-safe token bucket per key.

    Args:
        rate: tokens added per second (> 0).
        burst: bucket size: how many calls may come at once (>= 1).
        clock: monotonic seconds (default :func:`time.monotonic`).
        max_keys: at most this many buckets are kept; the least recently used goes first.
    """

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 65536,
    ) -> None:
        if rate <= 0:
            raise ValueError("a rate limit must be positive")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, rate))
        if self.burst < 1:
            raise ValueError("a burst must allow at least one call")
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def _refilled(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(self.burst, bucket.tokens + max(0.0, now - bucket.updated) * self.rate)
            bucket.updated = now
        return bucket

    def acquire(self, key: str) -> float:
        """Take one token for ``key``.

        Returns:
            0.0 when the call may go ahead, else the seconds until a token is back (the call is refused
            and takes nothing).
        """
        with self._lock:
            bucket = self._refilled(key, self._clock())
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate

    def wait_time(self, key: str) -> float:
        """The seconds until ``key`` may make a call (0.0 now), without taking a token."""
        with self._lock:
            bucket = self._refilled(key, self._clock())
            return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate
