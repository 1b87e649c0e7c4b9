"""Open an SMTP connection and run one delivery attempt on it, with aiosmtplib.

The async twin of :mod:`.connection`: the same steps, the same statuses, and
every failure classified into the same :class:`~.errors.SendError` types, so the
retry policy and the callers cannot tell which library spoke to the server.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence

import aiosmtplib

from . import failures
from .config import TransportConfig
from .connection import StaleConnection
from .envelope import Envelope
from .errors import SendError
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
                raise failures.tls_unavailable(where)
            try:
                await smtp.starttls(tls_context=ssl_context)
            except aiosmtplib.SMTPResponseException as exc:
                raise failures.tls_refused(where, exc.code, exc.message) from None
            await smtp.ehlo()  # Capabilities before TLS no longer count (RFC 3207).
        if config.authenticates:
            if not smtp.supports_extension("auth"):
                raise failures.auth_unsupported(where)
            await smtp.login(config.username, config.password)
        return smtp
    except SendError:
        smtp.close()
        raise
    except Exception as exc:
        smtp.close()
        raise _connect_error(exc, where, config) from None


def _connect_error(exc: Exception, where: str, config: TransportConfig) -> SendError:
    """Classify a failure while connecting, securing or logging in."""
    for candidate in (exc, exc.__cause__ or exc.__context__):
        if isinstance(candidate, ssl.SSLCertVerificationError):
            return failures.certificate_failed(where, candidate.verify_message)
        if isinstance(candidate, ssl.SSLError):
            return failures.tls_failed(where, candidate.reason or candidate)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return failures.auth_refused(where, config.username, exc.code, exc.message)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return failures.setup_timeout(where)
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return failures.greeting_refused(where, exc.code, exc.message)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return failures.setup_refused(where, exc.code, exc.message)
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return failures.setup_lost(where, exc)
    return failures.unreachable(where, exc)


async def adeliver(
    smtp: aiosmtplib.SMTP, envelope: Envelope, recipients: Sequence[str]
) -> dict[str, RecipientStatus]:
    """Run MAIL, RCPT for each of ``recipients``, and DATA once; one attempt.

    Behaves exactly as :func:`.connection.deliver`.
    """
    options = failures.mail_options(envelope, smtp.supports_extension)
    encoding = "utf-8" if envelope.smtputf8 else "ascii"
    try:
        await smtp.mail(envelope.mail_from, options=options, encoding=encoding)
    except aiosmtplib.SMTPSenderRefused as exc:
        if exc.code == 421:
            smtp.close()
            raise StaleConnection(exc.message) from exc
        await _reset(smtp)
        raise failures.sender_refused(envelope, exc.code, exc.message) from None
    except (aiosmtplib.SMTPServerDisconnected, OSError) as exc:
        smtp.close()
        raise StaleConnection(str(exc)) from exc
    except aiosmtplib.SMTPTimeoutError as exc:
        smtp.close()
        raise failures.lost_while_sending(envelope, exc) from None

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
        raise failures.data_refused(
            envelope, exc.code, exc.message, accepted, statuses
        ) from None
    except _GONE as exc:
        smtp.close()
        raise failures.lost_while_sending(envelope, exc) from None
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
