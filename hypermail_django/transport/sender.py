"""Deliver one envelope over a lease, retrying what can be retried.

Recipients that a server defers (4xx at RCPT) are retried alone: recipients it
already accepted are never sent the message twice. A connection the server
dropped while idle is replaced at once and does not count as an attempt.
"""

from __future__ import annotations

import logging

from .config import TransportConfig
from .connection import StaleConnection, deliver
from .envelope import Envelope
from .errors import ConnectionLost, RecipientsRefused, SendError
from .pool import Lease
from .results import DeliveryStatus, RecipientStatus
from .retry import retrying

logger = logging.getLogger("hypermail_django.transport")


class _RecipientsDeferred(SendError):
    """Some recipients were deferred this attempt: ask the policy for another."""

    default_code = "recipients_deferred"


def send_envelope(
    envelope: Envelope, lease: Lease, config: TransportConfig
) -> DeliveryStatus:
    """Send ``envelope`` and return its per-recipient status.

    Returns when at least one recipient accepted the message; raises a
    :class:`SendError` (with ``.status`` set) when none did.
    """
    status = DeliveryStatus(message_id=envelope.message_id)
    pending = list(dict.fromkeys(envelope.recipients))

    def attempt() -> None:
        nonlocal pending
        status.attempts += 1
        try:
            outcome = _deliver_on_lease(lease, envelope, pending)
        except SendError as exc:
            if exc.attempt_statuses:
                status.recipients.update(exc.attempt_statuses)
                pending = _still_deferred(pending, exc.attempt_statuses)
            raise
        status.recipients.update(outcome)
        pending = _still_deferred(pending, outcome)
        if pending:
            raise _RecipientsDeferred(
                f"{len(pending)} recipient(s) deferred", transient=True
            )

    final_error: SendError | None = None
    try:
        retrying(config, envelope.message_id)(attempt)
    except SendError as exc:
        final_error = exc

    if final_error is not None and not isinstance(final_error, _RecipientsDeferred):
        # The attempt failed as a whole: everyone still pending shares its fate.
        fate = RecipientStatus(
            "deferred" if final_error.transient else "refused",
            final_error.smtp_code,
            str(final_error),
        )
        covered = final_error.attempt_statuses or {}
        for rcpt in pending:
            if rcpt not in covered:
                status.recipients[rcpt] = fate

    _log_undelivered(status)
    if status.sent:
        return status
    error = final_error
    if error is None or isinstance(error, _RecipientsDeferred):
        error = _refusal(status)
    error.status = status
    raise error


def _still_deferred(
    pending: list[str], outcome: dict[str, RecipientStatus]
) -> list[str]:
    return [rcpt for rcpt in pending if outcome[rcpt].status == "deferred"]


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
                raise ConnectionLost(
                    f"The server closed a new connection before MAIL FROM: {exc}",
                    transient=True,
                ) from None
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


def _refusal(status: DeliveryStatus) -> RecipientsRefused:
    recipients = {
        rcpt: (rs.code or 0, rs.reply.encode("utf-8", "replace"))
        for rcpt, rs in status.recipients.items()
    }
    all_deferred = all(rs.status == "deferred" for rs in status.recipients.values())
    details = "; ".join(
        f"{rcpt}: {rs.code} {rs.reply}" for rcpt, rs in status.recipients.items()
    )
    return RecipientsRefused(
        f"No recipient accepted message {status.message_id} ({details})",
        code="recipients_deferred" if all_deferred else "recipients_refused",
        recipients=recipients,
        transient=all_deferred,
    )


def _log_undelivered(status: DeliveryStatus) -> None:
    for rcpt, rs in status.recipients.items():
        if rs.status != "sent":
            logger.warning(
                "Message %s: recipient %s %s (%s %s) after %d attempt(s)",
                status.message_id,
                rcpt,
                rs.status,
                rs.code,
                rs.reply,
                status.attempts,
            )
