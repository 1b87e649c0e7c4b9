"""The email task: one task per message, run by any Django Tasks worker.

The task's import path, ``hypermail_django.background.tasks.deliver_email``, is
stored with every queued task, so it is part of the public surface: it must
not move while tasks may be waiting in a queue.

This module is imported on first use (enqueue, or a worker running the task),
not when the app loads: the ``@task`` decorator looks up the default ``TASKS``
backend, which must not happen while Django is still setting up.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from .. import signals
from ..conf.background_delivery import BackgroundSettings, get_settings
from ..conf.mailers import get_mailer
from ..exceptions import RecipientsRefused, SendError
from ..outbound import record_suppressed
from ..transport import DeliveryStatus
from .framework import task
from .payload import Payload, read_payload
from .stored_delivery import send_with

logger = logging.getLogger("hypermail_django.background")


@task(takes_context=True)
def deliver_email(context: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """Deliver one enqueued email; re-enqueue what a transient failure deferred.

    Returns a JSON summary. Raises the ``SendError`` when nothing was delivered
    and nothing is left to try, so the task backend records the task as failed.
    """
    job = read_payload(payload)
    mailer = get_mailer(job.using)
    status, error = send_with(mailer, job.envelope)
    status = record_suppressed(status, job.envelope)
    return _settle(context, job, type(mailer), status, error)


def _settle(
    context: Any,
    job: Payload,
    sender: type,
    status: DeliveryStatus,
    error: SendError | None,
) -> dict[str, Any]:
    message_id = job.envelope.message_id
    sent, refused, deferred = status.sent, status.refused, status.deferred
    if sent:
        signals.background_sent.send(
            sender=sender,
            message_id=message_id,
            status=status,
            alias=job.using,
            envelope=job.envelope,
        )

    next_task: Any = None
    run_after: datetime | None = None
    # Uncertain recipients may have the message already: never re-enqueued.
    given_up = [*refused, *status.uncertain]
    why_not = ""
    if deferred:
        run_after, why_not = _next_attempt(context, job, get_settings())
        if run_after is None:
            given_up += deferred
        else:
            next_task = context.task_result.task.using(run_after=run_after).enqueue(
                payload=job.requeued(deferred).to_json()
            )
            logger.warning(
                "Message %s: %d recipient(s) deferred (%s); re-enqueued as task "
                "%s to run after %s (re-enqueue %d)",
                message_id,
                len(deferred),
                error or "retries spent",
                next_task.id,
                run_after.isoformat(),
                job.requeues + 1,
            )

    if given_up:
        ended_all = error is not None and not sent and next_task is None
        final = error if ended_all and error else _given_up_error(status, given_up)
        logger.error(
            "Message %s was not delivered to %s: %s%s",
            message_id,
            ", ".join(given_up),
            final,
            f" (not re-enqueued: {why_not})" if why_not else "",
        )
        signals.background_send_failed.send(
            sender=sender,
            message_id=message_id,
            error=final,
            status=status,
            alias=job.using,
            envelope=job.envelope,
        )
        if not sent and next_task is None:
            raise final

    return {
        "message_id": message_id,
        "cancelled": status.cancelled,
        "attempts": status.attempts,
        "sent": sent,
        "refused": refused,
        "deferred": deferred,
        "uncertain": status.uncertain,
        "suppressed": status.suppressed,
        "requeued_as": None if next_task is None else str(next_task.id),
        "run_after": None if run_after is None else run_after.isoformat(),
    }


def _next_attempt(
    context: Any, job: Payload, conf: BackgroundSettings
) -> tuple[datetime | None, str]:
    """When to try the deferred recipients again, or None and why not."""
    backend = context.task_result.task.get_backend()
    if not backend.supports_defer:
        return None, (
            f"the TASKS backend {backend.alias!r} ({type(backend).__name__}) "
            "cannot schedule a task for later (run_after)"
        )
    if conf.max_requeues is not None and job.requeues >= conf.max_requeues:
        return None, (
            f"re-enqueued {job.requeues} time(s) already "
            "(HYPERMAIL_BACKGROUND_MAX_REQUEUES)"
        )
    delay = min(conf.requeue_delay * 2**job.requeues, conf.requeue_max_delay)
    if time.time() + delay > job.enqueued_at + conf.max_age:
        return None, (
            f"first enqueued {time.time() - job.enqueued_at:.0f} s ago; the next "
            f"attempt would pass HYPERMAIL_BACKGROUND_MAX_AGE ({conf.max_age:.0f} s)"
        )
    return timezone.now() + timedelta(seconds=delay), ""


def _given_up_error(status: DeliveryStatus, given_up: list[str]) -> SendError:
    """One error describing the recipients the worker gave up on."""
    fates = {rcpt: status.recipients[rcpt] for rcpt in given_up}
    details = "; ".join(f"{rcpt}: {rs.summary}" for rcpt, rs in fates.items())
    return RecipientsRefused(
        f"Message {status.message_id} was not delivered to {len(given_up)} "
        f"recipient(s) ({details})",
        recipients={
            rcpt: (rs.code or 0, rs.reply.encode("utf-8", "replace"))
            for rcpt, rs in fates.items()
        },
    )
