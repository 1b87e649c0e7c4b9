"""Deliver one envelope over a lease with smtplib, retrying what can be retried.

Recipients that a server defers (4xx at RCPT) are retried alone: recipients it
already accepted are never sent the message twice. A connection the server
dropped while idle is replaced at once and does not count as an attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from . import failures
from .attempts import DeliveryAttempts
from .config import TransportConfig
from .connection import StaleConnection, deliver
from .envelope import Envelope
from .errors import SendError
from .pool import Lease
from .results import DeliveryStatus, RecipientStatus
from .retry import retrying

logger = logging.getLogger("hypermail_django.transport")


def send_envelope(
    envelope: Envelope, lease: Lease, config: TransportConfig
) -> DeliveryStatus:
    """Send ``envelope`` and return its per-recipient status.

    Returns when at least one recipient accepted the message; raises a
    :class:`SendError` (with ``.status`` set) when none did.
    """
    attempts = DeliveryAttempts(envelope)

    def attempt() -> None:
        recipients = attempts.begin()
        try:
            outcome = _deliver_on_lease(lease, envelope, recipients)
        except SendError as exc:
            attempts.record_failure(exc)
            raise
        attempts.record(outcome)

    # Most messages go through at the first attempt: run it without building a
    # retry controller (a tenacity round costs as much as a third of a pooled
    # send). A failure is then handed to the policy as its first attempt, so
    # what is retried, how often, the waits and the log lines stay the same.
    try:
        attempt()
    except SendError as exc:
        first_failure = exc
    else:
        return attempts.finish(None)
    try:
        retrying(config, envelope.message_id)(_replaying(first_failure, attempt))
    except SendError as exc:
        return attempts.finish(exc)
    return attempts.finish(None)


def _replaying(failure: SendError, attempt: Callable[[], None]) -> Callable[[], None]:
    """``attempt``, except that its first call raises ``failure`` (an attempt that
    already ran) instead of running it again."""
    replay = [failure]

    def again() -> None:
        if replay:
            raise replay.pop()
        attempt()

    return again


def _deliver_on_lease(
    lease: Lease, envelope: Envelope, recipients: list[str]
) -> dict[str, RecipientStatus]:
    while True:
        conn, fresh = lease.acquire()
        try:
            outcome = deliver(conn, envelope, recipients)
        except StaleConnection as exc:
            lease.discard()
            if fresh:
                raise failures.closed_before_mail(exc) from None
            logger.debug("Replacing a pooled connection the server had closed")
            continue
        except SendError:
            if lease.connection is not None and lease.connection.sock is None:
                lease.discard()
            raise
        if lease.connection is not None and lease.connection.sock is None:
            lease.discard()
        elif any(s.status == "sent" for s in outcome.values()):
            lease.count_message()
        return outcome
