"""Every failure the transport reports, built in one place.

The smtplib and aiosmtplib paths meet the same situations through different
exception types; both turn them into the same :class:`~.errors.SendError`
here, with the same message, code and ``transient`` flag, so callers and the
retry policy cannot tell which library spoke to the server.
"""

from __future__ import annotations

import json
import ssl
from typing import TYPE_CHECKING, Any

from .config import TransportConfig
from .envelope import Envelope
from .errors import (
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
    GreetingRefused,
    ProbeFailed,
    RecipientsDeferred,
    RecipientsRefused,
    ReplyTimeout,
    SenderRefused,
    SendError,
    SMTPUTF8Unsupported,
    TLSFailed,
    TLSHandshakeFailed,
    TLSRefused,
    TLSUnavailable,
    TokenRefused,
)
from .results import DeliveryStatus, RecipientStatus

if TYPE_CHECKING:
    from .probe_report import ProbeResult

Reply = bytes | str | None


def is_transient_code(code: int) -> bool:
    return 400 <= code < 500


def text(reply: Reply) -> str:
    if reply is None:
        return ""
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def smtputf8_unsupported(envelope: Envelope) -> SMTPUTF8Unsupported:
    return SMTPUTF8Unsupported(
        f"Message {envelope.message_id}: an address has a non-ASCII local "
        "part, which needs SMTPUTF8, and the server does not offer it.",
    )


#: smtplib's own words for a missing extension (Django's backend raises them);
#: ours begin with them, so code and tests that match on them keep working.
STARTTLS_UNSUPPORTED = "STARTTLS extension not supported by server."
AUTH_UNSUPPORTED = "SMTP AUTH extension not supported by server."


def tls_unavailable(where: str) -> TLSUnavailable:
    return TLSUnavailable(
        f"{STARTTLS_UNSUPPORTED} {where} does not offer STARTTLS but use_tls is "
        "on; nothing was sent. Check the port (587 for STARTTLS, 465 for use_ssl).",
    )


def tls_refused(where: str, code: int, reply: Reply) -> TLSRefused:
    return TLSRefused(
        f"{where} refused STARTTLS: {code} {text(reply)}",
        smtp_code=code,
        smtp_error=reply,
        transient=is_transient_code(code),
    )


def certificate_failed(where: str, reason: str) -> CertificateFailed:
    return CertificateFailed(
        f"The certificate of {where} failed verification: {reason}. "
        "Trust its CA (SSL_CERT_FILE) or fix the host name."
    )


def client_certificate_unusable(config: TransportConfig, exc: Exception) -> TLSFailed:
    """``ssl_certfile``/``ssl_keyfile`` name files that are not a certificate
    and its key: a configuration error, met when TLS is first set up (where
    Django's backend meets it too, with the same exception class)."""
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
    message = (
        f"ssl_certfile {config.ssl_certfile!r} / ssl_keyfile {config.ssl_keyfile!r} "
        f"could not be loaded as a client certificate and key ({reason}); "
        "nothing was sent. Point them at a PEM certificate and its private key."
    )
    if isinstance(exc, FileNotFoundError):
        error: TLSFailed = ClientCertificateMissing(message)
        error.errno = exc.errno
        error.filename = exc.filename
        return error
    if isinstance(exc, ssl.SSLError):
        return ClientCertificateUnusable(message)
    return TLSFailed(message, code="configuration")


def tls_failed(where: str, reason: object) -> TLSHandshakeFailed:
    error = TLSHandshakeFailed(f"TLS with {where} failed: {reason}")
    error.reason = str(reason)  # as ssl.SSLError has, for code that reads it
    return error


def auth_unsupported(where: str) -> AuthUnsupported:
    return AuthUnsupported(
        f"{AUTH_UNSUPPORTED} {where} offers no AUTH; set use_tls/use_ssl if it only "
        "offers AUTH over TLS, or remove the username and password.",
    )


def auth_refused(
    where: str, username: str, code: int, reply: Reply
) -> AuthenticationFailed:
    return AuthenticationFailed(
        f"{where} refused the credentials for user {username!r}: {code} {text(reply)}",
        smtp_code=code,
        smtp_error=reply,
        transient=is_transient_code(code),
    )


