"""The tally of a bulk send: each message counted exactly once, in one place.

Shared by ``send_bulk`` and ``asend_bulk``. Runs in the caller's thread (or on
its event loop), so ``on_success``/``on_error`` callbacks and signal receivers
never run on a sender thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypedDict

from django.core.mail import EmailMessage

from .. import signals
from ..transport import DeliveryStatus, Envelope
from .progress import BulkProgress

logger = logging.getLogger("hypermail_django.bulk")


class BulkResult(TypedDict):
    """What ``send_bulk`` returns: FluxMail's ``BulkSender`` result, plus
    ``skipped`` (no recipients, or cancelled by ``pre_send``)."""

    sent: int
    failed: int
    skipped: int
    total: int
    errors: list[tuple[int, Exception]]


OnSuccess = Callable[[int, DeliveryStatus | None], Any]
OnError = Callable[[int, Exception], Any]


class BulkAccount:
    """Counts outcomes, records status on messages, fires signals and callbacks."""

    def __init__(
        self,
        backend: Any,
        progress: BulkProgress,
        on_success: OnSuccess | None,
        on_error: OnError | None,
    ) -> None:
        self.backend = backend
        self.progress = progress
        self.on_success = on_success
        self.on_error = on_error
        self.sent = 0
        self.failed = 0
        self.skipped = 0
        self.errors: list[tuple[int, Exception]] = []

    def skip(self, index: int) -> None:
        self.skipped += 1
        self.progress.advance(ok=True)

    def success(
        self,
        index: int,
        message: EmailMessage,
        status: DeliveryStatus,
        envelope: Envelope | None = None,
    ) -> None:
        """A message our transport delivered: record it as the backend would."""
        message.hypermail_status = status
        signals.post_send.send(**self._sent_signal(message, status, envelope))
        self.count_success(index, status)

    async def asuccess(
        self,
        index: int,
        message: EmailMessage,
        status: DeliveryStatus,
        envelope: Envelope | None = None,
    ) -> None:
        """:meth:`success` on an event loop: async receivers are awaited."""
        message.hypermail_status = status
        await signals.post_send.asend(**self._sent_signal(message, status, envelope))
        self.count_success(index, status)

    def count_success(self, index: int, status: DeliveryStatus | None) -> None:
        """Count a delivered message (its backend recorded and signalled it)."""
        self.sent += 1
        self.progress.advance(ok=True)
        if self.on_success is not None:
            self.on_success(index, status)

    def failure(
        self,
        index: int,
        message: EmailMessage,
        error: Exception,
        envelope: Envelope | None = None,
    ) -> None:
        """A message that was not sent: count, record, signal and report it."""
        self._record_failure(message, error)
        signals.send_failed.send(**self._failed_signal(message, error, envelope))
        self.count_failure(index, error)

    async def afailure(
        self,
        index: int,
        message: EmailMessage,
        error: Exception,
        envelope: Envelope | None = None,
    ) -> None:
        """:meth:`failure` on an event loop."""
        self._record_failure(message, error)
        await signals.send_failed.asend(**self._failed_signal(message, error, envelope))
        self.count_failure(index, error)

    def count_failure(self, index: int, error: Exception) -> None:
        """Count a message that was not sent (already recorded and signalled)."""
        self.failed += 1
        self.errors.append((index, error))
        self.progress.advance(ok=False)
        if self.on_error is not None:
            self.on_error(index, error)

    def _record_failure(self, message: EmailMessage, error: Exception) -> None:
        logger.warning("Bulk message was not sent: %s", error)
        message.hypermail_status = getattr(error, "status", None)

    def _sent_signal(
        self,
        message: EmailMessage,
        status: DeliveryStatus,
        envelope: Envelope | None,
    ) -> dict[str, Any]:
        return {
            "sender": type(self.backend),
            "message": message,
            "status": status,
            "backend": self.backend,
            "envelope": envelope,
        }

    def _failed_signal(
        self, message: EmailMessage, error: Exception, envelope: Envelope | None
    ) -> dict[str, Any]:
        return {
            "sender": type(self.backend),
            "message": message,
            "error": error,
            "status": getattr(error, "status", None),
            "backend": self.backend,
            "envelope": envelope,
        }

    def result(self) -> BulkResult:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "skipped": self.skipped,
            "total": self.sent + self.failed + self.skipped,
            "errors": self.errors,
        }
