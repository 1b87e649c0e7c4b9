"""Open an SMTP connection with aiosmtplib: connect, EHLO, STARTTLS, AUTH.

The async twin of :mod:`.connection`: the same steps, and every failure
classified into the same :class:`~.errors.SendError` types, so the retry policy
and the callers cannot tell which library spoke to the server. The mail
transaction is :mod:`.dialogue`'s, driven by :mod:`.async_sender`.
"""

from __future__ import annotations

import ssl

import aiosmtplib

from . import failures, sasl
from .async_protocol import PipeliningProtocol
from .config import TransportConfig
from .connection import decline_extensions
from .errors import SendError


@sasl.areauthenticating
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
    step = "the greeting"  # What a timeout was waiting for.
    try:
        # TCP connect, implicit TLS and the 220 within the connect timeout; the
        # client's own ``timeout`` (every later reply) is left as it is.
        await smtp.connect(timeout=config.greeting_timeout)
        PipeliningProtocol.install(smtp)  # Before any command: see its module.
        step = "EHLO"
        await smtp.ehlo()
        if config.use_tls:
            if not smtp.supports_extension("starttls"):
                raise failures.tls_unavailable(where)
            step = "STARTTLS"
            try:
                await smtp.starttls(tls_context=ssl_context)
            except aiosmtplib.SMTPResponseException as exc:
                raise failures.tls_refused(where, exc.code, exc.message) from None
            step = "EHLO"
            await smtp.ehlo()  # Capabilities before TLS no longer count (RFC 3207).
        if config.authenticates:
            step = "AUTH"
            await sasl.alogin(smtp, config, where)
        decline_extensions(smtp.esmtp_extensions, config)
        return smtp
    except SendError:
        smtp.close()
        raise
    except Exception as exc:
        smtp.close()
        raise _connect_error(exc, where, config, step) from None


def _connect_error(
    exc: Exception, where: str, config: TransportConfig, step: str
) -> SendError:
    """Classify a failure while connecting, securing or logging in; a timeout
    says which ``step`` it waited for."""
    for candidate in (exc, exc.__cause__ or exc.__context__):
        if isinstance(candidate, ssl.SSLCertVerificationError):
            return failures.certificate_failed(where, candidate.verify_message)
        if isinstance(candidate, ssl.SSLError):
            return failures.tls_failed(where, candidate.reason or candidate)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return failures.auth_refused(where, config.username, exc.code, exc.message)
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        # aiosmtplib raises SMTPConnectTimeoutError for a silent greeting too,
        # from the read's own timeout.
        connecting = isinstance(
            exc, aiosmtplib.SMTPConnectTimeoutError
        ) and not isinstance(exc.__cause__, aiosmtplib.SMTPTimeoutError)
        wait = config.greeting_timeout if step == "the greeting" else config.timeout
        return failures.setup_timeout(where, wait, step, connecting=connecting)
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return failures.greeting_refused(where, exc.code, exc.message)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return failures.setup_refused(where, exc.code, exc.message)
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return failures.setup_lost(where, exc)
    # aiosmtplib wraps the socket's error (a refused connection, its errno).
    chain = (exc.__cause__, exc.__context__, exc)
    cause = next((c for c in chain if isinstance(c, OSError) and c.errno), exc)
    return failures.unreachable(where, exc, cause)


def is_alive(smtp: aiosmtplib.SMTP) -> bool:
    """Whether an idle connection can carry a transaction, seen without
    sending anything: still open, and the server said nothing since (see
    :attr:`.async_protocol.PipeliningProtocol.unsolicited`)."""
    protocol = smtp.protocol
    return (
        smtp.is_connected
        and isinstance(protocol, PipeliningProtocol)
        and not protocol.unsolicited
    )


async def aquit(smtp: aiosmtplib.SMTP, timeout: float) -> None:
    """Say QUIT politely, within ``timeout``; a server that left is not an error."""
    try:
        await smtp.quit(timeout=timeout)
    except (aiosmtplib.SMTPException, OSError):
        smtp.close()
