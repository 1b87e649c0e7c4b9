"""Open an SMTP connection and run one delivery attempt on it, with aiosmtplib.

The async twin of :mod:`.connection`: the same steps, the same statuses, and
every failure classified into the same :class:`~.errors.SendError` types, so the
retry policy and the callers cannot tell which library spoke to the server.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence

import aiosmtplib

from .config import TransportConfig
from .connection import StaleConnection, is_transient_code
from .envelope import Envelope
from .errors import (
    AuthenticationFailed,
    CertificateFailed,
    ConnectionFailed,
    ConnectionLost,
    ConnectTimeout,
    DataRefused,
    GreetingRefused,
    SenderRefused,
    SendError,
    SMTPUTF8Unsupported,
    TLSFailed,
)
from .results import RecipientStatus

#: Errors meaning the conversation is over: the socket closed or stopped answering.
_GONE = (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError)


async def open_async_connection(
    config: TransportConfig, ssl_context: ssl.SSLContext | None
) -> aiosmtplib.SMTP:
    """Connect, say EHLO, secure the channel, and log in."""
    where = f"{config.host}:{config.port}"
    smtp = aiosmtplib.SMTP(
        hostname=config.host,
        port=config.port,
        local_hostname=config.local_hostname,
        timeout=config.timeout,
        use_tls=config.use_ssl,
        start_tls=False,  # Done below, so a missing STARTTLS is our error.
        tls_context=ssl_context if config.use_ssl else None,
    )
    try:
        await smtp.connect()
        await smtp.ehlo()
        if config.use_tls:
            if not smtp.supports_extension("starttls"):
                raise TLSFailed(
                    f"{where} does not offer STARTTLS but use_tls is on; nothing "
                    "was sent. Check the port (587 for STARTTLS, 465 for use_ssl).",
                    code="tls_unavailable",
                )
            try:
                await smtp.starttls(tls_context=ssl_context)
            except aiosmtplib.SMTPResponseException as exc:
                raise TLSFailed(
                    f"{where} refused STARTTLS: {exc.code} {exc.message}",
                    smtp_code=exc.code,
                    smtp_error=exc.message,
                    transient=is_transient_code(exc.code),
                ) from None
            await smtp.ehlo()  # Capabilities before TLS no longer count (RFC 3207).
        if config.authenticates:
            if not smtp.supports_extension("auth"):
                raise AuthenticationFailed(
                    f"{where} offers no AUTH; set use_tls/use_ssl if it only offers "
                    "AUTH over TLS, or remove the username and password.",
                    code="auth_unsupported",
                )
            await smtp.login(config.username, config.password)
        return smtp
    except SendError:
        smtp.close()
        raise
    except Exception as exc:
        smtp.close()
        raise _connect_error(exc, where, config) from None


def _connect_error(exc: Exception, where: str, config: TransportConfig) -> SendError:
    cause = exc.__cause__ or exc.__context__
    for candidate in (exc, cause):
        if isinstance(candidate, ssl.SSLCertVerificationError):
            return CertificateFailed(
                f"The certificate of {where} failed verification: "
                f"{candidate.verify_message}. Trust its CA (SSL_CERT_FILE) or fix "
                "the host name."
            )
        if isinstance(candidate, ssl.SSLError):
            return TLSFailed(
                f"TLS with {where} failed: {candidate.reason or candidate}"
            )
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return AuthenticationFailed(
            f"{where} refused the credentials for user {config.username!r}: "
            f"{exc.code} {exc.message}",
            smtp_code=exc.code,
            smtp_error=exc.message,
            transient=is_transient_code(exc.code),
        )
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return ConnectTimeout(f"{where} did not answer in time", transient=True)
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return GreetingRefused(
            f"{where} refused the connection: {exc.code} {exc.message}",
            smtp_code=exc.code,
            smtp_error=exc.message,
            transient=is_transient_code(exc.code),
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return ConnectionFailed(
            f"{where} answered {exc.code} {exc.message} during setup",
            smtp_code=exc.code,
            smtp_error=exc.message,
            transient=is_transient_code(exc.code),
        )
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return ConnectionLost(
            f"{where} closed the connection during setup", transient=True
        )
    if isinstance(exc, (aiosmtplib.SMTPConnectError, OSError)):
        return ConnectionFailed(f"Could not connect to {where}: {exc}", transient=True)
    return ConnectionFailed(f"SMTP setup with {where} failed: {exc}")


async def adeliver(
    smtp: aiosmtplib.SMTP, envelope: Envelope, recipients: Sequence[str]
) -> dict[str, RecipientStatus]:
    """Run MAIL, RCPT for each of ``recipients``, and DATA once; one attempt.

    Behaves exactly as :func:`.connection.deliver`.
    """
    options = []
    encoding = "ascii"
    if smtp.supports_extension("size"):
        options.append(f"SIZE={len(envelope.data)}")
    if envelope.smtputf8:
        if not smtp.supports_extension("smtputf8"):
            raise SMTPUTF8Unsupported(
                f"Message {envelope.message_id}: an address has a non-ASCII local "
                "part, which needs SMTPUTF8, and the server does not offer it.",
            )
        options.append("SMTPUTF8")
        if smtp.supports_extension("8bitmime"):
            options.append("BODY=8BITMIME")
        encoding = "utf-8"

    try:
        await smtp.mail(envelope.mail_from, options=options, encoding=encoding)
    except aiosmtplib.SMTPSenderRefused as exc:
        if exc.code == 421:
            smtp.close()
            raise StaleConnection(exc.message) from exc
        await _reset(smtp)
        raise SenderRefused(
            f"The server refused sender {envelope.mail_from!r}: {exc.code} "
            f"{exc.message}",
            sender=envelope.mail_from,
            smtp_code=exc.code,
            smtp_error=exc.message,
            transient=is_transient_code(exc.code),
        ) from None
    except (aiosmtplib.SMTPServerDisconnected, OSError) as exc:
        smtp.close()
        raise StaleConnection(str(exc)) from exc
    except aiosmtplib.SMTPTimeoutError as exc:
        smtp.close()
        raise ConnectionLost(
            f"The server stopped answering at MAIL FROM: {exc}", transient=True
        ) from None

    statuses: dict[str, RecipientStatus] = {}
    accepted: list[str] = []
    try:
        for rcpt in recipients:
            try:
                await smtp.rcpt(rcpt, encoding=encoding)
            except aiosmtplib.SMTPRecipientRefused as exc:
                statuses[rcpt] = RecipientStatus.from_reply(exc.code, exc.message)
                if exc.code == 421:
                    smtp.close()
                    deferred = RecipientStatus("deferred", exc.code, exc.message)
                    return {r: statuses.get(r, deferred) for r in recipients}
            else:
                accepted.append(rcpt)
        if not accepted:
            await _reset(smtp)
            return statuses
        response = await smtp.data(envelope.data)
    except aiosmtplib.SMTPDataError as exc:
        await _reset(smtp)
        error = DataRefused(
            f"The server refused message {envelope.message_id}: {exc.code} "
            f"{exc.message}",
            smtp_code=exc.code,
            smtp_error=exc.message,
            transient=is_transient_code(exc.code),
        )
        refusal = RecipientStatus.from_reply(exc.code, exc.message)
        error.attempt_statuses = {rcpt: refusal for rcpt in accepted} | statuses
        raise error from None
    except _GONE as exc:
        smtp.close()
        raise ConnectionLost(
            f"The connection was lost while sending {envelope.message_id}: {exc}",
            transient=True,
        ) from None
    sent = RecipientStatus("sent", response.code, response.message)
    return {rcpt: sent for rcpt in accepted} | statuses


async def _reset(smtp: aiosmtplib.SMTP) -> None:
    """RSET so the connection can carry the next message; drop it if that fails."""
    try:
        await smtp.rset()
    except (aiosmtplib.SMTPException, OSError):
        smtp.close()


async def aquit(smtp: aiosmtplib.SMTP, timeout: float) -> None:
    """Say QUIT politely, within ``timeout``; a server that left is not an error."""
    try:
        await smtp.quit(timeout=timeout)
    except (aiosmtplib.SMTPException, OSError):
        smtp.close()
