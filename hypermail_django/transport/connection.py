"""Open an SMTP connection and run one delivery attempt on it, with smtplib.

Every failure leaves here as a :class:`~.errors.SendError` whose ``transient`` flag
the retry policy reads: 4xx replies, timeouts, refused and dropped connections are
transient; 5xx replies and TLS or certificate problems are permanent.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence

from .config import TransportConfig
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


class StaleConnection(Exception):
    """The connection was dead before anything was sent on it (MAIL FROM failed
    with a closed socket or a 421). Safe to replace and try again at once."""


def is_transient_code(code: int) -> bool:
    return 400 <= code < 500


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
        return conn
    except SendError:
        _abort(conn)
        raise
    except BaseException as exc:
        _abort(conn)
        raise _connect_error(exc, where) from exc


def _starttls(
    conn: smtplib.SMTP, ssl_context: ssl.SSLContext | None, where: str
) -> tuple[int, bytes]:
    """Upgrade to TLS; refuse to go on in clear text (the next step is AUTH).

    Shared with the health probe, so a check fails exactly as sending would.
    """
    if not conn.has_extn("starttls"):
        raise TLSFailed(
            f"{where} does not offer STARTTLS but use_tls is on; nothing "
            "was sent. Check the port (587 for STARTTLS, 465 for use_ssl).",
            code="tls_unavailable",
        )
    try:
        return conn.starttls(context=ssl_context)
    except smtplib.SMTPResponseException as exc:  # smtplib raises for non-220.
        raise TLSFailed(
            f"{where} refused STARTTLS: {exc.smtp_code} {_text(exc.smtp_error)}",
            smtp_code=exc.smtp_code,
            smtp_error=exc.smtp_error,
            transient=is_transient_code(exc.smtp_code),
        ) from None


def _login(
    conn: smtplib.SMTP, config: TransportConfig, where: str
) -> tuple[int, bytes]:
    if not conn.has_extn("auth"):
        raise AuthenticationFailed(
            f"{where} offers no AUTH; set use_tls/use_ssl if it only offers AUTH "
            "over TLS, or remove the username and password.",
            code="auth_unsupported",
        )
    try:
        return conn.login(config.username, config.password)
    except smtplib.SMTPAuthenticationError as exc:
        raise AuthenticationFailed(
            f"{where} refused the credentials for user {config.username!r}: "
            f"{exc.smtp_code} {_text(exc.smtp_error)}",
            smtp_code=exc.smtp_code,
            smtp_error=exc.smtp_error,
            transient=is_transient_code(exc.smtp_code),
        ) from None


def _connect_error(exc: BaseException, where: str) -> SendError:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return CertificateFailed(
            f"The certificate of {where} failed verification: {exc.verify_message}. "
            "Trust its CA (SSL_CERT_FILE) or fix the host name.",
        )
    if isinstance(exc, ssl.SSLError):
        return TLSFailed(f"TLS with {where} failed: {exc.reason or exc}")
    if isinstance(exc, smtplib.SMTPConnectError):
        return GreetingRefused(
            f"{where} refused the connection: {exc.smtp_code} {_text(exc.smtp_error)}",
            smtp_code=exc.smtp_code,
            smtp_error=exc.smtp_error,
            transient=is_transient_code(exc.smtp_code),
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if isinstance(exc.__context__, TimeoutError):
            # smtplib turns a read timeout into "Connection unexpectedly closed".
            return ConnectTimeout(
                f"{where} did not answer in time during setup", transient=True
            )
        return ConnectionLost(
            f"{where} closed the connection during setup: {exc}", transient=True
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return ConnectionFailed(
            f"{where} answered {exc.smtp_code} {_text(exc.smtp_error)} during setup",
            smtp_code=exc.smtp_code,
            smtp_error=exc.smtp_error,
            transient=is_transient_code(exc.smtp_code),
        )
    if isinstance(exc, TimeoutError):
        return ConnectTimeout(f"Timed out connecting to {where}", transient=True)
    if isinstance(exc, OSError):
        return ConnectionFailed(
            f"Could not connect to {where}: {exc.strerror or exc}", transient=True
        )
    if isinstance(exc, smtplib.SMTPException):
        return ConnectionFailed(f"SMTP setup with {where} failed: {exc}")
    raise exc


def deliver(
    conn: smtplib.SMTP, envelope: Envelope, recipients: Sequence[str]
) -> dict[str, RecipientStatus]:
    """Run MAIL, RCPT for each of ``recipients``, and DATA once; one attempt.

    Returns each recipient's status for this attempt. Raises
    :class:`StaleConnection` when the connection proved dead before anything was
    sent, and a :class:`SendError` when the attempt failed as a whole.
    """
    data = envelope.data
    mail_options = []
    if conn.has_extn("size"):
        mail_options.append(f"SIZE={len(data)}")
    if envelope.smtputf8:
        if not conn.has_extn("smtputf8"):
            raise SMTPUTF8Unsupported(
                f"Message {envelope.message_id}: an address has a non-ASCII local "
                "part, which needs SMTPUTF8, and the server does not offer it.",
            )
        mail_options.append("SMTPUTF8")
        if conn.has_extn("8bitmime"):
            mail_options.append("BODY=8BITMIME")

    try:
        code, reply = conn.mail(envelope.mail_from, mail_options)
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        _abort(conn)
        raise StaleConnection(str(exc)) from exc
    if code == 421:
        _abort(conn)
        raise StaleConnection(_text(reply))
    if code != 250:
        _reset(conn)
        raise SenderRefused(
            f"The server refused sender {envelope.mail_from!r}: {code} {_text(reply)}",
            sender=envelope.mail_from,
            smtp_code=code,
            smtp_error=reply,
            transient=is_transient_code(code),
        )

    statuses: dict[str, RecipientStatus] = {}
    accepted: list[str] = []
    try:
        for rcpt in recipients:
            code, reply = conn.rcpt(rcpt)
            if code in (250, 251):
                accepted.append(rcpt)
                continue
            statuses[rcpt] = RecipientStatus.from_reply(code, reply)
            if code == 421:
                # The server is closing: nothing goes out on this connection, so
                # everyone not yet refused is deferred to the next attempt.
                _abort(conn)
                deferred = RecipientStatus("deferred", code, _text(reply))
                return {r: statuses.get(r, deferred) for r in recipients}
        if not accepted:
            _reset(conn)
            return statuses
        data_code, data_reply = _data(conn, data)
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        _abort(conn)
        raise ConnectionLost(
            f"The connection was lost while sending {envelope.message_id}: {exc}",
            transient=True,
        ) from exc
    if data_code != 250:
        _reset(conn)
        error = DataRefused(
            f"The server refused message {envelope.message_id}: "
            f"{data_code} {_text(data_reply)}",
            smtp_code=data_code,
            smtp_error=data_reply,
            transient=is_transient_code(data_code),
        )
        refusal = RecipientStatus.from_reply(data_code, data_reply)
        error.attempt_statuses = {rcpt: refusal for rcpt in accepted} | statuses
        raise error
    sent = RecipientStatus("sent", data_code, _text(data_reply))
    return {rcpt: sent for rcpt in accepted} | statuses


def _data(conn: smtplib.SMTP, data: bytes) -> tuple[int, bytes | str]:
    """``conn.data`` returning the reply to DATA itself as a result, not an error."""
    try:
        return conn.data(data)
    except smtplib.SMTPDataError as exc:
        return exc.smtp_code, exc.smtp_error


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


def _text(reply: bytes | str | None) -> str:
    if reply is None:
        return ""
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
