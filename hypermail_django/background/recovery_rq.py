"""Put back in the queue the email jobs of RQ workers that died (django-tasks-rq).

RQ keeps every job a worker runs in the queue's started-job registry, with a
heartbeat deadline (the job's monitoring interval plus 60 s, renewed while it
runs). A worker killed with SIGKILL stops renewing it: once the deadline has
passed, the job is certainly abandoned, which no clock rule can say for
django-tasks-db. RQ's own maintenance then moves such a job to the failed
registry (``AbandonedJobError``) and django-tasks-rq marks its task FAILED:
the email would never be sent. This finds hypermail-django's email jobs in
either state and enqueues them again. At-least-once: a message its worker had
already handed to the SMTP server is sent twice.
"""

from __future__ import annotations

import logging
from typing import Any

from .payload import TASK_PATH

logger = logging.getLogger("hypermail_django.background")

#: What RQ writes in a job's failure when its worker stopped heart-beating.
ABANDONED = "AbandonedJobError"


def is_rq_backend(backend: Any) -> bool:
    try:
        from django_tasks_rq import RQBackend
    except ImportError:
        return False
    return isinstance(backend, RQBackend)


def requeue_abandoned_jobs(backend: Any, *, dry_run: bool = False) -> list[Any]:
    """Enqueue again the email jobs whose worker died; return them as
    :class:`~.recovery.StaleTask` (with ``dry_run``, the ones that would be)."""
    import django_rq
    from django_tasks_rq.backend import Job
    from rq.registry import FailedJobRegistry, StartedJobRegistry
    from rq.utils import current_timestamp

    from .recovery import StaleTask, _message_id

    requeued: list[StaleTask] = []
    for name in sorted(backend.queues):
        # django-tasks-rq's job class: its failure callback records the task.
        queue = django_rq.get_queue(name, job_class=Job)
        if not dry_run:
            # What RQ's maintenance does every few minutes, now: jobs whose
            # heartbeat deadline passed go to the failed registry as abandoned.
            # With its job class, or RQ fetches them as plain jobs and
            # django-tasks-rq's failure callback fails (RQ 2.x raises it).
            StartedJobRegistry(queue=queue, job_class=Job).cleanup(current_timestamp())
        failed = FailedJobRegistry(queue=queue)
        candidates = list(failed.get_job_ids())
        if dry_run:
            started = StartedJobRegistry(queue=queue, job_class=Job)
            candidates += started.get_expired_job_ids(current_timestamp())
        for job_id in candidates:
            job = queue.fetch_job(job_id)
            if job is None or job.func_name != TASK_PATH:
                continue
            if job_id in failed and ABANDONED not in (job.exc_info or ""):
                continue  # Failed for a reason of its own: not ours to retry.
            task = StaleTask(
                id=job.id,
                message_id=_message_id({"kwargs": job.kwargs}),
                started_at=job.started_at,
                worker_ids=[job.worker_name] if job.worker_name else [],
            )
            if not dry_run:
                try:
                    failed.requeue(job)
                except Exception:  # Requeued meanwhile by someone else.
                    continue
                logger.warning(
                    "Requeued email job %s (message %s) of RQ worker %s, which "
                    "stopped heart-beating: it is presumed dead",
                    task.id,
                    task.message_id,
                    task.worker_ids[-1] if task.worker_ids else None,
                )
            requeued.append(task)
    return requeued
