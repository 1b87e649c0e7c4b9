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

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from asgiref.sync import sync_to_async
from django.core.mail import EmailMessage

from ..exceptions import SendError
from ..transport import DeliveryStatus, Envelope
from ..transport.async_pool import AsyncLease, aleased
from ..transport.async_sender import asend_envelope
from .limits import MailerLimits, ahold
from .outcome import adeliver_each

if TYPE_CHECKING:
    from ..transport import TransportConfig

#: What :meth:`AsyncSendingMixin.adelivery_session` yields.
ADeliverEnvelope = Callable[[Envelope], Awaitable[DeliveryStatus]]


class AsyncSendingMixin:
    """Adds the ``a``-prefixed twins to :class:`~.smtp.FluxMailBackend`."""

    if TYPE_CHECKING:  # Provided by FluxMailBackend.
        fail_silently: bool
        limits: MailerLimits | None

        @property
        def mailer_name(self) -> str: ...

        @property
        def transport_config(self) -> TransportConfig: ...

        def _naming_failures(self) -> contextlib.AbstractContextManager[None]: ...

        def _accepted(
            self, status: DeliveryStatus, envelope: Envelope
        ) -> DeliveryStatus: ...

        def _prepare_all(
            self, email_messages: Sequence[EmailMessage]
        ) -> list[tuple[EmailMessage, Envelope | None]]: ...

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
        async with aleased(config) as lease:
            return await adeliver_each(
                self,
                prepared,
                lambda _message, envelope: self._asend(envelope, lease, config),
                (SendError,),
            )

    async def adeliver(self, envelope: Envelope) -> DeliveryStatus:
        """The async twin of ``deliver``: send a prepared envelope."""
        config = self.transport_config
        async with aleased(config) as lease:
            return await self._asend(envelope, lease, config)

    @contextlib.asynccontextmanager
    async def adelivery_session(
        self, *, pace: bool = False
    ) -> AsyncIterator[ADeliverEnvelope]:
        """The async twin of ``delivery_session``: one connection of the
        running loop's pool, for one task of a concurrent sender (``asend_bulk``)."""
        config = self.transport_config
        async with aleased(config) as lease:
            yield functools.partial(self._asend, lease=lease, config=config, pace=pace)

    async def _asend(
        self,
        envelope: Envelope,
        lease: AsyncLease,
        config: TransportConfig,
        pace: bool = False,
    ) -> DeliveryStatus:
        with self._naming_failures():
            async with ahold(self.limits, pace=pace):
                status = await asend_envelope(envelope, lease, config)
        return self._accepted(status, envelope)
