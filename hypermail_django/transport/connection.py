"""Open an SMTP connection and run one delivery attempt on it, with smtplib.

Every failure leaves here as a :class:`~.errors.SendError` (built by
:mod:`.failures`) whose ``transient`` flag the retry policy reads: 4xx replies,
timeouts, refused and dropped connections are transient; 5xx replies and TLS or
certificate problems are permanent.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence

from . import failures, sasl
from .commands import transaction_commands
from .config import TransportConfig
from .envelope import Envelope
from .errors import SendError
from .failures import is_transient_code
from .failures import text as _text
from .results import RecipientStatus

__all__ = [
    "QUIT_TIMEOUT",
    "StaleConnection",
    "create_ssl_context",
    "decline_extensions",
    "deliver",
    "is_open",
    "is_transient_code",
    "open_connection",
    "quit_connection",
]


class StaleConnection(Exception):
    """The connection was dead before anything was sent on it (MAIL FROM failed
    with a closed socket or a 421). Safe to replace and try again at once."""


def create_ssl_context(config: TransportConfig) -> ssl.SSLContext:
    """Build the context once per configuration: creating one costs milliseconds.

    ``create_default_context`` verifies the server against the system trust store
    (``SSL_CERT_FILE`` honoured); a client certificate is added to that, so the
    server is still verified when we present one (unlike Django's backend).
    """
    context = ssl.create_default_context()
    if config.ssl_certfile or config.ssl_keyfile:
        context.load_cert_chain(config.ssl_certfile or "", config.ssl_keyfile)
    return context


@sasl.reauthenticating
def open_connection(
    config: TransportConfig, ssl_context: ssl.SSLContext | None
) -> smtplib.SMTP:
    """Connect, say EHLO, secure the channel, and log in."""
    where = f"{config.host}:{config.port}"
    conn: smtplib.SMTP | None = None
    try:
        if config.use_ssl:
            conn = smtplib.SMTP_SSL(
                config.host,
                config.port,
                local_hostname=config.local_hostname,
                timeout=config.timeout,
                context=ssl_context,
            )
        else:
            conn = smtplib.SMTP(
                config.host,
                config.port,
                local_hostname=config.local_hostname,
                timeout=config.timeout,
            )
        conn.ehlo_or_helo_if_needed()
        if config.use_tls:
            _starttls(conn, ssl_context, where)
            conn.ehlo()
        if config.authenticates:
            _login(conn, config, where)
        decline_extensions(conn.esmtp_features, config)
        return conn
    except SendError:
        _abort(conn)
        raise
    except BaseException as exc:
        _abort(conn)
        raise _connect_error(exc, where) from exc


def decline_extensions(features: dict[str, str], config: TransportConfig) -> None:
    """Forget the offered extensions the configuration turns off, so that the
    dialogue never uses them (``pipelining=False``, ``chunking=False``: an
    escape hatch for a server that offers one and gets it wrong)."""
    for name, wanted in (
        ("pipelining", config.pipelining),
        ("chunking", config.chunking),
    ):
        if not wanted:
            features.pop(name, None)


def _starttls(
    conn: smtplib.SMTP, ssl_context: ssl.SSLContext | None, where: str
) -> tuple[int, bytes]:
    """Upgrade to TLS; refuse to go on in clear text (the next step is AUTH).

    Shared with the health probe, so a check fails exactly as sending would.
    """
    if not conn.has_extn("starttls"):
        raise failures.tls_unavailable(where)
    try:
        return conn.starttls(context=ssl_context)
    except smtplib.SMTPResponseException as exc:  # smtplib raises for non-220.
        raise failures.tls_refused(where, exc.smtp_code, exc.smtp_error) from None


def _login(
    conn: smtplib.SMTP, config: TransportConfig, where: str
) -> tuple[int, bytes]:
    return sasl.login(conn, config, where)


def _connect_error(exc: BaseException, where: str) -> SendError:
    """Classify a failure while connecting, securing or logging in."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return failures.certificate_failed(where, exc.verify_message)
    if isinstance(exc, ssl.SSLError):
        return failures.tls_failed(where, exc.reason or exc)
    if isinstance(exc, smtplib.SMTPConnectError):
        return failures.greeting_refused(where, exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if isinstance(exc.__context__, TimeoutError):
            # smtplib turns a read timeout into "Connection unexpectedly closed".
            return failures.setup_timeout(where)
        return failures.setup_lost(where, exc)
    if isinstance(exc, smtplib.SMTPResponseException):
        return failures.setup_refused(where, exc.smtp_code, exc.smtp_error)
    if isinstance(exc, TimeoutError):
        return failures.setup_timeout(where)
    if isinstance(exc, OSError):
        return failures.unreachable(where, exc.strerror or exc)
    if isinstance(exc, smtplib.SMTPException):
        return failures.unreachable(where, exc)
    raise exc


#: Up to this size a message goes out in the same write as MAIL and RCPT when
#: the server offers both PIPELINING and CHUNKING. A bigger one waits until a
#: recipient is accepted, so a refused transaction never uploads megabytes and
#: a server that stops reading cannot leave us blocked mid-write.
EAGER_CHUNK_LIMIT = 64 * 1024


def deliver(
    conn: smtplib.SMTP, envelope: Envelope, recipients: Sequence[str]
) -> dict[str, RecipientStatus]:
    """Run MAIL, RCPT for each of ``recipients``, and DATA (or BDAT) once; one attempt.

    When the server offers RFC 2920 PIPELINING, MAIL, every RCPT and DATA go out
    in one write and their replies are read in order: two round trips per
    message instead of three plus one per recipient. When it also offers RFC
    3030 CHUNKING, the message itself goes as ``BDAT <size> LAST`` in that same
    write: one round trip, no dot-stuffing, and no line-by-line scan of the
    message on the server. The replies are judged the same way in every dialogue.

    Returns each recipient's status for this attempt. Raises
    :class:`StaleConnection` when the connection proved dead before anything was
    sent, and a :class:`SendError` when the attempt failed as a whole.
    """
    mail, rcpts = transaction_commands(envelope, recipients, conn.has_extn)
    pipelined = bool(conn.has_extn("pipelining"))
    chunked = bool(conn.has_extn("chunking"))
    # With BDAT the whole message may ride in the first write.
    eager = pipelined and chunked and len(envelope.data) <= EAGER_CHUNK_LIMIT
    # smtplib encodes commands with this; SMTPUTF8 addresses need UTF-8.
    conn.command_encoding = "utf-8" if envelope.smtputf8 else "ascii"
    # Replies due after the RCPTs' in the first write: DATA's, or BDAT's.
    trailing = 1 if pipelined and (eager or not chunked) else 0
    try:
        if pipelined:
            commands = [mail, *rcpts]
            if not chunked:
                commands.append("DATA")
            flight = "".join(command + "\r\n" for command in commands)
            encoded = flight.encode(conn.command_encoding)
            conn.send(encoded + _chunk(envelope.data) if eager else encoded)
        else:
            conn.putcmd(mail)
        code, reply = conn.getreply()
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        _abort(conn)
        raise StaleConnection(str(exc)) from exc
    if code == 421:
        _abort(conn)
        raise StaleConnection(_text(reply))
    if code != 250:
        if pipelined:
            _drain(
                conn, len(rcpts) + trailing
            )  # Their 503s; then the connection is clean.
        _reset(conn)
        raise failures.sender_refused(envelope, code, reply)

    statuses: dict[str, RecipientStatus] = {}
    accepted: list[str] = []
    closing: RecipientStatus | None = None
    try:
        for rcpt, command in zip(recipients, rcpts, strict=True):
            if not pipelined:
                conn.putcmd(command)
            code, reply = conn.getreply()
            if code in (250, 251):
                accepted.append(rcpt)
                continue
            statuses[rcpt] = RecipientStatus.from_reply(code, reply)
            if code == 421:
                # The server is closing: everyone not yet refused is deferred to
                # the next attempt. An eager chunk is already on its way, so hear
                # the server out: one that carries on may still take the message.
                closing = RecipientStatus("deferred", code, _text(reply))
                if not eager:
                    _abort(conn)
                    return {r: statuses.get(r, closing) for r in recipients}
        if chunked:
            data_code, data_reply = _send_chunk(conn, envelope, eager, accepted)
        else:
            data_code, data_reply = _send_data(conn, envelope, pipelined, accepted)
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        _abort(conn)
        if closing is not None:  # It said so: the message never got in.
            return {r: statuses.get(r, closing) for r in recipients}
        raise failures.lost_while_sending(envelope, exc) from exc
    if closing is not None:
        _abort(conn)
    if not accepted:
        _reset(conn)
        return statuses
    if data_code != 250:
        _reset(conn)
        raise failures.data_refused(envelope, data_code, data_reply, accepted, statuses)
    sent = RecipientStatus("sent", data_code, _text(data_reply))
    return {rcpt: sent for rcpt in accepted} | statuses


def _send_data(
    conn: smtplib.SMTP, envelope: Envelope, pipelined: bool, accepted: list[str]
) -> tuple[int, bytes]:
    """DATA, then the dot-stuffed message once the server said 354.

    Pipelined, DATA already went out with MAIL and RCPT; if no recipient was
    accepted and the server still said 354, an empty message ends it (RFC 2920).
    Returns the reply to the message, or to DATA when it never went out.
    """
    if not pipelined:
        if not accepted:
            return 0, b""
        conn.putcmd("DATA")
    code, reply = conn.getreply()
    if code != 354:
        return code, reply
    if not accepted:
        conn.send(b".\r\n")
        return conn.getreply()
    conn.send(_dot_stuffed(envelope.data))
    return conn.getreply()


def _send_chunk(
    conn: smtplib.SMTP, envelope: Envelope, eager: bool, accepted: list[str]
) -> tuple[int, bytes]:
    """The message as one ``BDAT <size> LAST`` (RFC 3030); its reply.

    An ``eager`` chunk already went out with MAIL and RCPT: only its reply is
    left to read (a refusal when no recipient was accepted).
    """
    if eager:
        return conn.getreply()
    if not accepted:
        return 0, b""
    conn.send(_chunk(envelope.data))
    return conn.getreply()


def _chunk(data: bytes) -> bytes:
    """The message as one last BDAT chunk: sent as is, neither dot-stuffed nor
    ended by a dot, and ending in CRLF as the DATA dialogue makes it."""
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return b"BDAT %d LAST\r\n" % len(data) + data


def _dot_stuffed(data: bytes) -> bytes:
    """The message as DATA carries it (RFC 5321 4.5.2), as ``smtplib.data`` does:
    every line starting with a dot gets another one (plain replaces, five times
    faster than a multi-line regex on a 4 KB message)."""
    stuffed = data.replace(b"\n.", b"\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


def _drain(conn: smtplib.SMTP, count: int) -> None:
    """Read and drop ``count`` pipelined replies nobody needs any more."""
    try:
        for _ in range(count):
            conn.getreply()
    except (smtplib.SMTPServerDisconnected, OSError):
        _abort(conn)


def _reset(conn: smtplib.SMTP) -> None:
    """RSET so the connection can carry the next message; drop it if that fails."""
    try:
        conn.rset()
    except (smtplib.SMTPException, OSError):
        _abort(conn)


def _abort(conn: smtplib.SMTP | None) -> None:
    """Close the socket without QUIT (the conversation is already broken)."""
    if conn is not None:
        conn.close()


#: How long a goodbye may take: QUIT must never hold up a request or process exit.
QUIT_TIMEOUT = 2.0


def quit_connection(conn: smtplib.SMTP) -> None:
    """Say QUIT politely; a server that already left is not an error."""
    try:
        if conn.sock is not None:
            conn.sock.settimeout(min(conn.timeout or QUIT_TIMEOUT, QUIT_TIMEOUT))
        conn.quit()
    except (smtplib.SMTPException, OSError, ValueError):
        conn.close()


def is_open(conn: smtplib.SMTP) -> bool:
    return conn.sock is not None
