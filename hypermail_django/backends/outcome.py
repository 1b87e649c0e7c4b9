"""The one place a message's outcome is recorded, for every backend and path.

Sync, async, routing, local and bulk sending all end the same way: the
message gets its ``hypermail_status``, exactly one of ``post_send`` or
``send_failed`` fires (the delivery log listens there), and a failure is
raised or, under ``fail_silently``, swallowed. Written once here so the paths
cannot drift apart.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from django.core.mail import EmailMessage

from .. import signals
from ..exceptions import SendError
from ..outbound import record_suppressed
from ..transport import DeliveryStatus, Envelope, RecipientStatus
from ..transport.results import RecipientState

logger = logging.getLogger("hypermail_django")

Prepared = Iterable[tuple[EmailMessage, Envelope | None]]
#: Deliver one prepared message: ``deliver(message, envelope)`` returns its status.
Deliver = Callable[[EmailMessage, Envelope], DeliveryStatus]
ADeliver = Callable[[EmailMessage, Envelope], Awaitable[DeliveryStatus]]


def succeeded(
    backend: Any,
    message: EmailMessage,
    status: DeliveryStatus,
    envelope: Envelope | None = None,
) -> None:
    """Record a message that at least one recipient accepted; send ``post_send``."""
    message.hypermail_status = status
    signals.post_send.send(**_sent(backend, message, status, envelope))


async def asucceeded(
    backend: Any,
    message: EmailMessage,
    status: DeliveryStatus,
    envelope: Envelope | None = None,
) -> None:
    """:func:`succeeded` on an event loop: async receivers are awaited."""
    message.hypermail_status = status
    await signals.post_send.asend(**_sent(backend, message, status, envelope))


def failed(
    backend: Any,
    message: EmailMessage,
    error: Exception,
    envelope: Envelope | None = None,
    *,
    level: int = logging.ERROR,
) -> DeliveryStatus | None:
    """Record a message no recipient accepted; log it, send ``send_failed``.

    Return the status recorded: the error's own (``SendError.status``), else
    an empty one for the envelope, else None (the message never became one).
    An error already recorded for this message (a backend's, re-raised into
    ``send_bulk``) is not recorded twice.
    """
    if _recorded(error, message):
        return message.hypermail_status
    status = _record_failure(backend, message, error, envelope, level)
    signals.send_failed.send(**_failed(backend, message, error, status, envelope))
    return status


async def afailed(
    backend: Any,
    message: EmailMessage,
    error: Exception,
    envelope: Envelope | None = None,
    *,
    level: int = logging.ERROR,
) -> DeliveryStatus | None:
    """:func:`failed` on an event loop."""
    if _recorded(error, message):
        return message.hypermail_status
    status = _record_failure(backend, message, error, envelope, level)
    await signals.send_failed.asend(
        **_failed(backend, message, error, status, envelope)
    )
    return status


def deliver_each(
    backend: Any,
    prepared: Prepared,
    deliver: Deliver,
    errors: tuple[type[Exception], ...],
) -> int:
    """Deliver each prepared message with ``deliver`` and record its outcome.

    Messages with no envelope (nothing to send, or cancelled) are passed over.
    An error of ``errors`` is recorded, then raised unless the backend's
    ``fail_silently`` is set. Return how many messages were accepted.
    """
    sent = 0
    for message, envelope in prepared:
        if envelope is None:
            continue
        try:
            status = deliver(message, envelope)
        except errors as error:
            failed(backend, message, error, envelope)
            if backend.fail_silently:
                continue
            raise
        succeeded(backend, message, status, envelope)
        sent += 1
    return sent


async def adeliver_each(
    backend: Any,
    prepared: Prepared,
    deliver: ADeliver,
    errors: tuple[type[Exception], ...],
) -> int:
    """The async twin of :func:`deliver_each`."""
    sent = 0
    for message, envelope in prepared:
        if envelope is None:
            continue
        try:
            status = await deliver(message, envelope)
        except errors as error:
            await afailed(backend, message, error, envelope)
            if backend.fail_silently:
                continue
            raise
        await asucceeded(backend, message, status, envelope)
        sent += 1
    return sent


def everyone(envelope: Envelope, fate: RecipientStatus) -> DeliveryStatus:
    """One attempt's status giving every recipient of ``envelope`` one fate: the
    outcome of a mailer that reports no recipients of its own (not ours)."""
    return DeliveryStatus(
        message_id=envelope.message_id,
        attempts=1,
        recipients=dict.fromkeys(envelope.recipients, fate),
    )


def everyone_failed(envelope: Envelope, error: SendError) -> DeliveryStatus:
    """:func:`everyone` ``deferred`` when ``error`` is transient, else ``refused``."""
    state: RecipientState = "deferred" if error.transient else "refused"
    return everyone(envelope, RecipientStatus(state, error.smtp_code, str(error)))


def accepted_by(mailer: Any, envelope: Envelope) -> DeliveryStatus:
    """:func:`everyone` ``sent``: a mailer not ours that took the message."""
    reply = f"accepted by {type(mailer).__name__}"
    return everyone(envelope, RecipientStatus("sent", None, reply))


#: Set on an error once its message's failure is recorded (to that message).
_RECORDED = "_hypermail_recorded_for"


def _recorded(error: Exception, message: EmailMessage) -> bool:
    return getattr(error, _RECORDED, None) is message


def _record_failure(
    backend: Any,
    message: EmailMessage,
    error: Exception,
    envelope: Envelope | None,
    level: int,
) -> DeliveryStatus | None:
    with contextlib.suppress(AttributeError):  # An exception with __slots__.
        setattr(error, _RECORDED, message)
    status: DeliveryStatus | None = getattr(error, "status", None)
    if envelope is not None:
        if status is None:
            mailer = getattr(backend, "mailer_name", None)
            status = DeliveryStatus(message_id=envelope.message_id, mailer=mailer)
        record_suppressed(status, envelope)
    message.hypermail_status = status
    message_id = envelope.message_id if envelope is not None else "(unprepared)"
    logger.log(level, "Message %s was not sent: %s", message_id, error)
    return status


def _sent(
    backend: Any,
    message: EmailMessage,
    status: DeliveryStatus,
    envelope: Envelope | None,
) -> dict[str, Any]:
    return {
        "sender": type(backend),
        "message": message,
        "status": status,
        "backend": backend,
        "envelope": envelope,
    }


def _failed(
    backend: Any,
    message: EmailMessage,
    error: Exception,
    status: DeliveryStatus | None,
    envelope: Envelope | None,
) -> dict[str, Any]:
    return {
        "sender": type(backend),
        "message": message,
        "error": error,
        "status": status,
        "backend": backend,
        "envelope": envelope,
    }
