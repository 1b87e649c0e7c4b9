"""Errors raised by hypermail-django, each carrying a stable machine-readable ``code``.

Every error raised while *sending* is also an ``smtplib.SMTPException`` (and the
specific smtplib class where one exists), so code written against Django's SMTP
backend -- ``except smtplib.SMTPRecipientsRefused`` and the like -- keeps working.
No error message ever contains a password: messages are built only from the
server's replies, addresses and our own text.
"""

from __future__ import annotations

import smtplib
import ssl
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .probe_report import ProbeResult
    from .results import DeliveryStatus, RecipientStatus


class FluxMailException(Exception):
    """Base of every error we raise; ``code`` is stable and documented."""

    default_code: str | None = None

    def __init__(self, message: str, code: str | None = None) -> None:
        Exception.__init__(self, message)
        self.message = message
        self.code = code or self.default_code

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep .code and every other attribute when an error crosses a process
        # boundary (bulk sending serializes in worker processes); the default
        # would call __init__ with args alone and lose them.
        return (_rebuild, (type(self), self.args), self.__dict__)


def _rebuild(cls: type[FluxMailException], args: tuple[Any, ...]) -> FluxMailException:
    error = cls.__new__(cls)
    error.args = args
    return error


class SendError(FluxMailException, smtplib.SMTPException):
    """Sending failed. ``transient`` says whether trying again later may succeed.

    ``smtp_code``/``smtp_error`` carry the server's reply when there was one (the
    attribute names of ``smtplib.SMTPResponseException``); ``status`` is the
    per-recipient outcome recorded so far, when the failure concerns a message.
    """

    default_code = "send_failed"

    def __init__(
        self,
        message: str,
        code: str | None = None,
        *,
        smtp_code: int | None = None,
        smtp_error: bytes | str | None = None,
        transient: bool = False,
    ) -> None:
        FluxMailException.__init__(self, message, code)
        self.smtp_code = smtp_code
        self.smtp_error = smtp_error
        self.transient = transient
        self.status: DeliveryStatus | None = None
        # Set when the failure still tells how each recipient fared in this attempt.
        self.attempt_statuses: dict[str, RecipientStatus] | None = None


class ConnectionFailed(SendError):
    """The server could not be reached or answered the greeting with an error."""

    default_code = "connection_failed"


class ProbeFailed(ConnectionFailed):
    """A connection check failed; ``code`` is always ``"connection_failed"``.

    FluxMail's ``test_connection()`` contract: one code for "cannot send from
    here". Why is in ``reason`` (the underlying error's code, e.g.
    ``auth_failed`` or ``timeout``), ``step`` and the full ``result``.
    """

    def __init__(self, message: str, *, result: ProbeResult, **kwargs: Any) -> None:
        ConnectionFailed.__init__(self, message, **kwargs)
        self.result = result
        self.reason: str | None = result.error.code if result.error else None
        self.step = result.failed_step
        #: For a router: every member's report (``MemberReport.to_dict()``).
        self.members: list[dict[str, Any]] = []


class ConnectionRefused(ConnectionFailed, ConnectionRefusedError):
    """Nothing listens on the server's port (a ``ConnectionRefusedError``, as
    Django's backend raises; ``errno`` is kept). Its code stays
    ``connection_failed``."""


class ConnectTimeout(ConnectionFailed, TimeoutError):
    """The server did not connect, or did not greet, in time (a ``TimeoutError``,
    as Django's backend raises)."""

    default_code = "timeout"


class GreetingRefused(ConnectionFailed, smtplib.SMTPConnectError):  # type: ignore[misc]
    """The server answered the connection with an error instead of 220 (an
    ``SMTPConnectError``, as Django's backend raises)."""


class ConnectionLost(SendError, smtplib.SMTPServerDisconnected):
    """The server closed the connection (or stopped answering) mid-conversation."""

    default_code = "connection_lost"


class ReplyTimeout(ConnectionLost, TimeoutError):
    """The server did not answer a command in time, before any of the content
    was sent (a ``TimeoutError``, as smtplib raises). Transient."""

    default_code = "timeout"


