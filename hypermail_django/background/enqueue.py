"""Send later: enqueue one Django Tasks task per message, after the commit.

The request does the work that can fail because of the message -- address
checks, ``pre_send`` receivers, serialization -- so a bad message fails where
its author can see it, and nothing is enqueued. The worker only talks SMTP.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.db import transaction

from ..conf.background_delivery import get_settings
from ..conf.mailers import get_mailer
from ..exceptions import ConfigurationError
from ..serialization.envelope_builder import build_envelope
from ..transport import Envelope
from .mailer_protocol import PreparingMailer
from .payload import Payload


class EnqueuedMessages(list[Any]):
    """The task results of one enqueue, one per message that will be sent.

    A plain list of ``TaskResult`` objects. When the enqueue waits for the
    current transaction to commit, the list is empty until then, and stays
    empty if the transaction rolls back. ``message_ids`` is known at once.
    """

    def __init__(self, message_ids: Sequence[str | None]) -> None:
        super().__init__()
        self.message_ids: list[str | None] = list(message_ids)


def enqueue_messages(
    messages: Iterable[EmailMessage],
    using: str | None = None,
    *,
    on_commit: bool = True,
    backend: str | None = None,
    queue_name: str | None = None,
    priority: int | None = None,
    run_after: datetime | None = None,
) -> EnqueuedMessages:
    """Validate and serialize ``messages`` now; send them from a task worker.

    ``using`` is the mailer alias (``MAILERS`` on Django 6.1; None means the
    default mailer). Each message becomes one task on the ``TASKS`` backend
    ``backend`` (default ``HYPERMAIL_BACKGROUND_BACKEND``), queue
    ``queue_name`` (default ``HYPERMAIL_BACKGROUND_QUEUE``), with Django
    Tasks' ``priority`` and ``run_after`` if given.

    With ``on_commit`` (the default) the tasks are enqueued when the current
    database transaction commits, so a rolled-back request sends nothing;
    outside a transaction that is at once.

    Messages without recipients, or cancelled by a ``pre_send`` receiver, are
    skipped. An invalid address raises ``InvalidEmail`` and nothing is
    enqueued.
    """
    conf = get_settings()
    alias = backend or conf.backend
    queue = queue_name or conf.queue
    email_task = _email_task(alias, queue, priority, run_after)
    mailer = get_mailer(using)
    now = time.time()
    payloads = []
    for message in messages:
        envelope = _prepare(mailer, message)
        if envelope is not None:
            payloads.append(Payload(envelope=envelope, using=using, enqueued_at=now))
    results = EnqueuedMessages([p.envelope.message_id for p in payloads])

    def enqueue_all() -> None:
        for payload in payloads:
            results.append(email_task.enqueue(payload=payload.to_json()))

    if not payloads:
        return results
    if on_commit and transaction.get_connection().in_atomic_block:
        transaction.on_commit(enqueue_all)
    else:
        # Outside a transaction on_commit() would run it at once, after
        # connecting to the database for nothing.
        enqueue_all()
    return results


def send_mail_later(
    subject: str,
    message: str,
    from_email: str | None,
    recipient_list: Sequence[str],
    *,
    html_message: str | None = None,
    using: str | None = None,
    on_commit: bool = True,
    backend: str | None = None,
    queue_name: str | None = None,
    priority: int | None = None,
    run_after: datetime | None = None,
) -> EnqueuedMessages:
    """``send_mail()``, delivered by a task worker: see :func:`enqueue_messages`.

    ``from_email`` None means ``DEFAULT_FROM_EMAIL``, as for ``send_mail()``.
    """
    mail = EmailMultiAlternatives(subject, message, from_email, list(recipient_list))
    if html_message:
        mail.attach_alternative(html_message, "text/html")
    return enqueue_messages(
        [mail],
        using,
        on_commit=on_commit,
        backend=backend,
        queue_name=queue_name,
        priority=priority,
        run_after=run_after,
    )


async def aenqueue_messages(
    messages: Iterable[EmailMessage], using: str | None = None, **options: Any
) -> EnqueuedMessages:
    """Async :func:`enqueue_messages`, run in Django's sync thread (where the
    request's database connection and transaction live)."""
    return await sync_to_async(enqueue_messages)(list(messages), using, **options)


async def asend_mail_later(
    subject: str,
    message: str,
    from_email: str | None,
    recipient_list: Sequence[str],
    **options: Any,
) -> EnqueuedMessages:
    """Async :func:`send_mail_later`."""
    return await sync_to_async(send_mail_later)(
        subject, message, from_email, recipient_list, **options
    )


def _prepare(mailer: Any, message: EmailMessage) -> Envelope | None:
    if isinstance(mailer, PreparingMailer):
        return mailer.prepare(message)
    # Another mailer (locmem under the test runner...): serialize as Django would.
    return build_envelope(message)


def _email_task(
    alias: str, queue: str, priority: int | None, run_after: datetime | None
) -> Any:
    """The email task bound to its backend and queue, checked before anything
    is enqueued, so a misconfiguration fails in the request."""
    from .framework import InvalidTaskBackend, TaskException

    changes: dict[str, Any] = {"backend": alias, "queue_name": queue}
    if priority is not None:
        changes["priority"] = priority
    if run_after is not None:
        changes["run_after"] = run_after
    try:
        from .tasks import deliver_email

        return deliver_email.using(**changes)
    except (TaskException, InvalidTaskBackend) as exc:
        raise ConfigurationError(
            f"Cannot enqueue email tasks on the TASKS backend {alias!r}, queue "
            f"{queue!r} ({exc}). Check TASKS and HYPERMAIL_BACKGROUND_BACKEND / "
            "HYPERMAIL_BACKGROUND_QUEUE (or the backend= / queue_name= arguments).",
            code="invalid_task_backend",
        ) from exc
