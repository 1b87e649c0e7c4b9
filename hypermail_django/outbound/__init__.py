"""Outbound policies: what a mailer does to every message on its way out.

A mailer's ``defaults``, ``allowed_recipients``/``redirect_to`` and ``dkim``
options are applied in one place, :meth:`OutboundPolicy.prepare` (called by
``PreparingBackendMixin.serialize``), which every sending path goes through:
sync, async, bulk (in its worker processes too) and background delivery, and
the memory and console backends, so tests see what production sends.

Order: defaults (they may set the sender), then the recipient policy, then
serialization, then DKIM over the final bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from django.core.mail import EmailMessage

from ..transport import Envelope
from .defaults import MailerDefaults
from .dkim import DKIMKey, sign_envelope
from .recipients import RecipientPolicy, record_suppressed, suppressed_status

__all__ = [
    "OutboundPolicy",
    "record_suppressed",
    "suppressed_status",
]


@dataclass(frozen=True)
class OutboundPolicy:
    """The checked policy options of one mailer (hashable and picklable, so bulk
    worker processes get them with each chunk and cache them)."""

    defaults: MailerDefaults | None = None
    recipients: RecipientPolicy = field(default_factory=RecipientPolicy)
    dkim: tuple[DKIMKey, ...] | None = None

    def __bool__(self) -> bool:
        return bool(self.defaults or self.recipients.active or self.dkim)

    def nobody_left(self, message: EmailMessage) -> bool:
        """True when the recipient policy suppresses every recipient."""
        return self.recipients.nobody_left(message)

    def prepare(
        self,
        message: EmailMessage,
        build: Callable[[EmailMessage], Envelope | None],
    ) -> Envelope | None:
        """Apply the policies around ``build`` (which serializes a message).

        ``message`` itself is never changed: defaults and the recipient policy
        work on a copy when they change anything.
        """
        if not self:
            return build(message)
        outgoing = message
        if self.defaults is not None:
            outgoing = self.defaults.apply(outgoing)
        outgoing, suppressed = self.recipients.apply(outgoing)
        envelope = build(outgoing)
        if envelope is None:
            return None
        if suppressed:
            envelope = replace(envelope, suppressed=suppressed)
        if self.dkim:
            envelope = sign_envelope(envelope, outgoing, self.dkim)
        return envelope
