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

A worker killed in the instant between taking a job off the queue (RQ moves it
to the queue's *intermediate* list) and registering it as started leaves the
job in neither place: no registry counts it and no heartbeat expires. RQ's
maintenance fails such a job after it has been seen stuck for a minute; this
requeues it instead, by the same one-minute rule (RQ's own first-seen mark).
"""

from __future__ import annotations

import logging
from typing import Any

from .payload import TASK_PATH

logger = logging.getLogger("hypermail_django.background")

#: What RQ writes in a job's failure when its worker died: it stopped
#: heart-beating, or it never registered the job it had taken as started.
ABANDONED = ("AbandonedJobError", "Job was stuck in intermediate queue.")


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

    requeued: list[Any] = []
    for name in sorted(backend.queues):
        # django-tasks-rq's job class: its failure callback records the task.
        queue = django_rq.get_queue(name, job_class=Job)
        # With its job class, or RQ fetches abandoned jobs as plain jobs and
        # django-tasks-rq's failure callback fails (RQ 2.x raises it).
        started = StartedJobRegistry(queue=queue, job_class=Job)
        if not dry_run:
            # What RQ's maintenance does every few minutes, now: jobs whose
            # heartbeat deadline passed go to the failed registry as abandoned.
            started.cleanup(current_timestamp())
        failed = FailedJobRegistry(queue=queue)
        candidates = list(failed.get_job_ids())
        if dry_run:
            candidates += started.get_expired_job_ids(current_timestamp())
        for job_id in candidates:
            job = queue.fetch_job(job_id)
            if job is None or job.func_name != TASK_PATH:
                continue
            if job_id in failed and not _abandoned(job):
                continue  # Failed for a reason of its own: not ours to retry.
            if not dry_run:
                _forget_taken(queue, job_id)
                try:
                    failed.requeue(job)
                except Exception:  # Requeued meanwhile by someone else.
                    continue
            requeued.append(_stale(job, dry_run, "stopped heart-beating"))
        for job_id in _stuck_in_intermediate(queue, started, dry_run=dry_run):
            job = queue.fetch_job(job_id)
            if job is None or job.func_name != TASK_PATH:
                continue  # Not ours: RQ's maintenance fails it.
            if dry_run or _requeue_from_intermediate(queue, job_id):
                why = "took it from the queue and died before starting it"
                requeued.append(_stale(job, dry_run, why))
    return requeued


def _forget_taken(queue: Any, job_id: str, pipe: Any = None) -> None:
    """Take ``job_id`` out of the intermediate list, and its first-seen mark.

    Before a job found failed as abandoned is requeued too: a worker killed
    after registering the job as started but before preparing it leaves it
    there as well. Left behind, RQ's maintenance would fail the requeued job
    a minute later as stuck, and it would be requeued and sent again. Done
    before the requeue, so a worker taking the job afresh puts it back in the
    list after this, not before. With ``pipe``, queued on that transaction."""
    if pipe is None:
        with queue.connection.pipeline() as own:
            _forget_taken(queue, job_id, own)
            own.execute()
        return
    intermediate = queue.intermediate_queue
    pipe.lrem(intermediate.key, 0, job_id)
    pipe.delete(intermediate.get_first_seen_key(job_id))


def _abandoned(job: Any) -> bool:
    return any(reason in (job.exc_info or "") for reason in ABANDONED)


def _stale(job: Any, dry_run: bool, why: str) -> Any:
    from .recovery import StaleTask, payload_message_id

    task = StaleTask(
        id=job.id,
        message_id=payload_message_id({"kwargs": job.kwargs}),
        started_at=job.started_at,
        worker_ids=[job.worker_name] if job.worker_name else [],
    )
    if not dry_run:
        logger.warning(
            "Requeued email job %s (message %s): its RQ worker %s %s, so it "
            "is presumed dead",
            task.id,
            task.message_id,
            task.worker_ids[-1] if task.worker_ids else "(unknown)",
            why,
        )
    return task


def _stuck_in_intermediate(queue: Any, started: Any, *, dry_run: bool) -> list[str]:
    """Jobs taken off the queue but not started for over a minute.

    A live worker holds a job there for milliseconds, so the first sighting
    only marks it (RQ's first-seen key, shared with RQ's maintenance); a job
    still there a minute later belongs to a dead worker.
    """
    intermediate = queue.intermediate_queue
    stuck = []
    for job_id in intermediate.get_job_ids():
        if job_id in started:
            continue  # A worker of several queues removes it only when done.
        if not dry_run and intermediate.set_first_seen(job_id):
            continue
        if intermediate.should_be_cleaned_up(job_id):
            stuck.append(job_id)
    return stuck


def _requeue_from_intermediate(queue: Any, job_id: str) -> bool:
    """Move ``job_id`` from the intermediate list to the front of its queue,
    atomically: two recoveries at once, or RQ's maintenance, cannot both act."""
    from redis.exceptions import WatchError

    intermediate = queue.intermediate_queue
    with queue.connection.pipeline() as pipe:
        try:
            pipe.watch(intermediate.key)
            if pipe.lpos(intermediate.key, job_id) is None:
                return False  # Started, requeued or failed meanwhile.
            pipe.multi()
            _forget_taken(queue, job_id, pipe)
            queue.push_job_id(job_id, pipeline=pipe, at_front=True)
            pipe.execute()
        except WatchError:
            return False  # The list changed: the next run looks again.
    return True
