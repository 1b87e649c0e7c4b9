"""The bookkeeping of one message across attempts, shared by both senders.

The sync sender (smtplib) and the async one (aiosmtplib) differ only in how an
attempt talks to the server; what is pending, what each recipient's status is,
and which error to raise in the end are decided here, once.
"""

from __future__ import annotations

import logging

from .envelope import Envelope
from .errors import RecipientsRefused, SendError
from .results import DeliveryStatus, RecipientStatus

logger = logging.getLogger("hypermail_django.transport")


class RecipientsDeferred(SendError):
    """Some recipients were deferred this attempt: ask the policy for another."""

    default_code = "recipients_deferred"


class DeliveryAttempts:
    """Who is still pending, and each recipient's latest status."""

    def __init__(self, envelope: Envelope) -> None:
        self.status = DeliveryStatus(message_id=envelope.message_id)
        # Exact duplicates (the same address in To and Bcc) get one RCPT.
        self.pending = list(dict.fromkeys(envelope.recipients))

    def begin(self) -> list[str]:
        """Start an attempt; return the recipients it is for."""
        self.status.attempts += 1
        return self.pending

    def record(self, outcome: dict[str, RecipientStatus]) -> None:
        """Record an attempt that ran to its end; raise to retry the deferred."""
        self.status.recipients.update(outcome)
        self.pending = self._deferred(outcome)
        if self.pending:
            raise RecipientsDeferred(
                f"{len(self.pending)} recipient(s) deferred", transient=True
            )

    def record_failure(self, error: SendError) -> None:
        """Record what a failed attempt still tells about each recipient."""
        if error.attempt_statuses:
            self.status.recipients.update(error.attempt_statuses)
            self.pending = self._deferred(error.attempt_statuses)

    def finish(self, final_error: SendError | None) -> DeliveryStatus:
        """Return the status if anyone accepted the message; raise otherwise."""
        status = self.status
        if final_error is not None and not isinstance(final_error, RecipientsDeferred):
            # The attempt failed as a whole: everyone still pending shares its fate.
            fate = RecipientStatus(
                "deferred" if final_error.transient else "refused",
                final_error.smtp_code,
                str(final_error),
            )
            covered = final_error.attempt_statuses or {}
            for rcpt in self.pending:
                if rcpt not in covered:
                    status.recipients[rcpt] = fate
        _log_undelivered(status)
        if status.sent:
            return status
        error = final_error
        if error is None or isinstance(error, RecipientsDeferred):
            error = _refusal(status)
        error.status = status
        raise error

    def _deferred(self, outcome: dict[str, RecipientStatus]) -> list[str]:
        return [rcpt for rcpt in self.pending if outcome[rcpt].status == "deferred"]


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
