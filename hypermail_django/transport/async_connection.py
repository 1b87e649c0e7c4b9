"""Open an SMTP connection and run one delivery attempt on it, with aiosmtplib.

The async twin of :mod:`.connection`: the same steps, the same statuses, and
every failure classified into the same :class:`~.errors.SendError` types, so the
retry policy and the callers cannot tell which library spoke to the server.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence

import aiosmtplib
from aiosmtplib.response import SMTPResponse

from . import failures, sasl
from .async_protocol import PipeliningProtocol
from .commands import mail_options, transaction_commands
from .config import TransportConfig
from .connection import EAGER_CHUNK_LIMIT, StaleConnection, decline_extensions
from .envelope import Envelope
from .errors import SendError
from .results import RecipientStatus

#: Errors meaning the conversation is over: the socket closed or stopped answering.
_GONE = (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError)
#: The same, or a reply that cannot be parsed: a pipelined batch cannot go on.
_BROKEN = (*_GONE, aiosmtplib.SMTPResponseException)


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
    try:
        await smtp.connect()
        PipeliningProtocol.install(smtp)  # Before any command: see its module.
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
            await sasl.alogin(smtp, config, where)
        decline_extensions(smtp.esmtp_extensions, config)
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
    """Run MAIL, RCPT for each of ``recipients``, and DATA (or BDAT) once; one
    attempt.

    Behaves exactly as :func:`.connection.deliver`: RFC 2920 PIPELINING when the
    server offers it (see :func:`_adeliver_pipelined`), the message as one RFC
    3030 ``BDAT`` when it offers CHUNKING, and the same judgement of the replies
    in every dialogue.
    """
    encoding = "utf-8" if envelope.smtputf8 else "ascii"
    protocol = smtp.protocol
    # Reading pipelined replies and writing BDAT take the protocol subclass that
    # open_async_connection() installs; aiosmtplib's own gets the plain dialogue.
    ours = protocol if isinstance(protocol, PipeliningProtocol) else None
    chunked = ours is not None and smtp.supports_extension("chunking")
    try:
        if ours is not None and smtp.supports_extension("pipelining"):
            return await _adeliver_pipelined(smtp, ours, envelope, recipients, encoding)
        return await _adeliver_one_by_one(
            smtp, ours if chunked else None, envelope, recipients, encoding
        )
    except asyncio.CancelledError:
        # Cancelled mid-transaction, replies may still be on their way: they
        # must never be read as the next message's. The pool drops a closed
        # connection.
        smtp.close()
        raise


async def _adeliver_one_by_one(
    smtp: aiosmtplib.SMTP,
    chunker: PipeliningProtocol | None,
    envelope: Envelope,
    recipients: Sequence[str],
    encoding: str,
) -> dict[str, RecipientStatus]:
    """:func:`adeliver` with one command at a time, through aiosmtplib's API;
    the message goes as DATA, or through ``chunker`` as one BDAT."""
    options = mail_options(envelope, smtp.supports_extension)
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
        if chunker is not None:
            chunker.write_last_chunk(envelope.data)
            response = await chunker.read_response(smtp.timeout)
            if response.code != 250:
                raise aiosmtplib.SMTPDataError(response.code, response.message)
        else:
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


async def _adeliver_pipelined(
    smtp: aiosmtplib.SMTP,
    protocol: PipeliningProtocol,
    envelope: Envelope,
    recipients: Sequence[str],
    encoding: str,
) -> dict[str, RecipientStatus]:
    """:func:`adeliver` on a server that offers PIPELINING, step for step
    :func:`.connection.deliver`'s pipelined dialogue.

    MAIL, every RCPT and DATA go out in one write and their replies are read in
    order: two round trips per message instead of three plus one per recipient.
    With CHUNKING, a message up to ``EAGER_CHUNK_LIMIT`` rides in that same
    write as ``BDAT <size> LAST`` instead of DATA: one round trip. The commands
    are the bytes aiosmtplib's ``mail()``/``rcpt()`` would send and the content
    the bytes its ``data()`` sends; the replies are judged as in the unpipelined
    dialogue.
    """
    chunked = smtp.supports_extension("chunking")
    eager = chunked and len(envelope.data) <= EAGER_CHUNK_LIMIT
    mail_line, rcpt_lines = transaction_commands(
        envelope, recipients, smtp.supports_extension
    )
    mail = mail_line.encode(encoding)
    rcpts = [line.encode(encoding) for line in rcpt_lines]
    # Replies due after the RCPTs' in the first write: DATA's, or BDAT's.
    trailing = 1 if eager or not chunked else 0
    timeout = smtp.timeout
    try:
        protocol.write_pipelined(
            [mail, *rcpts] if chunked else [mail, *rcpts, b"DATA"],
            last_chunk=envelope.data if eager else None,
        )
        reply = await protocol.read_response(timeout)
    except (aiosmtplib.SMTPServerDisconnected, OSError) as exc:
        smtp.close()
        raise StaleConnection(str(exc)) from exc
    except _BROKEN as exc:
        smtp.close()
        raise failures.lost_while_sending(envelope, exc) from None
    if reply.code == 421:
        smtp.close()
        raise StaleConnection(reply.message)
    if reply.code != 250:
        # Their 503s; then the connection is clean.
        await _drain(smtp, protocol, len(rcpts) + trailing)
        await _reset(smtp)
        raise failures.sender_refused(envelope, reply.code, reply.message)

    statuses: dict[str, RecipientStatus] = {}
    accepted: list[str] = []
    closing: RecipientStatus | None = None
    try:
        for rcpt in recipients:
            reply = await protocol.read_response(timeout)
            if reply.code in (250, 251):
                accepted.append(rcpt)
                continue
            statuses[rcpt] = RecipientStatus.from_reply(reply.code, reply.message)
            if reply.code == 421:
                # The server is closing: everyone not yet refused is deferred to
                # the next attempt. An eager chunk is already on its way, so hear
                # the server out: one that carries on may still take the message.
                closing = RecipientStatus("deferred", reply.code, reply.message)
                if not eager:
                    smtp.close()
                    return {r: statuses.get(r, closing) for r in recipients}
        if chunked:
            data_reply = await _send_chunk(protocol, envelope, eager, accepted, timeout)
        else:
            data_reply = await _send_data(protocol, envelope, accepted, timeout)
    except _BROKEN as exc:
        smtp.close()
        if closing is not None:  # It said so: the message never got in.
            return {r: statuses.get(r, closing) for r in recipients}
        raise failures.lost_while_sending(envelope, exc) from None
    if closing is not None:
        smtp.close()
    if not accepted:
        await _reset(smtp)
        return statuses
    if data_reply.code != 250:
        await _reset(smtp)
        raise failures.data_refused(
            envelope, data_reply.code, data_reply.message, accepted, statuses
        )
    sent = RecipientStatus("sent", data_reply.code, data_reply.message)
    return {rcpt: sent for rcpt in accepted} | statuses


async def _send_data(
    protocol: PipeliningProtocol,
    envelope: Envelope,
    accepted: list[str],
    timeout: float | None,
) -> SMTPResponse:
    """The reply to the pipelined DATA, then the content once it said 354.

    If no recipient was accepted and the server still said 354, an empty
    message ends it (RFC 2920). Returns the reply to the content, or to DATA.
    """
    reply = await protocol.read_response(timeout)
    if reply.code != 354:
        return reply
    if not accepted:
        protocol.write(b".\r\n")
    else:
        protocol.write_message(envelope.data)
    return await protocol.read_response(timeout)


async def _send_chunk(
    protocol: PipeliningProtocol,
    envelope: Envelope,
    eager: bool,
    accepted: list[str],
    timeout: float | None,
) -> SMTPResponse:
    """The message as one ``BDAT <size> LAST`` (RFC 3030); its reply.

    An ``eager`` chunk already went out with MAIL and RCPT: only its reply is
    left to read (a refusal when no recipient was accepted).
    """
    if eager:
        return await protocol.read_response(timeout)
    if not accepted:
        return _NOTHING_SENT
    protocol.write_last_chunk(envelope.data)
    return await protocol.read_response(timeout)


#: In place of a reply to content that was never sent (nobody to send it to).
_NOTHING_SENT = SMTPResponse(0, "")


async def _drain(
    smtp: aiosmtplib.SMTP, protocol: PipeliningProtocol, count: int
) -> None:
    """Read and drop ``count`` pipelined replies nobody needs any more."""
    try:
        for _ in range(count):
            await protocol.read_response(smtp.timeout)
    except _BROKEN:
        smtp.close()


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
