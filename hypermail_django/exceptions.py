"""Every exception hypermail-django raises, importable from one place.

All derive from :class:`FluxMailException`, whose ``code`` is stable (see
``docs/errors.md``). Errors raised while sending also derive from
``smtplib.SMTPException``; configuration errors from Django's
``ImproperlyConfigured`` and ``ValueError`` (what Django's backend raises).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from .transport.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    ConnectionLost,
    DataRefused,
    FluxMailException,
    RecipientsRefused,
    SenderRefused,
    SendError,
    SMTPUTF8Unsupported,
    TLSFailed,
)

__all__ = [
    "AuthenticationFailed",
    "CancelSend",
    "ConfigurationError",
    "ConnectionFailed",
    "ConnectionLost",
    "DataRefused",
    "FluxMailException",
    "InvalidEmail",
    "RecipientsRefused",
    "SMTPUTF8Unsupported",
    "SendError",
    "SenderRefused",
    "TLSFailed",
]


class ConfigurationError(FluxMailException, ImproperlyConfigured, ValueError):
    """A setting or option has a value we cannot use; the message names it."""

    default_code = "invalid_config"


class InvalidEmail(FluxMailException, ValueError):
    """An address cannot be used on the envelope (bad syntax, CR/LF injection)."""

    default_code = "invalid_email"


class CancelSend(Exception):
    """Raise from a ``pre_send`` receiver to skip a message without an error."""
