"""Which mailers take a prepared envelope, as a type rather than a hasattr.

A router hands the pending recipients of an envelope to each member in turn.
Our own backends (``FluxMailBackend``, ``RoutingBackend``) take the envelope
as it is; any other backend (Django's, an ESP's, our memory and console ones)
gets a message rebuilt from the envelope's bytes and its ``send_messages()``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..transport import DeliveryStatus, Envelope

__all__ = ["AsyncEnvelopeMailer", "EnvelopeMailer"]


@runtime_checkable
class EnvelopeMailer(Protocol):
    """Sends a prepared envelope and reports each recipient's outcome."""

    def deliver(self, envelope: Envelope) -> DeliveryStatus: ...


@runtime_checkable
class AsyncEnvelopeMailer(Protocol):
    """The async twin: ``adeliver`` without a thread."""

    async def adeliver(self, envelope: Envelope) -> DeliveryStatus: ...
