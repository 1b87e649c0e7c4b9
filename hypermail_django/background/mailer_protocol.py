"""``PreparingMailer``: what background delivery needs of a mailer.

The mailer is found by :func:`hypermail_django.conf.mailers.get_mailer`, in the
request and again in the worker."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ..transport import DeliveryStatus, Envelope


@runtime_checkable
class PreparingMailer(Protocol):
    """A mailer that serializes once and sends later: ``FluxMailBackend``.

    Background delivery calls ``prepare()`` (``pre_send``, CSS inlining,
    checks, serialization) in the request and ``deliver()`` in the worker.
    Any other mailer -- Django's locmem under the test runner, our memory and
    console backends, an ESP backend -- has its addresses checked and the
    message serialized in the request, then gets the message rebuilt from its
    bytes and handed to its ``send_messages()`` in the worker, which runs
    whatever that backend runs (``pre_send`` included, once).
    """

    def prepare(self, message: Any) -> Envelope | None: ...

    def deliver(self, envelope: Envelope) -> DeliveryStatus: ...
