"""A rate limit that holds over every window, across all connections.

Providers state quotas as "N messages per second". A token bucket lets a burst
of N through at any instant and N more a moment later, which breaks "every
one-second window" at the seam. Instead each send is given a start slot no
earlier than one window after the send N places before it, so any window of
that length contains at most N starts, whatever the number of threads.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque


def monotonic() -> float:
    """The clock; module-level so tests can drive it."""
    return time.monotonic()


def sleep(seconds: float) -> None:
    """Module-level so tests can replace it and never wait."""
    time.sleep(seconds)


async def async_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class RateLimiter:
    """At most ``per_second`` sends start in any window of ``window`` seconds.

    ``per_second=0`` means no limit. A fractional rate (0.5/s) becomes one send
    per two-second window.
    """

    def __init__(self, per_second: float) -> None:
        if per_second < 0:
            raise ValueError("max_per_second must be >= 0")
        self.per_second = per_second
        self.burst = max(1, math.floor(per_second)) if per_second else 0
        self.window = self.burst / per_second if per_second else 0.0
        self._starts: deque[float] = deque()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Claim the next start slot; return how long to wait for it."""
        if not self.per_second:
            return 0.0
        with self._lock:
            now = monotonic()
            slot = now
            if len(self._starts) >= self.burst:
                slot = max(now, self._starts.popleft() + self.window)
            self._starts.append(slot)
        return slot - now

    def acquire(self) -> None:
        """Block until this thread may start a send."""
        wait = self.reserve()
        if wait > 0:
            sleep(wait)

    async def aacquire(self) -> None:
        """Wait, without blocking the loop, until this task may start a send."""
        wait = self.reserve()
        if wait > 0:
            await async_sleep(wait)
