"""Per-mailer sending limits that every process shares, through a Django cache.

``max_per_second``/``_minute``/``_hour``/``_day`` and ``max_connections`` are
held as *slots*: a send claims one free slot per limit with the cache's atomic
``add(key, timeout=window)``, and a slot frees itself when its key expires one
window after it was claimed. So at most N sends start in *any* window (a
sliding window, not calendar seconds), in every process that uses the same
``limits_cache``. A connection slot is deleted when the send ends.

The claim is exact wherever ``add`` is atomic and expiry is precise: Redis,
LocMem (per process), Memcached (expiry in whole seconds). The database cache's
``add`` is atomic for a new key; two processes reclaiming the same expired
slot at the same instant may both get it on PostgreSQL or MySQL (SQLite
serializes them). A slot search tries a few slots from a shared hint, so under
contention a limit may be under-used a little; it is never exceeded.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

from ..exceptions import RateLimited

#: The limit options and their windows in seconds.
WINDOWS = {
    "max_per_second": 1,
    "max_per_minute": 60,
    "max_per_hour": 3600,
    "max_per_day": 86400,
}
#: How long a connection slot is held at most if its process dies mid-send.
CONNECTION_LEASE = 600
#: Slots tried per claim before the limit counts as reached for now.
TRIES = 8

_LOCAL: dict[str, LocMemCache] = {}
_LOCAL_LOCK = threading.Lock()
#: How a send at its limit behaves: "wait" (up to ``limit_wait``, then
#: ``rate_limited``), "pace" (wait as long as it takes: bulk) or "skip"
#: (``rate_limited`` at once: a router moves on to its next member).
_MODE: contextvars.ContextVar[str] = contextvars.ContextVar(
    "hypermail_limit_mode", default="wait"
)


def clock() -> float:
    return time.monotonic()


def sleep(seconds: float) -> None:
    time.sleep(seconds)


async def async_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@contextlib.contextmanager
def limit_mode(mode: str) -> Iterator[None]:
    """Run the block with sends at their limit waiting, pacing or skipping."""
    token = _MODE.set(mode)
    try:
        yield
    finally:
        _MODE.reset(token)


@dataclass(frozen=True)
class MailerLimits:
    """One mailer's checked limits (from ``conf/mailer_options.py``)."""

    mailer: str
    rates: tuple[tuple[int, int], ...]
    """(window seconds, at most this many sends) pairs, shortest window first."""
    max_connections: int | None
    cache_alias: str | None
    wait: float

    @classmethod
    def from_options(cls, resolved: dict[str, Any], alias: str) -> MailerLimits | None:
        """The limits set in ``resolved`` options, or None when there are none."""
        rates = tuple(
            (window, int(resolved[name]))
            for name, window in WINDOWS.items()
            if resolved.get(name) is not None
        )
        connections = resolved.get("max_connections")
        if not rates and connections is None:
            return None
        return cls(
            alias, rates, connections, resolved["limits_cache"], resolved["limit_wait"]
        )

    @property
    def cache(self) -> Any:
        if self.cache_alias is not None:
            return caches[self.cache_alias]
        with _LOCAL_LOCK:
            if self.mailer not in _LOCAL:
                _LOCAL[self.mailer] = LocMemCache(
                    f"hypermail-limits-{self.mailer}",
                    # Slot keys are reused, so their number stays bounded;
                    # culling one would free a slot early: never cull.
                    {"OPTIONS": {"MAX_ENTRIES": 10**9}},
                )
            return _LOCAL[self.mailer]

    def poll(self) -> float:
        """How long to wait before looking for a free slot again."""
        shortest = min([w / n for w, n in self.rates] or [0.05])
        return min(max(shortest, 0.005), 0.25)


def _claim(cache: Any, prefix: str, count: int, timeout: int) -> str | None:
    cache.add(f"{prefix}:hint", 0, timeout=None)
    try:
        hint = int(cache.incr(f"{prefix}:hint")) - 1
    except ValueError:
        hint = 0
    for step in range(min(count, TRIES)):
        key = f"{prefix}:{(hint + step) % count}"
        if cache.add(key, 1, timeout=timeout):
            return key
    return None


