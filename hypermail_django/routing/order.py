"""In which order a router tries its members: the strategy, then their health.

State (the round-robin turn, each member's run of failures, its cool-down) is
kept in a Django cache: the one named by the router's ``limits_cache``, shared
by every process using it, or a private in-process ``LocMemCache`` per router.
Both go through the same atomic ``add``/``incr``, so there is one code path.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache

from .options import RoutingOptions

_LOCAL: dict[str, LocMemCache] = {}
_LOCAL_LOCK = threading.Lock()


def clock() -> float:
    """Wall-clock time: shared state must agree across machines."""
    return time.time()


def smooth_sequence(weights: dict[str, int]) -> list[str]:
    """One cycle of nginx's smooth weighted round robin: each member appears
    ``weight`` times, spread out (3:1 gives a, a, b, a rather than a, a, a, b)."""
    current = dict.fromkeys(weights, 0)
    total = sum(weights.values())
    cycle = []
    for _ in range(total):
        for name, weight in weights.items():
            current[name] += weight
        chosen = max(current, key=lambda name: current[name])
        current[chosen] -= total
        cycle.append(chosen)
    return cycle


class RouteState:
    """The turn and the health of one router's members."""

    def __init__(self, router: str, options: RoutingOptions) -> None:
        self.options = options
        self.prefix = f"hypermail:route:{router}"
        self.cycle = smooth_sequence(options.weights)
        if options.limits_cache is not None:
            self.cache: Any = caches[options.limits_cache]
        else:
            with _LOCAL_LOCK:
                if router not in _LOCAL:
                    _LOCAL[router] = LocMemCache(
                        f"hypermail-route-{router}", {"OPTIONS": {"MAX_ENTRIES": 10000}}
                    )
                self.cache = _LOCAL[router]

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _incr(self, key: str, timeout: float | None) -> int:
        self.cache.add(key, 0, timeout=timeout)
        try:
            return int(self.cache.incr(key))
        except ValueError:  # Expired between add and incr: start again.
            self.cache.add(key, 0, timeout=timeout)
            return int(self.cache.incr(key))

    def order(self) -> list[str]:
        """The members to try for one message: the strategy's pick first, then
        the others in configured order; members cooling down go last (tried
        only when every other one failed, rather than fail without trying)."""
        members = list(self.options.mailers)
        if self.options.strategy != "failover":
            turn = self._incr(self._key("turn"), None) - 1
            first = self.cycle[turn % len(self.cycle)]
            at = members.index(first)
            members = members[at:] + members[:at]
        cooling = self.cooling()
        now = clock()
        ready = [name for name in members if cooling.get(name, now) <= now]
        return ready + [name for name in members if name not in ready]

    def claim(self, member: str) -> bool:
        """Whether to try ``member`` now. After its cool-down, only one caller
        (the probe) may until that caller reports how it went; a member still
        cooling down is tried only as a last resort, so yes."""
        until = self.cache.get(self._key(member, "until"))
        if until is None or clock() < until:
            return True
        probe = self._key(member, "probe")
        return bool(self.cache.add(probe, 1, timeout=self.options.cooldown))

    def failed(self, member: str) -> None:
        """Count a failure; at ``failure_threshold`` in a row, start a cool-down."""
        failures = self._incr(self._key(member, "failures"), None)
        if failures >= self.options.failure_threshold:
            until = clock() + self.options.cooldown
            self.cache.set(self._key(member, "until"), until, timeout=None)
            self.cache.delete(self._key(member, "probe"))

    def succeeded(self, member: str) -> None:
        """Reset the member's run of failures (and end its cool-down)."""
        keys = [self._key(member, name) for name in ("failures", "until", "probe")]
        if any(value for value in self.cache.get_many(keys).values()):
            self.cache.delete_many(keys)

    def cooling(self) -> dict[str, float]:
        """Each member cooling down, with the time its cool-down ends."""
        keys = {self._key(name, "until"): name for name in self.options.mailers}
        found = self.cache.get_many(list(keys))
        return {keys[key]: until for key, until in found.items()}


def reset_local_state() -> None:
    """Forget every per-process router state (tests)."""
    with _LOCAL_LOCK:
        for cache in _LOCAL.values():
            cache.clear()


__all__ = ["RouteState", "clock", "reset_local_state", "smooth_sequence"]
