"""Deliver one envelope over an async lease, with the same policy as the sync one.

The thin aiosmtplib driver of :mod:`.dialogue`, step for step what
:mod:`.sender` does with smtplib: write, read a reply (through
:class:`~.async_protocol.PipeliningProtocol`, which keeps every reply of a
pipelined write), close, take or drop the lease's connection.
"""

from __future__ import annotations

import asyncio

import aiosmtplib

from . import dialogue as talk
from .async_pool import AsyncLease
from .async_protocol import PipeliningProtocol
from .attempts import arun_with_retries
from .config import TransportConfig
from .dialogue import ACQUIRE, CLOSE, DISCARD, Acquired, Read, Reply, Write
from .envelope import Envelope
from .results import DeliveryStatus, RecipientStatus

#: What aiosmtplib and the socket raise when the connection fails.
_BROKEN = (
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
    aiosmtplib.SMTPResponseException,
    OSError,
)


async def asend_envelope(
    envelope: Envelope, lease: AsyncLease, config: TransportConfig
) -> DeliveryStatus:
    """The async twin of :func:`.sender.send_envelope`."""
    return await arun_with_retries(
        envelope,
        config,
        lambda recipients: _drive(talk.attempt(envelope, recipients, config), lease),
    )


async def _drive(
    dialogue: talk.Dialogue, lease: AsyncLease
) -> dict[str, RecipientStatus]:
    """Perform the dialogue's steps until it returns the attempt's outcome."""
    driver = _Driver(lease)
    steps = talk.Stepper(dialogue)
    try:
        for step in steps:
            try:
                steps.answer(await driver.perform(step))
            except _BROKEN as exc:
                timed_out = isinstance(exc, aiosmtplib.SMTPTimeoutError)
                steps.fail(exc, timed_out=timed_out)
    except asyncio.CancelledError:
        # Cancelled mid-transaction, replies may still be on their way: they
        # must never be read as the next message's.
        lease.discard()
        raise
    finally:
        steps.close()
    return steps.outcome


class _Driver:
    """One attempt's I/O on the lease's aiosmtplib connection."""

    __slots__ = ("lease", "protocol", "smtp")

    def __init__(self, lease: AsyncLease) -> None:
        self.lease = lease
        self.smtp: aiosmtplib.SMTP | None = None
        # Kept apart: aiosmtplib lets go of it when the server closes, and
        # replies that arrived before that must still be read.
        self.protocol: PipeliningProtocol | None = None

    async def perform(self, step: talk.Step) -> talk.Answer:
        if type(step) is Read:
            reply = await self._protocol().read_response(step.timeout)
            return Reply(reply.code, reply.message)
        if type(step) is Write:
            self._protocol().send(step.data, replies=step.replies)
        elif step is ACQUIRE:
            self.smtp, fresh = await self.lease.acquire()
            protocol = self.smtp.protocol
            self.protocol = (
                protocol if isinstance(protocol, PipeliningProtocol) else None
            )
            return Acquired(self.smtp.supports_extension, fresh)
        elif step is CLOSE:
            self._smtp().close()
        elif step is DISCARD:
            self.lease.discard()
        elif isinstance(step, talk.Settle):
            await self.lease.settle(step.delivered)
        return None

    def _smtp(self) -> aiosmtplib.SMTP:
        assert self.smtp is not None, "the dialogue acquires before any I/O"
        return self.smtp

    def _protocol(self) -> PipeliningProtocol:
        """The connection's protocol: replies that arrived before the server
        closed are still read from it; a write to it raises."""
        if self.protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("the connection is closed")
        return self.protocol
