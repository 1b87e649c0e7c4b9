"""Every exception hypermail-django raises, importable from one place.

All derive from :class:`FluxMailException`, whose ``code`` is stable (see
``docs/errors.md``). Errors raised while sending also derive from
``smtplib.SMTPException``; configuration errors from Django's
``ImproperlyConfigured`` and ``ValueError`` (what Django's backend raises).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import django.core.mail
from django.core.exceptions import ImproperlyConfigured

from .transport.errors import (
    AuthenticationFailed,
    AuthUnsupported,
    CertificateFailed,
    ClientCertificateMissing,
    ClientCertificateUnusable,
    ConnectionFailed,
    ConnectionLost,
    ConnectionRefused,
    ConnectTimeout,
    DataRefused,
    DeliveryUncertain,
    FluxMailException,
    GreetingRefused,
    RecipientsRefused,
    ReplyTimeout,
    SenderRefused,
    SendError,
    SMTPUTF8Unsupported,
    TLSFailed,
    TLSHandshakeFailed,
    TLSRefused,
    TLSUnavailable,
)
from .transport.probe import ProbeFailed

if TYPE_CHECKING:
    from .compose.template_errors import TemplateNotFound

__all__ = [
    "AttachmentNotFound",
    "AttachmentReadError",
    "AuthUnsupported",
    "AuthenticationFailed",
    "CSSInlineError",
    "CancelSend",
    "CertificateFailed",
    "ClientCertificateMissing",
    "ClientCertificateUnusable",
    "ConfigurationError",
    "ConnectTimeout",
    "ConnectionFailed",
    "ConnectionLost",
    "ConnectionRefused",
    "DKIMDomainMismatch",
    "DKIMSigningError",
    "DataRefused",
    "DeliveryUncertain",
    "FluxMailException",
    "GreetingRefused",
    "InvalidEmail",
    "InvalidMessage",
    "InvalidPriority",
    "MailerConfigurationError",
    "ProbeFailed",
    "RateLimited",
    "RecipientsRefused",
    "ReplyTimeout",
    "SMTPUTF8Unsupported",
    "SendError",
    "SenderRefused",
    "TLSFailed",
    "TLSHandshakeFailed",
    "TLSRefused",
    "TLSUnavailable",
    "TemplateNotFound",
]


class RateLimited(SendError):
    """A mailer's ``max_per_*`` or ``max_connections`` limit was reached and
    stayed reached for ``limit_wait`` seconds. Nothing was sent; transient."""

    default_code = "rate_limited"

    def __init__(self, message: str) -> None:
        SendError.__init__(self, message, transient=True)


class ConfigurationError(FluxMailException, ImproperlyConfigured, ValueError):
    """A setting or option has a value we cannot use; the message names it."""

    default_code = "invalid_config"


#: What Django 6.1+ raises for a bad MAILERS entry (5.2/6.0 have no MAILERS).
_InvalidMailer: Any = getattr(django.core.mail, "InvalidMailer", ImproperlyConfigured)


class MailerConfigurationError(ConfigurationError, _InvalidMailer):
    """A ``MAILERS`` entry has a value we cannot use: on Django 6.1 also
    Django's ``InvalidMailer``, as its own backend raises."""


class DKIMDomainMismatch(FluxMailException, ValueError):
    """The From domain is not the DKIM signing domain and the key's
    ``from_mismatch`` is ``"refuse"``: not sent rather than signed for
    another domain."""

    default_code = "dkim_domain_mismatch"


class DKIMSigningError(FluxMailException, ValueError):
    """dkimpy could not sign the message (nothing was sent)."""

    default_code = "dkim_signing_failed"


class InvalidEmail(FluxMailException, ValueError):
    """An address cannot be used on the envelope (bad syntax, CR/LF injection)."""

    default_code = "invalid_email"


class CancelSend(Exception):
    """Raise from a ``pre_send`` receiver to skip a message without an error."""


class InvalidMessage(FluxMailException, ValueError):
    """A message cannot be built as asked (e.g. inline images without HTML).

    ``code`` says which rule was broken; the message says what to change.
    """

    default_code = "invalid_params"


class InvalidPriority(InvalidMessage):
    """``priority`` is not one of ``"high"``, ``"normal"``, ``"low"``."""

    default_code = "invalid_priority"


class AttachmentNotFound(FluxMailException, FileNotFoundError):
    """A file to attach (or to inline as an image) does not exist."""

    default_code = "attachment_not_found"


class AttachmentReadError(FluxMailException, OSError):
    """A file to attach exists but cannot be read (permissions, a directory...)."""

    default_code = "read_error"


class CSSInlineError(FluxMailException, ValueError):
    """The CSS inliner could not process an HTML body."""

    default_code = "css_inline_failed"


def __getattr__(name: str) -> Any:
    # TemplateNotFound is also Django's TemplateDoesNotExist, and importing
    # Django's template package costs about 0.1 s: too much for the settings
    # files that import this package. It is loaded on first use instead.
    if name == "TemplateNotFound":
        from .compose.template_errors import TemplateNotFound

        return TemplateNotFound
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