def try_acquire(limits: MailerLimits) -> list[str] | None:
    """Claim a slot of every limit, or none of them: the keys, or None."""
    cache = limits.cache
    base = f"hypermail:limit:{limits.mailer}"
    taken: list[str] = []
    wanted = [(f"{base}:{w}", n, w) for w, n in limits.rates]
    if limits.max_connections is not None:
        wanted.append((f"{base}:conn", limits.max_connections, CONNECTION_LEASE))
    for prefix, count, timeout in wanted:
        key = _claim(cache, prefix, count, timeout)
        if key is None:
            # Give back the connection slot only: a rate slot stays claimed
            # (deleting it could let one more through in its window).
            cache.delete_many([k for k in taken if ":conn:" in k])
            return None
        taken.append(key)
    return taken


def _limited(limits: MailerLimits, waited: float) -> RateLimited:
    return RateLimited(
        f"Mailer {limits.mailer!r} is at its sending limit "
        f"({_describe(limits)}); waited {waited:.1f} s (limit_wait). "
        "Nothing was sent; try again later.",
    )


def _describe(limits: MailerLimits) -> str:
    names = {w: n for n, w in WINDOWS.items()}
    parts = [f"{names[w]}={n}" for w, n in limits.rates]
    if limits.max_connections is not None:
        parts.append(f"max_connections={limits.max_connections}")
    return ", ".join(parts)


def _deadline(limits: MailerLimits, pace: bool) -> float | None:
    mode = "pace" if pace else _MODE.get()
    if mode == "pace":
        return None
    return clock() + (0.0 if mode == "skip" else limits.wait)


def acquire(limits: MailerLimits, pace: bool = False) -> list[str]:
    """Wait for a slot of every limit; raise ``RateLimited`` past the deadline."""
    start = clock()
    deadline = _deadline(limits, pace)
    while (keys := try_acquire(limits)) is None:
        if deadline is not None and clock() >= deadline:
            raise _limited(limits, clock() - start)
        sleep(limits.poll())
    return keys


async def aacquire(limits: MailerLimits, pace: bool = False) -> list[str]:
    """The async twin of :func:`acquire` (cache calls in a thread when shared)."""
    from asgiref.sync import sync_to_async

    claim = (
        sync_to_async(try_acquire, thread_sensitive=False)
        if limits.cache_alias
        else try_acquire
    )
    start = clock()
    deadline = _deadline(limits, pace)
    while (keys := await _maybe_await(claim(limits))) is None:
        if deadline is not None and clock() >= deadline:
            raise _limited(limits, clock() - start)
        await async_sleep(limits.poll())
    return keys


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


def release(limits: MailerLimits, keys: list[str]) -> None:
    """Free the connection slot (rate slots expire on their own)."""
    held = [key for key in keys if ":conn:" in key]
    if held:
        limits.cache.delete_many(held)


@contextlib.contextmanager
def hold(limits: MailerLimits | None, pace: bool = False) -> Iterator[None]:
    """Hold a slot of every limit of a mailer for the duration of one send
    (``pace``: wait as long as it takes, as bulk sending does)."""
    if limits is None:
        yield
        return
    keys = acquire(limits, pace)
    try:
        yield
    finally:
        release(limits, keys)


@contextlib.asynccontextmanager
async def ahold(limits: MailerLimits | None, pace: bool = False) -> AsyncIterator[None]:
    """The async twin of :func:`hold`."""
    if limits is None:
        yield
        return
    keys = await aacquire(limits, pace)
    try:
        yield
    finally:
        release(limits, keys)


def reset_local_limits() -> None:
    """Forget every per-process limit (tests)."""
    with _LOCAL_LOCK:
        for cache in _LOCAL.values():
            cache.clear()
