"""The tally of a bulk send: each message counted exactly once, in one place.

Shared by ``send_bulk`` and ``asend_bulk``. Each message's status and signal
are recorded by :mod:`hypermail_django.backends.outcome`, as for every other
way of sending. Runs in the caller's thread (or on
its event loop), so ``on_success``/``on_error`` callbacks and signal receivers
never run on a sender thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypedDict

from django.core.mail import EmailMessage

from ..backends import outcome
from ..transport import DeliveryStatus, Envelope
from .progress import BulkProgress


class BulkResult(TypedDict):
    """What ``send_bulk`` returns: FluxMail's ``BulkSender`` result, plus
    ``skipped`` (no recipients, or cancelled by ``pre_send``) and
    ``suppressed`` (recipients a staging policy kept from the server)."""

    sent: int
    failed: int
    skipped: int
    total: int
    errors: list[tuple[int, Exception]]
    suppressed: int


OnSuccess = Callable[[int, DeliveryStatus | None], Any]
OnError = Callable[[int, Exception], Any]


class BulkAccount:
    """Counts outcomes, has them recorded, runs the callbacks."""

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
        self.suppressed = 0
        self.errors: list[tuple[int, Exception]] = []

    def skip(self, index: int, message: EmailMessage) -> None:
        """Count a message with nobody to send to (or cancelled)."""
        self.skipped += 1
        self._count_suppressed(getattr(message, "hypermail_status", None))
        self.progress.advance(ok=True)

    def _count_suppressed(self, status: DeliveryStatus | None) -> None:
        if status is not None:
            self.suppressed += len(status.suppressed)

    def success(
        self,
        index: int,
        message: EmailMessage,
        status: DeliveryStatus,
        envelope: Envelope | None = None,
    ) -> None:
        """A message our transport delivered: record it as the backend would."""
        outcome.succeeded(self.backend, message, status, envelope)
        self.count_success(index, status)

    async def asuccess(
        self,
        index: int,
        message: EmailMessage,
        status: DeliveryStatus,
        envelope: Envelope | None = None,
    ) -> None:
        """:meth:`success` on an event loop: async receivers are awaited."""
        await outcome.asucceeded(self.backend, message, status, envelope)
        self.count_success(index, status)

    def count_success(self, index: int, status: DeliveryStatus | None) -> None:
        """Count a delivered message (its backend recorded and signalled it)."""
        self.sent += 1
        self._count_suppressed(status)
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
        outcome.failed(self.backend, message, error, envelope, level=logging.WARNING)
        self.count_failure(index, error)

    async def afailure(
        self,
        index: int,
        message: EmailMessage,
        error: Exception,
        envelope: Envelope | None = None,
    ) -> None:
        """:meth:`failure` on an event loop."""
        await outcome.afailed(
            self.backend, message, error, envelope, level=logging.WARNING
        )
        self.count_failure(index, error)

    def count_failure(self, index: int, error: Exception) -> None:
        """Count a message that was not sent (already recorded and signalled)."""
        self.failed += 1
        self._count_suppressed(getattr(error, "status", None))
        self.errors.append((index, error))
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
            "suppressed": self.suppressed,
        }
