"""The ``HYPERMAIL_BACKGROUND_*`` settings, read at call time and checked.

Every value is read when a message is enqueued or a task runs, never at
import, so ``override_settings`` works and a worker picks up a changed
setting on restart. Every error names the setting to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from ..exceptions import ConfigurationError

PREFIX = "HYPERMAIL_BACKGROUND_"


@dataclass(frozen=True)
class BackgroundSettings:
    """What background delivery needs from the settings (see
    ``docs/background-delivery.md#settings``)."""

    #: The ``TASKS`` alias the email tasks are enqueued on.
    backend: str = "default"
    #: The queue of that backend the email tasks go to.
    queue: str = "default"
    #: First wait before a transient failure is tried again by a new task.
    requeue_delay: float = 60.0
    #: Cap on that wait, which doubles with each re-enqueue.
    requeue_max_delay: float = 900.0
    #: How many times one message may be re-enqueued; None: no count limit.
    max_requeues: int | None = None
    #: Seconds after the first enqueue past which no new attempt is scheduled.
    max_age: float = 86400.0
    #: Seconds a task may stay RUNNING before ``hypermail_requeue_stale``
    #: treats its worker as dead.
    stale_after: float = 900.0


def _name(field: str) -> str:
    return PREFIX + field.upper()


def _text(value: Any, name: str) -> str:
    if isinstance(value, str) and value:
        return value
    raise ConfigurationError(f"{name} must be a non-empty string, got {value!r}.")


def _seconds(value: Any, name: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return float(value)
    raise ConfigurationError(f"{name} must be a number of seconds >= 0, got {value!r}.")


def _optional_count(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ConfigurationError(
        f"{name} must be a whole number >= 0, or None for no limit; got {value!r}."
    )


_CHECKS = {
    "backend": _text,
    "queue": _text,
    "requeue_delay": _seconds,
    "requeue_max_delay": _seconds,
    "max_requeues": _optional_count,
    "max_age": _seconds,
    "stale_after": _seconds,
}


def get_settings() -> BackgroundSettings:
    """Read and check every ``HYPERMAIL_BACKGROUND_*`` setting now."""
    defaults = BackgroundSettings()
    values: dict[str, Any] = {}
    for field, check in _CHECKS.items():
        name = _name(field)
        value = getattr(settings, name, getattr(defaults, field))
        values[field] = check(value, name)
    return BackgroundSettings(**values)