def mechanism_unoffered(where: str, mechanism: str, features: str) -> AuthUnsupported:
    """``auth_mechanism`` names a mechanism the server does not offer."""
    return AuthUnsupported(
        f"{where} does not offer AUTH {mechanism.upper()} (it offers: "
        f"{features.strip() or 'nothing'}); set auth_mechanism to one it offers.",
        code="auth_unsupported",
    )


def token_provider_missing(mechanism: str) -> AuthenticationFailed:
    """An OAuth2 mechanism without a provider (conf/mailer_options.py refuses this; a
    ``TransportConfig`` built by hand may not)."""
    return AuthenticationFailed(
        f"auth_mechanism {mechanism!r} needs a token_provider.",
        code="token_failed",
    )


def token_failed(username: str, reason: str, *, transient: bool) -> SendError:
    """The token provider raised; ``reason`` is its message, secrets masked."""
    return SendError(
        f"Could not get an OAuth2 token for {username!r} from the "
        f"token_provider: {reason}",
        code="token_failed",
        transient=transient,
    )


def token_refused(
    where: str,
    username: str,
    code: int,
    reply: Reply,
    detail: dict[str, Any] | None,
) -> TokenRefused:
    """The server refused the token with a 5xx (``detail``: the JSON error it
    sent as a challenge, if any); transient, since a new token may work."""
    extra = f" ({json.dumps(detail, sort_keys=True)})" if detail else ""
    return TokenRefused(
        f"{where} refused the OAuth2 token for user {username!r}: "
        f"{code} {text(reply)}{extra}",
        code="auth_failed",
        smtp_code=code,
        smtp_error=reply,
        transient=True,
    )


def greeting_refused(where: str, code: int, reply: Reply) -> GreetingRefused:
    return GreetingRefused(
        f"{where} refused the connection: {code} {text(reply)}",
        smtp_code=code,
        smtp_error=reply,
        transient=is_transient_code(code),
    )


def setup_refused(where: str, code: int, reply: Reply) -> ConnectionFailed:
    return ConnectionFailed(
        f"{where} answered {code} {text(reply)} during setup",
        smtp_code=code,
        smtp_error=reply,
        transient=is_transient_code(code),
    )


def setup_timeout(
    where: str,
    timeout: float | None = None,
    step: str | None = None,
    *,
    connecting: bool = False,
) -> ConnectTimeout:
    """No answer while opening a connection; ``step`` says what we waited for."""
    if timeout is None or step is None:
        text = f"{where} did not answer in time"
    elif connecting:
        text = f"{where} did not accept a connection within {timeout:g} s"
    elif step == "the greeting":
        text = (
            f"No SMTP greeting from {where} within {timeout:g} s; is this an SMTP port?"
        )
    else:
        text = no_answer(where, timeout, step)
    return ConnectTimeout(text, transient=True)


def setup_lost(where: str, detail: object) -> ConnectionLost:
    return ConnectionLost(
        f"{where} closed the connection during setup: {detail}", transient=True
    )


def unreachable(
    where: str, detail: object, cause: BaseException | None = None
) -> ConnectionFailed:
    """The TCP connection failed; a refused one is a ``ConnectionRefusedError``
    as in Django's backend, and ``errno`` is that of the ``cause``."""
    message = f"Could not connect to {where}: {detail}"
    error = (
        ConnectionRefused(message, transient=True)
        if isinstance(cause, ConnectionRefusedError)
        else ConnectionFailed(message, transient=True)
    )
    if isinstance(cause, OSError):
        error.errno = cause.errno
    return error


def sender_refused(envelope: Envelope, code: int, reply: Reply) -> SenderRefused:
    return SenderRefused(
        f"The server refused sender {envelope.mail_from!r}: {code} {text(reply)}",
        sender=envelope.mail_from,
        smtp_code=code,
        smtp_error=reply,
        transient=is_transient_code(code),
    )


