"""Put back in the queue the email tasks whose worker died while running them.

django-tasks-db marks a task RUNNING when a worker claims it and never looks
at it again if that worker is killed (SIGKILL, out of memory, a lost machine):
the task stays RUNNING and its email is never sent (django-tasks issue #46).
A worker has no heartbeat to tell a dead one from a slow one, so this uses the
usual rule of job queues: a task RUNNING for longer than any delivery can take
(``HYPERMAIL_BACKGROUND_STALE_AFTER``) belongs to a dead worker and is made
READY again. If its worker had already handed the message to the SMTP server,
the message is sent twice: delivery is at-least-once.

Only hypermail-django's own email tasks are touched: other tasks may not be
safe to run twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from ..conf.background_delivery import get_settings
from ..exceptions import ConfigurationError
from .payload import TASK_PATH
from .recovery_rq import is_rq_backend, requeue_abandoned_jobs

logger = logging.getLogger("hypermail_django.background")


@dataclass(frozen=True)
class StaleTask:
    """An email task found RUNNING past the threshold."""

    id: str
    message_id: str | None
    started_at: datetime | None
    worker_ids: list[str]


def requeue_stale_tasks(
    *,
    older_than: float | None = None,
    backend: str | None = None,
    dry_run: bool = False,
) -> list[StaleTask]:
    """Make email tasks RUNNING for more than ``older_than`` seconds READY again.

    ``older_than`` defaults to ``HYPERMAIL_BACKGROUND_STALE_AFTER``; 0 is right
    only when no worker of ``backend`` (default
    ``HYPERMAIL_BACKGROUND_BACKEND``) is running. Returns the tasks requeued
    (with ``dry_run``, the ones that would be). On django-tasks-rq: the
    email jobs of workers that stopped heart-beating instead, whatever
    ``older_than`` says (see :mod:`.recovery_rq`).
    """
    conf = get_settings()
    alias = backend or conf.backend
    rq_backend = _rq_backend(alias)
    if rq_backend is not None:
        # RQ has a heartbeat: a dead worker is known, no threshold needed.
        return requeue_abandoned_jobs(rq_backend, dry_run=dry_run)
    threshold = conf.stale_after if older_than is None else older_than
    if threshold < 0:
        raise ConfigurationError(f"older_than must be >= 0 seconds, got {threshold!r}.")
    models, status = _database_models(alias)
    cutoff = timezone.now() - timedelta(seconds=threshold)
    stale = models.DBTaskResult.objects.filter(
        status=status.RUNNING,
        task_path=TASK_PATH,
        backend_name=alias,
        started_at__lte=cutoff,
    )
    requeued = []
    for row in stale.order_by("started_at"):
        # Row by row, on condition: a task that finished meanwhile stays finished.
        if not dry_run and not stale.filter(pk=row.pk).update(status=status.READY):
            continue
        task = StaleTask(
            id=str(row.pk),
            message_id=payload_message_id(row.args_kwargs),
            started_at=row.started_at,
            worker_ids=list(row.worker_ids),
        )
        requeued.append(task)
        if not dry_run:
            logger.warning(
                "Requeued email task %s (message %s), RUNNING since %s on worker "
                "%s: its worker is presumed dead",
                task.id,
                task.message_id,
                task.started_at,
                task.worker_ids[-1] if task.worker_ids else None,
            )
    return requeued


def _rq_backend(alias: str) -> Any:
    from .framework import InvalidTaskBackend, task_backends

    try:
        backend = task_backends[alias]
    except InvalidTaskBackend:
        return None  # Reported by _database_models.
    return backend if is_rq_backend(backend) else None


def _database_models(alias: str) -> tuple[Any, Any]:
    from .framework import InvalidTaskBackend, task_backends

    try:
        from django_tasks_db import DatabaseBackend
    except ImportError:
        raise ConfigurationError(
            "Requeueing stale email tasks needs django-tasks-db: "
            "pip install 'hypermail-django[tasks]'.",
            code="tasks_unavailable",
        ) from None
    try:
        backend = task_backends[alias]
    except InvalidTaskBackend as exc:
        raise ConfigurationError(
            f"No TASKS backend {alias!r}: {exc}", code="invalid_task_backend"
        ) from exc
    if not isinstance(backend, DatabaseBackend):
        raise ConfigurationError(
            f"The TASKS backend {alias!r} is {type(backend).__name__}, not "
            "django-tasks-db's DatabaseBackend: only that backend leaves the task "
            "of a killed worker RUNNING for this command to repair. See "
            "docs/background-delivery.md for what other backends do.",
            code="invalid_task_backend",
        )
    # Only now: the models need django_tasks_db in INSTALLED_APPS.
    from django_tasks_db import models
    from django_tasks_db.compat import TaskResultStatus

    return models, TaskResultStatus


def payload_message_id(args_kwargs: Any) -> str | None:
    """The Message-ID in a stored task's arguments (None: not one of ours);
    shared with the RQ recovery."""
    try:
        message_id = args_kwargs["kwargs"]["payload"]["message_id"]
    except (KeyError, TypeError):
        return None
    return None if message_id is None else str(message_id)
