"""The async half of ``FluxMailBackend``: ``asend_messages`` and ``adeliver``.

Django has no async mail API; an async view would otherwise wrap ``send_mail``
in a thread. These methods prepare messages exactly as the sync path does (in a
worker thread, since serialization is CPU work and ``pre_send`` receivers may
touch the database), then speak SMTP with aiosmtplib on the running loop,
through a per-loop pool, under the same retry policy, recording the same
``hypermail_status`` and sending the same signals (``asend``, so async
receivers are awaited).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async
from django.core.mail import EmailMessage

from .. import signals
from ..exceptions import SendError
from ..limits import MailerLimits, ahold
from ..outbound import record_suppressed
from ..transport import DeliveryStatus, Envelope
from ..transport.async_pool import AsyncLease, get_async_pool
from ..transport.async_sender import asend_envelope

if TYPE_CHECKING:
    from ..transport import TransportConfig

logger = logging.getLogger("hypermail_django")


class AsyncSendingMixin:
    """Adds the ``a``-prefixed twins to :class:`~.smtp.FluxMailBackend`."""

    if TYPE_CHECKING:  # Provided by FluxMailBackend.
        fail_silently: bool
        limits: MailerLimits | None

        @property
        def mailer_name(self) -> str: ...

        @property
        def transport_config(self) -> TransportConfig: ...

        def _prepare_all(
            self, email_messages: Sequence[EmailMessage]
        ) -> list[tuple[EmailMessage, Envelope | None]]: ...

        def _record_failure(
            self, message: EmailMessage, envelope: Envelope, error: SendError
        ) -> DeliveryStatus: ...

    async def asend_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Send messages; return how many were accepted for at least one recipient.

        The async twin of ``send_messages``: every message is validated and
        serialized before the first is sent. A connection held by ``open()``
        is not used (it belongs to sync code); the loop's pool is.
        """
        if not email_messages:
            return 0
        prepared = await sync_to_async(self._prepare_all)(email_messages)
        config = self.transport_config
        lease = AsyncLease(get_async_pool(config))
        sent = 0
        try:
            for message, envelope in prepared:
                if envelope is None:
                    continue
                try:
                    async with ahold(self.limits):
                        status = await asend_envelope(envelope, lease, config)
                except SendError as error:
                    status = self._record_failure(message, envelope, error)
                    await signals.send_failed.asend(
                        sender=type(self),
                        message=message,
                        error=error,
                        status=status,
                        backend=self,
                        envelope=envelope,
                    )
                    if self.fail_silently:
                        continue
                    raise
                message.hypermail_status = record_suppressed(status, envelope)
                status.mailer = self.mailer_name
                await signals.post_send.asend(
                    sender=type(self),
                    message=message,
                    status=status,
                    backend=self,
                    envelope=envelope,
                )
                sent += 1
        finally:
            await lease.release()
        return sent

    async def adeliver(self, envelope: Envelope) -> DeliveryStatus:
        """The async twin of ``deliver``: send a prepared envelope."""
        config = self.transport_config
        lease = AsyncLease(get_async_pool(config))
        try:
            async with ahold(self.limits):
                status = await asend_envelope(envelope, lease, config)
        except SendError as error:
            if error.status is not None:
                error.status.mailer = self.mailer_name
            raise
        finally:
            await lease.release()
        status = record_suppressed(status, envelope)
        status.mailer = self.mailer_name
        return status
