"""Run the health probe: the setup dialogue of sending, timed step by step,
under one deadline, and no mail sent.

A load balancer or a deploy pipeline needs to know whether mail *would* go out,
without sending any. :func:`probe` runs the dialogue the transport runs before
``MAIL FROM`` -- connect, EHLO, STARTTLS (or implicit TLS), EHLO, AUTH -- then
NOOP and QUIT, timing each step and collecting what the server told us on the
way into a :class:`~.probe_report.ProbeResult`.

Errors are classified by the same helpers ``open_connection`` uses, so a probe
fails with the code sending would fail with (``auth_failed``, ``tls_failed``,
``tls_unavailable``...), plus ``timeout`` when the server did not answer within
the probe's deadline. The whole probe shares one deadline, kept by a watchdog
thread: a server that hangs at any step is reported within ``timeout`` seconds
(name resolution aside).
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable

from . import failures, sasl
from .config import TransportConfig
from .connection import connect_error, create_ssl_context, starttls
from .errors import SendError
from .probe_report import (
    CERT_WARNING_DAYS,
    Capabilities,
    ProbeResult,
    ProbeStep,
    TLSInfo,
)

__all__ = ["probe"]


def probe(
    config: TransportConfig,
    *,
    timeout: float | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> ProbeResult:
    """Run connect, EHLO, STARTTLS/TLS, EHLO, AUTH, NOOP and QUIT; send no mail.

    ``timeout`` (default: the config's) is the deadline for the whole probe.
    ``ssl_context`` defaults to a new one built as the transport builds it, so
    the probe trusts exactly what sending trusts. Never raises for a server
    problem: the failure is in the result's ``error`` and ``failed_step``.
    """
    deadline = config.timeout if timeout is None else timeout
    if not deadline > 0:
        raise ValueError(f"timeout must be more than 0 seconds, got {timeout!r}")
    security = "ssl" if config.use_ssl else "starttls" if config.use_tls else "plain"
    result = ProbeResult(
        relay=config.host,
        port=config.port,
        security=security,
        username=config.username if config.authenticates else None,
        timeout=deadline,
    )
    run = _Run(result, time.perf_counter() + deadline)
    conn: smtplib.SMTP | None = None
    watchdog: threading.Timer | None = None
    try:
        if security != "plain" and ssl_context is None:
            ssl_context = create_ssl_context(config)
        conn = _client(config, ssl_context, deadline)
        # Socket timeouts bound each read, not a reply trickled byte by byte:
        # at the deadline the socket is shut down, which ends any read at once.
        watchdog = threading.Timer(deadline, _cut, args=(conn,))
        watchdog.daemon = True
        watchdog.start()
        _dialogue(run, conn, config, ssl_context)
    except BaseException as exc:
        if conn is not None:
            conn.close()
        late = time.perf_counter() >= run.deadline
        result.error = _classify(exc, config, deadline, result.failed_step, late)
    finally:
        if watchdog is not None:
            watchdog.cancel()
    result.latency_ms = round((time.perf_counter() - run.started) * 1000)
    result.warnings = _warnings(result, config)
    return result


def _dialogue(
    run: _Run,
    conn: smtplib.SMTP,
    config: TransportConfig,
    ssl_context: ssl.SSLContext | None,
) -> None:
    result = run.result
    where = f"{config.host}:{config.port}"

    def connect() -> tuple[int, bytes]:
        code, reply = conn.connect(config.host, config.port)
        result.greeting = _first_line(code, reply)
        return code, reply

    run.step(
        "connect",
        conn,
        connect,
        expect=220,
        refusal=smtplib.SMTPConnectError,
        bound=config.greeting_timeout,  # as sending: a silent port shows early
    )
    if config.use_ssl:
        result.tls = TLSInfo.from_socket(conn.sock, now=time.time())
    run.step("ehlo", conn, lambda: _ehlo_or_helo(conn), expect=250)
    starttls_offered = conn.has_extn("starttls")
    # What the server offered before TLS, kept if STARTTLS then fails (not
    # offered, refused), so the user sees what the server does offer.
    result.capabilities = Capabilities.from_features(
        conn.esmtp_features, starttls_offered=starttls_offered
    )
    if config.use_tls:
        run.step("starttls", conn, lambda: starttls(conn, ssl_context, where))
        result.tls = TLSInfo.from_socket(conn.sock, now=time.time())
        run.step("ehlo", conn, conn.ehlo, expect=250)
    result.capabilities = Capabilities.from_features(
        conn.esmtp_features, starttls_offered=starttls_offered
    )
    if config.authenticates:
        run.step("auth", conn, lambda: sasl.login(conn, config, where))
        result.auth = getattr(conn, "hypermail_auth", None)
    run.step("noop", conn, conn.noop, expect=250)
    run.step("quit", conn, conn.quit, expect=221)


class _Run:
    """Runs the steps against one deadline and records them on the result."""

    def __init__(self, result: ProbeResult, deadline: float) -> None:
        self.result = result
        self.deadline = deadline
        self.started = time.perf_counter()

    def step(
        self,
        name: str,
        conn: smtplib.SMTP,
        action: Callable[[], tuple[int, bytes]],
        *,
        expect: int | None = None,
        refusal: type[smtplib.SMTPResponseException] = smtplib.SMTPResponseException,
        bound: float | None = None,
    ) -> tuple[int, bytes]:
        remaining = self.deadline - time.perf_counter()
        if bound is not None:
            remaining = min(remaining, bound)
        started = time.perf_counter()
        reply: str | None = None
        try:
            if remaining <= 0:
                raise TimeoutError("the probe's deadline passed")
            # Each step gets what is left of the deadline, not a fresh timeout.
            conn.timeout = remaining
            if conn.sock is not None:
                conn.sock.settimeout(remaining)
            code, text = action()
            if time.perf_counter() >= self.deadline:
                # The watchdog cut this reply short: it does not count.
                raise TimeoutError("the probe's deadline passed")
            reply = _first_line(code, text)
            if expect is not None and code != expect:
                raise refusal(code, text)
        except BaseException as exc:
            if reply is None and isinstance(exc, smtplib.SMTPResponseException):
                reply = _first_line(exc.smtp_code, exc.smtp_error)
            elif reply is None and isinstance(exc, SendError) and exc.smtp_code:
                reply = _first_line(exc.smtp_code, exc.smtp_error or b"")
            self._record(name, False, started, reply)
            self.result.failed_step = name
            raise
        self._record(name, True, started, reply)
        return code, text

    def _record(self, name: str, ok: bool, started: float, reply: str | None) -> None:
        elapsed = round((time.perf_counter() - started) * 1000, 2)
        self.result.steps.append(ProbeStep(name, ok, elapsed, reply))


def _client(
    config: TransportConfig, ssl_context: ssl.SSLContext | None, timeout: float
) -> smtplib.SMTP:
    """An unconnected client, so that connecting is a step of its own."""
    conn: smtplib.SMTP
    if config.use_ssl:
        conn = smtplib.SMTP_SSL(
            local_hostname=config.local_hostname, timeout=timeout, context=ssl_context
        )
    else:
        conn = smtplib.SMTP(local_hostname=config.local_hostname, timeout=timeout)
    # Only SMTP(host) sets the name TLS verifies the certificate against;
    # connect() does not, and we call connect() ourselves to time it.
    conn._host = config.host  # type: ignore[attr-defined]
    return conn


def _ehlo_or_helo(conn: smtplib.SMTP) -> tuple[int, bytes]:
    """EHLO, falling back to HELO for a server without ESMTP (as smtplib does)."""
    code, reply = conn.ehlo()
    if 200 <= code < 300:
        return code, reply
    return conn.helo()


def _cut(conn: smtplib.SMTP) -> None:
    """End the probe's conversation now, from the watchdog's thread."""
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _classify(
    exc: BaseException,
    config: TransportConfig,
    timeout: float,
    step: str | None,
    late: bool = False,
) -> SendError:
    """The error sending would have raised; a missed deadline is ``timeout``."""
    where = f"{config.host}:{config.port}"
    if isinstance(exc, SendError) and not late:
        return exc
    if step == "connect" and not late:
        # Within the deadline, so the connect timeout ran out: say what
        # sending says ("No SMTP greeting from ... is this an SMTP port?").
        return connect_error(exc, where, "the greeting", config.greeting_timeout)
    cause = exc.__cause__ or exc.__context__
    if (
        late
        or isinstance(exc, TimeoutError)
        or (
            # smtplib turns a read timeout into "Connection unexpectedly closed".
            isinstance(exc, smtplib.SMTPServerDisconnected)
            and isinstance(cause, TimeoutError)
        )
    ):
        return failures.probe_timeout(where, timeout, step)
    return connect_error(exc, where)


def _warnings(result: ProbeResult, config: TransportConfig) -> list[str]:
    warnings = []
    days = result.tls.cert_days_left if result.tls else None
    if days is not None and days < CERT_WARNING_DAYS:
        warnings.append(
            f"The server certificate expires in {days} day(s) "
            f"(under {CERT_WARNING_DAYS}): renew it before mail stops."
        )
    caps = result.capabilities
    plain = not (config.use_tls or config.use_ssl)
    if plain and caps is not None and caps.starttls:
        warnings.append(
            "The server offers STARTTLS but use_tls is off: mail and any "
            "credentials travel in clear text."
        )
    return warnings


def _first_line(code: int, text: bytes | str | None) -> str:
    line = failures.text(text).splitlines()[0] if text else ""
    return f"{code} {line}".strip()
