"""What every backend of ours shares: the one way a message is prepared.

``FluxMailBackend``, ``MemoryBackend`` and ``ConsoleBackend`` turn a Django
message into an :class:`~hypermail_django.transport.Envelope` the same way --
``pre_send``, CSS inlining when the ``css_inline`` option is on, the outbound
policies (``defaults``, ``allowed_recipients``/``redirect_to``, ``dkim``; see
:mod:`hypermail_django.outbound`), address validation, serialization -- so a
test against the memory backend sees the bytes production would send. Only
what happens to the envelope differs: SMTP, an in-memory outbox, a stream.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

from .. import signals
from ..compat import init_base_backend
from ..compose.css import Inliner, inline_message
from ..conf.mailer_options import PREPARATION_OPTIONS, resolve_preparation_options
from ..exceptions import CancelSend
from ..outbound import OutboundPolicy, record_suppressed, suppressed_status
from ..outbound.recipients import RecipientPolicy
from ..serialization.envelope_builder import build_envelope, prep_address
from ..transport import DeliveryStatus, Envelope, RecipientStatus
from .outcome import deliver_each

#: What a mailer without any outbound policy applies: nothing, at no cost.
NO_POLICY = OutboundPolicy()


class PreparingBackendMixin:
    """``prepare()``: validate, run ``pre_send``, inline CSS, serialize.

    A backend using it sets ``css_inline`` and ``css_inliner`` (resolved by
    ``conf/mailer_options.py``) before sending.
    """

    css_inline: bool = False
    css_inliner: str | Inliner = "css_inline"
    # The outbound policies (checked values from conf/mailer_options.py; see outbound/).
    defaults: Any = None
    allowed_recipients: Any = None
    redirect_to: Any = None
    dkim: Any = None

    def set_preparation_options(self, resolved: dict[str, Any]) -> None:
        """Take the resolved preparation options (``PREPARATION_OPTIONS``)."""
        for name in PREPARATION_OPTIONS:
            setattr(self, name, resolved[name])

    @property
    def outbound_policy(self) -> OutboundPolicy:
        """This mailer's outbound policies, from its attributes at call time
        (none configured, the most common case: one shared empty policy)."""
        if self.allowed_recipients is None and not (
            self.defaults or self.redirect_to or self.dkim
        ):
            return NO_POLICY
        return OutboundPolicy(
            defaults=self.defaults,
            recipients=RecipientPolicy(
                allowed=self.allowed_recipients, redirect_to=self.redirect_to or ()
            ),
            dkim=self.dkim,
        )

    def prep_address(self, address: Any, force_ascii: bool = True) -> str:
        return prep_address(address, force_ascii=force_ascii)

    def prepare(self, message: EmailMessage) -> Envelope | None:
        """Validate and serialize ``message`` into the envelope that would be sent.

        Runs ``pre_send`` first, then inlines CSS when the backend's
        ``css_inline`` option is on. Returns None when there is nothing to send
        (no recipients, or a receiver cancelled it). Raises ``InvalidEmail``
        for an unusable address. Background and bulk sending call this once,
        then ``deliver()`` later or elsewhere.
        """
        return self.serialize(message) if self.announce(message) else None

    def announce(self, message: EmailMessage) -> bool:
        """The first half of :meth:`prepare`: is there anyone to send to, and do
        the ``pre_send`` receivers let it go? A message whose every recipient
        the staging allowlist keeps back gets a ``suppressed`` status here.
        (Bulk sending announces in the caller's process and serializes in
        worker processes.)"""
        if not message.recipients():
            return False
        try:
            signals.pre_send.send(sender=type(self), message=message, backend=self)
        except CancelSend:
            message.hypermail_status = DeliveryStatus(cancelled=True)
            return False
        if self.outbound_policy.nobody_left(message):
            # A staging allowlist keeps every recipient back: nothing to send.
            message.hypermail_status = suppressed_status(message)
            return False
        return True

    def serialize(self, message: EmailMessage) -> Envelope | None:
        """The second half of :meth:`prepare`: inline CSS, apply the outbound
        policies (defaults, allowed recipients, DKIM), validate, serialize."""
        self.inline_css(message)
        return self.outbound_policy.prepare(message, self._build_envelope)

    def _build_envelope(self, message: EmailMessage) -> Envelope | None:
        return build_envelope(message, self.prep_address)

    def inline_css(self, message: EmailMessage) -> bool:
        """Inline the CSS of ``message``'s HTML when this backend is told to.

        Skipped for a message already inlined (``HypermailMessage(css_inline=True)``
        or an earlier send) and for one that opted out with
        ``css_inline=False``. Returns whether the HTML changed.
        """
        if not self.css_inline or getattr(message, "css_inline", None) is False:
            return False
        return inline_message(message, self.css_inliner)

    def _prepare_all(
        self, email_messages: Sequence[EmailMessage]
    ) -> list[tuple[EmailMessage, Envelope | None]]:
        """Prepare a whole batch before sending any of it: one invalid message
        stops the batch with nothing half-sent."""
        return [(message, self.prepare(message)) for message in email_messages]


class LocalBackend(PreparingBackendMixin, BaseEmailBackend):
    """Base of the backends that keep mail on this machine (memory, console).

    Takes the preparation options (``css_inline``, ``css_inliner``) as keyword
    arguments, from ``MAILERS`` ``OPTIONS`` (Django 6.1) or from the
    ``EMAIL_FLUXMAIL_*`` settings. The SMTP options (``host``, ``password``...)
    are accepted and ignored, so switching a mailer's ``BACKEND`` to one of
    these is enough; any other keyword is a ``ConfigurationError``.

    Each message that is recorded counts as accepted by every recipient:
    ``message.hypermail_status`` says ``sent`` with code 250 and
    :attr:`accepted_reply`, and ``post_send`` fires, as after SMTP delivery.
    """

    #: The reply recorded for every recipient in ``hypermail_status``.
    accepted_reply = "2.0.0 Accepted"

    def __init__(self, fail_silently: bool = False, **options: Any) -> None:
        alias = options.pop("alias", None)
        ignored = options.pop("_ignore_unknown_kwargs", None) or ()
        resolved = resolve_preparation_options(
            options, alias=alias, ignore=ignored, backend=type(self).__name__
        )
        init_base_backend(self, alias=alias, fail_silently=fail_silently)
        self.fail_silently = fail_silently
        self.set_preparation_options(resolved)
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        name = f" {self.alias!r}" if self.alias else ""
        return f"<{type(self).__name__}{name}>"

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Record messages; return how many had at least one recipient.

        Every message is prepared before the first is recorded, so an invalid
        address stops the batch with nothing recorded (whatever
        ``fail_silently`` says, as for ``FluxMailBackend``). A message that
        cannot be recorded (a closed stream) fails as an SMTP send does:
        ``send_failed``, then raised unless ``fail_silently``.
        """
        if not email_messages:
            return 0
        prepared = self._prepare_all(email_messages)
        return deliver_each(self, prepared, self._keep, (Exception,))

    def _keep(self, message: EmailMessage, envelope: Envelope) -> DeliveryStatus:
        """Record one prepared message; return its status (every recipient
        accepted)."""
        with self._lock:
            self.record(message, envelope)
        status = DeliveryStatus(
            message_id=envelope.message_id,
            attempts=1,
            recipients={
                address: RecipientStatus("sent", 250, self.accepted_reply)
                for address in envelope.recipients
            },
            mailer=self.alias or "default",
        )
        return record_suppressed(status, envelope)

    def record(self, message: EmailMessage, envelope: Envelope) -> None:
        """Keep one prepared message (subclasses: store it, print it...)."""
        raise NotImplementedError
