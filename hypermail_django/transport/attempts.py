"""The bookkeeping of one message across attempts, shared by both senders.

The sync sender (smtplib) and the async one (aiosmtplib) differ only in how an
attempt talks to the server; what is pending, what each recipient's status is,
when to ask the retry policy, and which error to raise in the end are decided
here, once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from . import failures
from .config import TransportConfig
from .envelope import Envelope
from .errors import RecipientsDeferred, SendError
from .results import DeliveryStatus, RecipientStatus
from .retry import async_retrying, retrying

Outcome = dict[str, RecipientStatus]

logger = logging.getLogger("hypermail_django.transport")


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
            raise failures.recipients_deferred(len(self.pending))

    def record_failure(self, error: SendError) -> None:
        """Record what a failed attempt still tells about each recipient.

        An ``uncertain`` recipient stays pending only when the error is
        transient, which it is only under ``retry_uncertain``.
        """
        if error.attempt_statuses:
            self.status.recipients.update(error.attempt_statuses)
            self.pending = self._deferred(error.attempt_statuses, error.transient)

    def attempt(self, deliver: Callable[[Sequence[str]], Outcome]) -> None:
        """Run one attempt with ``deliver`` and record it (raises to retry)."""
        recipients = self.begin()
        try:
            outcome = deliver(recipients)
        except SendError as exc:
            self.record_failure(exc)
            raise
        self.record(outcome)

    async def aattempt(
        self, deliver: Callable[[Sequence[str]], Awaitable[Outcome]]
    ) -> None:
        """The async twin of :meth:`attempt`."""
        recipients = self.begin()
        try:
            outcome = await deliver(recipients)
        except SendError as exc:
            self.record_failure(exc)
            raise
        self.record(outcome)

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
            error = failures.recipients_refused(status)
        error.status = status
        raise error

    def _deferred(self, outcome: Outcome, uncertain_too: bool = False) -> list[str]:
        again = ("deferred", "uncertain") if uncertain_too else ("deferred",)
        return [rcpt for rcpt in self.pending if outcome[rcpt].status in again]


def run_with_retries(
    envelope: Envelope,
    config: TransportConfig,
    deliver: Callable[[Sequence[str]], Outcome],
) -> DeliveryStatus:
    """Deliver ``envelope`` with ``deliver`` (one attempt to the recipients
    given) under ``config``'s retry policy; return or raise as
    :meth:`DeliveryAttempts.finish` does.

    Most messages go through at the first attempt: it runs without building a
    retry controller (a tenacity round costs as much as a third of a pooled
    send). A failure is then handed to the policy as its first attempt, so
    what is retried, how often, the waits and the log lines stay the same.
    """
    attempts = DeliveryAttempts(envelope)
    try:
        attempts.attempt(deliver)
    except SendError as first:
        controller = retrying(config, envelope.message_id)
        try:
            controller(_replaying(first, lambda: attempts.attempt(deliver)))
        except SendError as last:
            return attempts.finish(last)
    return attempts.finish(None)


async def arun_with_retries(
    envelope: Envelope,
    config: TransportConfig,
    deliver: Callable[[Sequence[str]], Awaitable[Outcome]],
) -> DeliveryStatus:
    """The async twin of :func:`run_with_retries`."""
    attempts = DeliveryAttempts(envelope)
    try:
        await attempts.aattempt(deliver)
    except SendError as first:
        controller = async_retrying(config, envelope.message_id)
        try:
            await controller(_areplaying(first, lambda: attempts.aattempt(deliver)))
        except SendError as last:
            return attempts.finish(last)
    return attempts.finish(None)


def _replaying(failure: SendError, attempt: Callable[[], None]) -> Callable[[], None]:
    """``attempt``, except that its first call raises ``failure`` (an attempt
    that already ran) instead of running it again."""
    replay = [failure]

    def again() -> None:
        if replay:
            raise replay.pop()
        attempt()

    return again


def _areplaying(
    failure: SendError, attempt: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    """:func:`_replaying` for the async controller, which awaits only
    coroutine functions."""
    replay = [failure]

    async def again() -> None:
        if replay:
            raise replay.pop()
        await attempt()

    return again


def _log_undelivered(status: DeliveryStatus) -> None:
    for rcpt, rs in status.recipients.items():
        if rs.status != "sent":
            logger.warning(
                "Message %s: recipient %s %s (%s) after %d attempt(s)",
                status.message_id,
                rcpt,
                rs.status,
                rs.summary,
                status.attempts,
            )
