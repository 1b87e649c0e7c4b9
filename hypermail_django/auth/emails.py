"""The password-reset email: a templated HTML+text email carrying the link.

Templates (override any of them in your project's templates)::

    hypermail_django/password_reset/email/subject.txt
    hypermail_django/password_reset/email/body.txt
    hypermail_django/password_reset/email/body.html

Their context: ``user``, ``reset_url``, ``uid``, ``token``, ``site_name``,
``domain``, ``valid_for`` (``PASSWORD_RESET_TIMEOUT`` in words, such as
"3 days") and ``timeout`` (in seconds).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone, translation
from django.utils.timesince import timesince
from django.views.decorators.debug import sensitive_variables

from ..compat import MAILERS_SUPPORTED
from ..compose.message import HypermailMessage
from ..compose.templated import RenderedEmail, TemplatedEmail
from ..conf.password_reset import get_settings
from ..exceptions import ConfigurationError
from .links import absolute_url_template, format_reset_url
from .tokens import can_reset_password, generate_reset_token

__all__ = ["EMAIL_TEMPLATE", "password_reset_message", "send_password_reset_email"]

#: The templated email's name: the folder holding its three templates.
EMAIL_TEMPLATE = "hypermail_django/password_reset/email"

logger = logging.getLogger("hypermail_django.auth")


class PasswordResetEmail(TemplatedEmail):
    """The templated reset email, whose subject a caller may replace."""

    def __init__(
        self,
        context: Mapping[str, Any],
        *,
        subject: str | None = None,
        language: str | None = None,
    ) -> None:
        super().__init__(EMAIL_TEMPLATE, context, language=language)
        self.subject = subject

    def render(self, extra_context: Mapping[str, Any] | None = None) -> RenderedEmail:
        if self.subject is None:
            return super().render(extra_context)
        # The bodies see the replacement too (the HTML layout's <title>).
        subject = " ".join(self.subject.split())  # one line: no header injection
        rendered = super().render({**(extra_context or {}), "subject": subject})
        return dataclasses.replace(rendered, subject=subject)


@sensitive_variables("reset_token", "reset_url", "context")
def password_reset_message(
    user: Any,
    *,
    reset_url_template: str,
    from_email: str | None = None,
    subject: str | None = None,
    request: Any = None,
    language: str | None = None,
) -> HypermailMessage:
    """Build (not send) the reset email for ``user``, with a fresh token.

    ``reset_url_template`` holds ``{uid}`` and ``{token}``; a path gets its
    scheme and host from ``HYPERMAIL_PASSWORD_RESET_BASE_URL`` or ``request``
    (see ``links.py``). ``from_email`` None means
    ``HYPERMAIL_PASSWORD_RESET_FROM_EMAIL``, then ``DEFAULT_FROM_EMAIL``;
    ``subject`` None means the subject template. ``language`` renders the
    email in that language (default: the active one).
    """
    conf = get_settings()
    template = absolute_url_template(reset_url_template, request)
    reset_token = generate_reset_token(user)
    reset_url = format_reset_url(template, reset_token)
    domain = urlsplit(reset_url).hostname or ""
    timeout = int(settings.PASSWORD_RESET_TIMEOUT)
    with translation.override(language) if language else contextlib.nullcontext():
        now = timezone.now()
        valid_for = timesince(now, now + timedelta(seconds=timeout), depth=1)
    context = {
        "user": user,
        "reset_url": reset_url,
        "uid": reset_token.uid,
        "token": reset_token.token,
        "site_name": conf.site_name or domain,
        "domain": domain,
        "valid_for": valid_for,
        "timeout": timeout,
    }
    email = PasswordResetEmail(context, subject=subject, language=language)
    address = getattr(user, user.get_email_field_name())
    return email.message([address], from_email=from_email or conf.from_email)


def send_password_reset_email(
    user: Any,
    *,
    reset_url_template: str,
    from_email: str | None = None,
    subject: str | None = None,
    request: Any = None,
    using: str | None = None,
    language: str | None = None,
) -> int:
    """Send ``user`` a reset email now, through the mailer ``using``.

    Returns the number of messages sent: 1, or 0 when ``user`` may not reset a
    password (inactive, no usable password, or no email address) -- such
    users never get a reset email. ``using`` None means
    ``HYPERMAIL_PASSWORD_RESET_MAILER``, then the default mailer. For the
    other arguments see :func:`password_reset_message`.

    This sends in the calling thread. The views never call it in the
    request; they hand the address to a background job (``delivery.py``).
    """
    if not can_reset_password(user):
        logger.info(
            "No password reset email for user %s: inactive, without a usable "
            "password, or without an email address.",
            user.pk,
        )
        return 0
    message = password_reset_message(
        user,
        reset_url_template=reset_url_template,
        from_email=from_email,
        subject=subject,
        request=request,
        language=language,
    )
    alias = using or get_settings().mailer
    sent = _send(message, alias)
    logger.info("Password reset email sent to user %s.", user.pk)
    return sent


def _send(message: HypermailMessage, using: str | None) -> int:
    if using is None:
        return int(message.send())
    if not MAILERS_SUPPORTED:
        raise ConfigurationError(
            f"The password reset mailer {using!r} (using= or "
            "HYPERMAIL_PASSWORD_RESET_MAILER) names a MAILERS alias, which needs "
            "Django 6.1+. Leave it unset to use the default mailer.",
            code="unknown_mailer",
        )
    return int(message.send(using=using))
