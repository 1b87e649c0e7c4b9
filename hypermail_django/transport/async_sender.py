"""Deliver one envelope over an async lease, with the same policy as the sync one."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from . import failures
from .async_connection import adeliver
from .async_pool import AsyncLease
from .attempts import DeliveryAttempts
from .config import TransportConfig
from .connection import StaleConnection
from .envelope import Envelope
from .errors import SendError
from .results import DeliveryStatus, RecipientStatus
from .retry import async_retrying

logger = logging.getLogger("hypermail_django.transport")


async def asend_envelope(
    envelope: Envelope, lease: AsyncLease, config: TransportConfig
) -> DeliveryStatus:
    """The async twin of :func:`.sender.send_envelope`."""
    attempts = DeliveryAttempts(envelope)

    async def attempt() -> None:
        recipients = attempts.begin()
        try:
            outcome = await _deliver_on_lease(lease, envelope, recipients)
        except SendError as exc:
            attempts.record_failure(exc)
            raise
        attempts.record(outcome)

    # As in send_envelope: the first attempt without a retry controller; a
    # failure is replayed to the policy as its first attempt.
    try:
        await attempt()
    except SendError as exc:
        first_failure = exc
    else:
        return attempts.finish(None)
    try:
        await async_retrying(config, envelope.message_id)(
            _replaying(first_failure, attempt)
        )
    except SendError as exc:
        return attempts.finish(exc)
    return attempts.finish(None)


def _replaying(
    failure: SendError, attempt: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    """``attempt``, except that its first call raises ``failure`` (an attempt that
    already ran) instead of running it again."""
    replay = [failure]

    async def again() -> None:
        if replay:
            raise replay.pop()
        await attempt()

    return again


async def _deliver_on_lease(
    lease: AsyncLease, envelope: Envelope, recipients: list[str]
) -> dict[str, RecipientStatus]:
    while True:
        smtp, fresh = await lease.acquire()
        try:
            outcome = await adeliver(smtp, envelope, recipients)
        except StaleConnection as exc:
            lease.discard()
            if fresh:
                raise failures.closed_before_mail(exc) from None
            logger.debug("Replacing a pooled connection the server had closed")
            continue
        except SendError:
            if not smtp.is_connected:
                lease.discard()
            raise
        if not smtp.is_connected:
            lease.discard()
        elif any(s.status == "sent" for s in outcome.values()):
            await lease.count_message()
        return outcome
