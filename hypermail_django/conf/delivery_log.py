"""The ``HYPERMAIL_LOG_*`` settings, read at call time and checked.

Every error names the setting to fix (``ConfigurationError`` with a stable
``.code``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, cast

from ..exceptions import ConfigurationError
from .validators import Check, flag, positive_count, read_settings

PREFIX = "HYPERMAIL_LOG_"

Keep = Literal["headers", "full"]

_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
_DURATION = re.compile(r"^\s*(\d+)\s*([wdhms])\s*$")


@dataclass(frozen=True)
class LogSettings:
    """What the delivery log needs from the settings (``docs/delivery-log.md``)."""

    #: Record outcomes at all (turn off without removing the app).
    enabled: bool = True
    #: ``"headers"``: headers and outcomes only; ``"full"``: the whole message too,
    #: compressed, so it can be viewed, exported and resent.
    keep: Keep = "headers"
    #: How old a record ``hypermail_prune`` deletes when given no ``--older-than``.
    prune_after: timedelta = timedelta(days=30)
    #: Records written at once by bulk runs.
    batch_size: int = 500


def parse_duration(value: Any, where: str) -> timedelta:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"2w"``, ``"3600s"``, a number of days, or
    a ``timedelta``."""
    if isinstance(value, timedelta) and value > timedelta(0):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return timedelta(days=value)
    if isinstance(value, str) and (match := _DURATION.match(value)):
        amount = int(match.group(1))
        if amount > 0:
            return timedelta(**{_UNITS[match.group(2)]: amount})
    raise ConfigurationError(
        f"{where} must be a positive duration such as '30d', '12h', '90m', '2w' "
        f"or '3600s' (or a number of days, or a timedelta); got {value!r}."
    )


def _keep(value: Any, name: str) -> Keep:
    if value in ("headers", "full"):
        return cast(Keep, value)
    raise ConfigurationError(
        f"{name} must be 'headers' (the default: headers and outcomes only) or "
        f"'full' (the whole message, compressed); got {value!r}."
    )


_CHECKS: dict[str, Check] = {
    "enabled": flag,
    "keep": _keep,
    "prune_after": parse_duration,
    "batch_size": positive_count,
}


def get_settings() -> LogSettings:
    """Read and check every ``HYPERMAIL_LOG_*`` setting now."""
    return read_settings(PREFIX, LogSettings(), _CHECKS)