def data_refused(
    envelope: Envelope,
    code: int,
    reply: Reply,
    accepted: list[str],
    statuses: dict[str, RecipientStatus],
) -> DataRefused:
    """The content was refused: nobody accepted in this attempt got it."""
    error = DataRefused(
        f"The server refused message {envelope.message_id}: {code} {text(reply)}",
        smtp_code=code,
        smtp_error=reply,
        transient=is_transient_code(code),
    )
    refusal = RecipientStatus.from_reply(code, reply or "")
    error.attempt_statuses = {rcpt: refusal for rcpt in accepted} | statuses
    return error


def closed_before_mail(where: str, detail: object) -> ConnectionLost:
    """A connection just opened was closed before the server answered MAIL
    FROM (a stale pooled one is replaced at once instead): transient."""
    return ConnectionLost(
        f"{where} closed a new connection before answering MAIL FROM: {detail}",
        transient=True,
    )


def no_answer(where: str, timeout: float, awaiting: str) -> str:
    """What a timeout says: who, how long, and which reply never came."""
    return (
        f"{where} did not answer within {timeout:g} s "
        f"(waiting for the reply to {awaiting})"
    )


def reply_timeout(where: str, timeout: float, awaiting: str) -> ReplyTimeout:
    """No reply to a command before any content went out: nothing was
    delivered, so another attempt is safe."""
    return ReplyTimeout(no_answer(where, timeout, awaiting), transient=True)


def delivery_uncertain(
    envelope: Envelope,
    detail: str,
    statuses: dict[str, RecipientStatus],
    *,
    retry: bool,
) -> DeliveryUncertain:
    """The content was sent and no reply came: the server may have queued it.
    Retried only when the mailer's ``retry_uncertain`` says so (``retry``)."""
    error = DeliveryUncertain(
        f"Message {envelope.message_id} may or may not have been delivered: "
        f"{detail} after the whole message was sent. "
        + (
            "Retrying it (retry_uncertain is on), which may deliver a second copy."
            if retry
            else "It is not sent again, to avoid a duplicate (see retry_uncertain)."
        ),
        transient=retry,
    )
    error.attempt_statuses = statuses
    return error


def lost_while_sending(envelope: Envelope, detail: object) -> ConnectionLost:
    return ConnectionLost(
        f"The connection was lost while sending {envelope.message_id}: {detail}",
        transient=True,
    )


def recipients_deferred(count: int) -> RecipientsDeferred:
    """Some recipients of an attempt were deferred: worth another attempt."""
    return RecipientsDeferred(f"{count} recipient(s) deferred", transient=True)


def recipients_refused(status: DeliveryStatus) -> RecipientsRefused:
    """Nobody accepted the message; transient only when everyone was deferred."""
    recipients = {
        rcpt: (rs.code or 0, rs.reply.encode("utf-8", "replace"))
        for rcpt, rs in status.recipients.items()
    }
    all_deferred = all(rs.status == "deferred" for rs in status.recipients.values())
    details = "; ".join(
        f"{rcpt}: {rs.summary}" for rcpt, rs in status.recipients.items()
    )
    return RecipientsRefused(
        f"No recipient accepted message {status.message_id} ({details})",
        code="recipients_deferred" if all_deferred else "recipients_refused",
        recipients=recipients,
        transient=all_deferred,
    )


def probe_timeout(where: str, timeout: float, step: str | None) -> ConnectionFailed:
    """The health probe's deadline passed (at ``step``): one deadline for the
    whole probe, so it is not a :class:`ConnectTimeout` of one step."""
    return ConnectionFailed(
        f"{where} did not answer within the {timeout:g} s deadline "
        f"(at {step or 'connect'}).",
        code="timeout",
        transient=True,
    )


def probe_failed(result: ProbeResult) -> ProbeFailed:
    """A failed health check as one ``connection_failed`` error, the cause's
    code in ``reason`` and the report in ``result``."""
    error = result.error
    assert error is not None, "probe_failed needs a failed result"
    return ProbeFailed(
        f"Connection check failed at {result.failed_step}: {error.message}",
        result=result,
        smtp_code=error.smtp_code,
        smtp_error=error.smtp_error,
        transient=error.transient,
    )
