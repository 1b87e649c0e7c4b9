"""The ``HYPERMAIL_BACKGROUND_*`` settings, read at call time and checked.

Every value is read when a message is enqueued or a task runs, never at
import, so ``override_settings`` works and a worker picks up a changed
setting on restart. Every error names the setting to fix.
"""

from __future__ import annotations

from dataclasses import dataclass

from .validators import Check, nonempty_text, optional_count, read_settings, seconds

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


_CHECKS: dict[str, Check] = {
    "backend": nonempty_text,
    "queue": nonempty_text,
    "requeue_delay": seconds,
    "requeue_max_delay": seconds,
    "max_requeues": optional_count,
    "max_age": seconds,
    "stale_after": seconds,
}


def get_settings() -> BackgroundSettings:
    """Read and check every ``HYPERMAIL_BACKGROUND_*`` setting now."""
    return read_settings(PREFIX, BackgroundSettings(), _CHECKS)
