"""Open an SMTP connection with smtplib: connect, EHLO, STARTTLS, AUTH.

Every failure leaves here as a :class:`~.errors.SendError` (built by
:mod:`.failures`) whose ``transient`` flag the retry policy reads: 4xx replies,
timeouts, refused and dropped connections are transient; 5xx replies and TLS or
certificate problems are permanent. The mail transaction itself is
:mod:`.dialogue`'s, driven by :mod:`.sender`.
"""

from __future__ import annotations

import select
import smtplib
import ssl

from . import failures, sasl
from .config import TransportConfig
from .errors import SendError

__all__ = [
    "QUIT_TIMEOUT",
    "connect_error",
    "create_ssl_context",
    "decline_extensions",
    "is_alive",
    "open_connection",
    "quit_connection",
    "starttls",
]


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
    step = "the greeting"  # What a timeout was waiting for.
    wait = config.greeting_timeout  # TCP connect, implicit TLS and the 220.
    try:
        if config.use_ssl:
            conn = smtplib.SMTP_SSL(
                config.host,
                config.port,
                local_hostname=config.local_hostname,
                timeout=wait,
                context=ssl_context,
            )
        else:
            conn = smtplib.SMTP(
                config.host,
                config.port,
                local_hostname=config.local_hostname,
                timeout=wait,
            )
        # Every later reply before the content waits ``timeout``.
        wait = conn.timeout = config.timeout
        if conn.sock is not None:
            conn.sock.settimeout(wait)
        step = "EHLO"
        conn.ehlo_or_helo_if_needed()
        if config.use_tls:
            step = "STARTTLS"
            starttls(conn, ssl_context, where)
            step = "EHLO"
            conn.ehlo()
        if config.authenticates:
            step = "AUTH"
            _login(conn, config, where)
        decline_extensions(conn.esmtp_features, config)
        return conn
    except SendError:
        _abort(conn)
        raise
    except BaseException as exc:
        _abort(conn)
        raise connect_error(exc, where, step, wait) from exc


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


def starttls(
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


def connect_error(
    exc: BaseException,
    where: str,
    step: str | None = None,
    timeout: float | None = None,
) -> SendError:
    """Classify a failure while connecting, securing or logging in; a timeout
    says which ``step`` it waited for."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return failures.certificate_failed(where, exc.verify_message)
    if isinstance(exc, ssl.SSLError):
        return failures.tls_failed(where, exc.reason or exc)
    if isinstance(exc, smtplib.SMTPConnectError):
        return failures.greeting_refused(where, exc.smtp_code, exc.smtp_error)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if isinstance(exc.__context__, TimeoutError):
            # smtplib turns a read timeout into "Connection unexpectedly closed".
            return failures.setup_timeout(where, timeout, step)
        return failures.setup_lost(where, exc)
    if isinstance(exc, smtplib.SMTPResponseException):
        return failures.setup_refused(where, exc.smtp_code, exc.smtp_error)
    if isinstance(exc, TimeoutError):
        # Raised as is only by the TCP connect (and TLS handshake) itself.
        connecting = step == "the greeting"
        return failures.setup_timeout(where, timeout, step, connecting=connecting)
    if isinstance(exc, OSError):
        return failures.unreachable(where, exc.strerror or exc, exc)
    if isinstance(exc, smtplib.SMTPException):
        return failures.unreachable(where, exc)
    raise exc


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


def is_alive(conn: smtplib.SMTP) -> bool:
    """Whether an idle connection can carry a transaction, seen without
    sending anything: still open, and the server has said nothing since (a
    readable idle socket means it closed, or sent a 421 before closing)."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return False
        if not hasattr(select, "poll"):  # Windows
            return not select.select([sock], [], [], 0)[0]
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False
