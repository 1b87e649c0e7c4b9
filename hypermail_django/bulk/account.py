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
from ..transport import DeliveryStatus
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
        self, index: int, message: EmailMessage, status: DeliveryStatus
    ) -> None:
        """A message our transport delivered: record it as the backend would."""
        message.hypermail_status = status
        signals.post_send.send(
            sender=type(self.backend),
            message=message,
            status=status,
            backend=self.backend,
        )
        self.succeeded(index, status)

    def succeeded(self, index: int, status: DeliveryStatus | None) -> None:
        """Count a delivered message (its backend recorded and signalled it)."""
        self.sent += 1
        self.progress.advance(ok=True)
        if self.on_success is not None:
            self.on_success(index, status)

    def failure(
        self, index: int, message: EmailMessage | None, error: Exception
    ) -> None:
        self.failed += 1
        self.errors.append((index, error))
        status = getattr(error, "status", None)
        logger.warning("Bulk message %d was not sent: %s", index, error)
        if message is not None:
            message.hypermail_status = status
            signals.send_failed.send(
                sender=type(self.backend),
                message=message,
                error=error,
                status=status,
                backend=self.backend,
            )
        self.progress.advance(ok=False)
        if self.on_error is not None:
            self.on_error(index, error)

    def result(self) -> BulkResult:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "skipped": self.skipped,
            "total": self.sent + self.failed + self.skipped,
            "errors": self.errors,
        }
