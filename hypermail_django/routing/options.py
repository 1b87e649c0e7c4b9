"""A ``RoutingBackend``'s options, checked once, with messages that say what to fix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import ConfigurationError

STRATEGIES = ("failover", "round_robin", "weighted")
ROUTING_BACKEND = "hypermail_django.backends.RoutingBackend"
#: The router's own options; the preparation options (``css_inline``,
#: ``dkim``...) are accepted too and apply to every message it routes.
ROUTING_OPTIONS = (
    "mailers",
    "strategy",
    "weights",
    "failure_threshold",
    "cooldown",
    "limits_cache",
)


@dataclass(frozen=True)
class RoutingOptions:
    """A router's checked options."""

    mailers: tuple[str, ...]
    strategy: str = "failover"
    weights: dict[str, int] = field(default_factory=dict)
    failure_threshold: int = 3
    cooldown: float = 30.0
    limits_cache: str | None = None


def parse_routing_options(options: dict[str, Any], label: str) -> RoutingOptions:
    """Check the routing options of the router configured at ``label``.

    Raises ``ConfigurationError`` (code ``invalid_routing``) naming the option.
    """
    mailers = options.get("mailers")
    if (
        not isinstance(mailers, (list, tuple))
        or not mailers
        or not all(isinstance(name, str) and name for name in mailers)
    ):
        raise _error(label, "mailers", mailers, "a non-empty list of mailer aliases")
    if len(set(mailers)) != len(mailers):
        raise _error(label, "mailers", mailers, "a list that names each mailer once")
    strategy = options.get("strategy", "failover")
    if strategy not in STRATEGIES:
        raise _error(label, "strategy", strategy, f"one of {', '.join(STRATEGIES)}")
    weights = _weights(options.get("weights"), tuple(mailers), strategy, label)
    threshold = options.get("failure_threshold", 3)
    if not _positive(threshold, int):
        raise _error(label, "failure_threshold", threshold, "a positive integer")
    cooldown = options.get("cooldown", 30)
    if not _positive(cooldown, (int, float)):
        raise _error(label, "cooldown", cooldown, "a positive number of seconds")
    cache = options.get("limits_cache")
    if cache is not None and not _known_cache(cache):
        raise _error(label, "limits_cache", cache, "an alias of the CACHES setting")
    return RoutingOptions(
        mailers=tuple(mailers),
        strategy=strategy,
        weights=weights,
        failure_threshold=threshold,
        cooldown=float(cooldown),
        limits_cache=cache,
    )


def _weights(
    value: Any, mailers: tuple[str, ...], strategy: str, label: str
) -> dict[str, int]:
    if value is None:
        if strategy == "weighted":
            raise _error(label, "weights", value, "a dict of each member's weight")
        return dict.fromkeys(mailers, 1)
    if not isinstance(value, dict):
        raise _error(label, "weights", value, "a dict of member alias to weight")
    unknown = sorted(set(value) - set(mailers))
    if unknown:
        raise _error(label, "weights", value, f"weights of members only ({unknown})")
    for name, weight in value.items():
        if not _positive(weight, int):
            raise _error(label, f"weights[{name!r}]", weight, "a positive integer")
    return {name: value.get(name, 1) for name in mailers}


def _positive(value: Any, kind: type | tuple[type, ...]) -> bool:
    number: Any = value
    return isinstance(value, kind) and not isinstance(value, bool) and number > 0


def _known_cache(alias: Any) -> bool:
    from django.conf import settings

    return isinstance(alias, str) and alias in getattr(settings, "CACHES", {})


def _error(label: str, option: str, value: Any, wanted: str) -> ConfigurationError:
    return ConfigurationError(
        f"{label} OPTIONS[{option!r}] must be {wanted}, got {value!r}.",
        code="invalid_routing",
    )


def find_cycle(
    start: str, members_of: Callable[[str], tuple[str, ...] | None]
) -> list[str] | None:
    """The path by which router ``start`` reaches itself, or None.

    ``members_of(alias)`` returns a router's members, or None for a mailer
    that is not a router (or does not exist: reported elsewhere).
    """
    path: list[str] = [start]

    def walk(alias: str, seen: set[str]) -> list[str] | None:
        for member in members_of(alias) or ():
            if member == start:
                return [*path, member]
            if member in seen:
                continue
            path.append(member)
            found = walk(member, seen | {member})
            if found:
                return found
            path.pop()
        return None

    return walk(start, {start})
