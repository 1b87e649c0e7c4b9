"""``asend_mail`` and ``asend_messages``: Django's module-level helpers, async.

The public sending helpers for async code; the rest live in their rooms
(``bulk``, ``background``, ``compose.templated``, ``auth``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from asgiref.sync import sync_to_async
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.core.mail.backends.base import BaseEmailBackend

from .conf.mailers import get_mailer


async def asend_messages(
    messages: Sequence[EmailMessage],
    using: str | None = None,
    *,
    connection: BaseEmailBackend | None = None,
) -> int:
    """Send ``messages`` from async code; return how many were sent.

    Uses the backend's ``asend_messages`` when it has one (``FluxMailBackend``)
    and otherwise runs its ``send_messages`` in a thread, so Django's locmem
    backend in tests, or any other backend, works too.
    """
    mailer = connection or await sync_to_async(get_mailer)(using)
    asend = getattr(mailer, "asend_messages", None)
    if asend is not None:
        return int(await asend(list(messages)))
    return int(await sync_to_async(mailer.send_messages)(list(messages)) or 0)


async def asend_mail(
    subject: str,
    message: str,
    from_email: str | None,
    recipient_list: Sequence[str],
    *,
    fail_silently: bool = False,
    auth_user: str | None = None,
    auth_password: str | None = None,
    connection: BaseEmailBackend | None = None,
    html_message: str | None = None,
    using: str | None = None,
) -> int:
    """The async twin of Django's ``send_mail``, with the same arguments."""
    if connection is None:
        overrides: dict[str, Any] = {}
        if fail_silently:
            overrides["fail_silently"] = True
        if auth_user is not None:
            overrides["username"] = auth_user
        if auth_password is not None:
            overrides["password"] = auth_password
        connection = await sync_to_async(get_mailer)(using, **overrides)
    email = EmailMultiAlternatives(subject, message, from_email, list(recipient_list))
    if html_message:
        email.attach_alternative(html_message, "text/html")
    return await asend_messages([email], connection=connection)