class DeliveryUncertain(ConnectionLost):
    """The whole content was sent and the connection timed out or dropped
    before the server's reply: it may have queued the message. Not retried
    unless ``retry_uncertain`` is on; each recipient's status is ``uncertain``.
    """

    default_code = "delivery_uncertain"


class TLSFailed(SendError):
    """TLS could not be set up: STARTTLS not offered, or the certificate failed."""

    default_code = "tls_failed"


class TLSUnavailable(TLSFailed, smtplib.SMTPNotSupportedError):
    """``use_tls`` is on and the server offers no STARTTLS (an
    ``SMTPNotSupportedError``, as smtplib raises in Django's backend)."""

    default_code = "tls_unavailable"


class TLSRefused(TLSFailed, smtplib.SMTPResponseException):  # type: ignore[misc]  # smtp_code may be None
    """The server answered STARTTLS with an error (an
    ``SMTPResponseException``, as smtplib raises)."""


class TLSHandshakeFailed(TLSFailed, ssl.SSLError):
    """The TLS handshake failed, e.g. a wrong protocol version (an
    ``ssl.SSLError``, as Django's backend raises)."""


class ClientCertificateMissing(TLSFailed, FileNotFoundError):
    """``ssl_certfile``/``ssl_keyfile`` name no file (a ``FileNotFoundError``,
    as ``load_cert_chain`` raises in Django's backend)."""

    default_code = "configuration"


class ClientCertificateUnusable(TLSFailed, ssl.SSLError):
    """``ssl_certfile``/``ssl_keyfile`` are not a PEM certificate and its key
    (an ``ssl.SSLError``, as ``load_cert_chain`` raises)."""

    default_code = "configuration"


class CertificateFailed(TLSFailed, ssl.SSLCertVerificationError):
    """The server's certificate failed verification (an
    ``ssl.SSLCertVerificationError``, as Django's backend raises)."""


class AuthenticationFailed(SendError, smtplib.SMTPAuthenticationError):  # type: ignore[misc]  # smtp_code may be None
    """The server refused the credentials, or offers no AUTH at all."""

    default_code = "auth_failed"


class AuthUnsupported(AuthenticationFailed, smtplib.SMTPNotSupportedError):  # type: ignore[misc]
    """A username is set and the server offers no AUTH (or not the mechanism
    asked for): an ``SMTPNotSupportedError``, as smtplib raises."""

    default_code = "auth_unsupported"


class TokenRefused(AuthenticationFailed):
    """The server refused an OAuth2 token (already dropped from the cache).

    Transient on the first refusal (a new token may work: it had expired or
    been revoked); ``sasl.reauthenticating`` makes a second refusal permanent.
    """


class SenderRefused(SendError, smtplib.SMTPSenderRefused):  # type: ignore[misc]  # smtp_code may be None
    """The server refused ``MAIL FROM``; ``sender`` is the envelope sender."""

    default_code = "sender_refused"

    def __init__(self, message: str, *, sender: str, **kwargs: Any) -> None:
        SendError.__init__(self, message, **kwargs)
        self.sender = sender


class RecipientsDeferred(SendError):
    """Some recipients were deferred this attempt: the retry policy is asked
    for another. Never leaves the transport (the last attempt's outcome does)."""

    default_code = "recipients_deferred"


class RecipientsRefused(SendError, smtplib.SMTPRecipientsRefused):
    """No recipient accepted the message.

    ``recipients`` maps each address to ``(smtp_code, reply)`` as smtplib does.
    """

    default_code = "recipients_refused"

    def __init__(
        self, message: str, *, recipients: dict[str, tuple[int, bytes]], **kwargs: Any
    ) -> None:
        SendError.__init__(self, message, **kwargs)
        self.recipients = recipients


class DataRefused(SendError, smtplib.SMTPDataError):  # type: ignore[misc]  # smtp_code may be None
    """The server refused the message content (the reply to ``DATA`` or its end)."""

    default_code = "data_refused"


class SMTPUTF8Unsupported(SendError, smtplib.SMTPNotSupportedError):
    """An address needs SMTPUTF8 (a non-ASCII local part) and the server lacks it."""

    default_code = "smtputf8_unsupported"
