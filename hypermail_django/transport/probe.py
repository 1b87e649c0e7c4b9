"""Probe an SMTP server step by step without sending mail: the health check.

A load balancer or a deploy pipeline needs to know whether mail *would* go out,
without sending any. :func:`probe` runs the dialogue the transport runs before
``MAIL FROM`` -- connect, EHLO, STARTTLS (or implicit TLS), EHLO, AUTH -- then
NOOP and QUIT, timing each step and collecting what the server told us on the
way: its greeting, its ESMTP extensions, the TLS version and cipher, and how
long its certificate is still valid.

Errors are classified by the same helpers ``open_connection`` uses, so a probe
fails with the code sending would fail with (``auth_failed``, ``tls_failed``,
``tls_unavailable``...), plus ``timeout`` when the server did not answer within
the probe's deadline. The whole probe shares one deadline: a server that hangs
at any step is reported within ``timeout`` seconds (name resolution aside).
"""

from __future__ import annotations

import contextlib
import datetime
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .config import TransportConfig
from .connection import _connect_error, _login, _starttls, create_ssl_context
from .errors import ConnectionFailed, SendError
from .failures import text as _text

#: A certificate expiring in fewer days than this is reported with a warning.
CERT_WARNING_DAYS = 14


@dataclass(frozen=True)
class ProbeStep:
    """One step of the dialogue: how long it took and the server's reply."""

    name: str
    """``connect``, ``ehlo``, ``starttls``, ``auth``, ``noop`` or ``quit``."""
    ok: bool
    latency_ms: float
    reply: str | None = None
    """The first line of the server's reply (code and text), when it got one."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "ok": self.ok,
            "latency_ms": self.latency_ms,
            "reply": self.reply,
        }


@dataclass(frozen=True)
class Capabilities:
    """The ESMTP extensions the server advertised in its last EHLO reply."""

    size: int | None
    """The largest message the server accepts, in bytes (None: not announced,
    0: no limit)."""
    pipelining: bool
    chunking: bool
    """RFC 3030 CHUNKING (BDAT), which the backend uses when offered."""
    smtputf8: bool
    eightbitmime: bool
    starttls: bool
    """Whether the server offered STARTTLS on this connection (before TLS)."""
    auth: tuple[str, ...]
    """The AUTH mechanisms offered, upper-case (empty: no AUTH)."""
    extensions: tuple[str, ...]
    """Every extension keyword advertised, upper-case, in the server's order."""

    @classmethod
    def from_features(
        cls, features: dict[str, str], *, starttls_offered: bool
    ) -> Capabilities:
        size = features.get("size", "").strip()
        return cls(
            size=int(size) if size.isdigit() else None,
            pipelining="pipelining" in features,
            chunking="chunking" in features,
            smtputf8="smtputf8" in features,
            eightbitmime="8bitmime" in features,
            starttls=starttls_offered or "starttls" in features,
            auth=tuple(m.upper() for m in features.get("auth", "").split()),
            extensions=tuple(name.upper() for name in features),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "pipelining": self.pipelining,
            "chunking": self.chunking,
            "smtputf8": self.smtputf8,
            "8bitmime": self.eightbitmime,
            "starttls": self.starttls,
            "auth": list(self.auth),
            "extensions": list(self.extensions),
        }


@dataclass(frozen=True)
class TLSInfo:
    """The negotiated TLS session and the server's certificate."""

    version: str | None
    cipher: str | None
    bits: int | None
    cert_subject: str | None = None
    """The certificate's common name, else its first DNS/IP subjectAltName."""
    cert_issuer: str | None = None
    cert_not_after: datetime.datetime | None = None
    cert_days_left: int | None = None
    """Whole days until the certificate expires (None: not verified, so not
    inspected)."""

    @classmethod
    def from_socket(cls, sock: object, *, now: float) -> TLSInfo | None:
        """Describe ``sock``'s session; None when it is not a TLS socket."""
        if not isinstance(sock, ssl.SSLSocket):
            return None
        cipher = sock.cipher()
        # A dict only when the certificate was verified: unverified ones are
        # not decoded by the ssl module, and are not worth reporting on.
        cert: dict[str, Any] = dict(sock.getpeercert() or {})
        not_after = cert.get("notAfter")
        expires = ssl.cert_time_to_seconds(not_after) if not_after else None
        return cls(
            version=sock.version(),
            cipher=cipher[0] if cipher else None,
            bits=cipher[2] if cipher else None,
            cert_subject=_name_field(cert.get("subject", ()), "commonName")
            or _first_san(cert.get("subjectAltName", ())),
            cert_issuer=_name_field(
                cert.get("issuer", ()),
                "commonName",
                "organizationName",
                "organizationalUnitName",
            ),
            cert_not_after=None
            if expires is None
            else datetime.datetime.fromtimestamp(expires, tz=datetime.timezone.utc),
            cert_days_left=None if expires is None else int((expires - now) // 86400),
        )

    def to_dict(self) -> dict[str, Any]:
        not_after = self.cert_not_after
        return {
            "version": self.version,
            "cipher": self.cipher,
            "bits": self.bits,
            "cert_subject": self.cert_subject,
            "cert_issuer": self.cert_issuer,
            "cert_not_after": (
                not_after.strftime("%Y-%m-%dT%H:%M:%SZ") if not_after else None
            ),
            "cert_days_left": self.cert_days_left,
        }


@dataclass
class ProbeResult:
    """What a probe found. ``ok`` when every step succeeded.

    Carries no password: a result can be printed, logged or returned as JSON.
    """

    relay: str
    port: int
    security: str
    """``"plain"``, ``"starttls"`` or ``"ssl"`` (implicit TLS)."""
    username: str | None
    """The user the probe logged in as (None: no AUTH configured)."""
    timeout: float
    steps: list[ProbeStep] = field(default_factory=list)
    greeting: str | None = None
    capabilities: Capabilities | None = None
    tls: TLSInfo | None = None
    error: SendError | None = None
    failed_step: str | None = None
    warnings: list[str] = field(default_factory=list)
    latency_ms: int = 0
    """The whole probe, connect to QUIT (or to the failure), in milliseconds."""
    auth: Any = None
    """How AUTH went (a :class:`.sasl.AuthReport`: mechanism, token fetched or
    cached, provider time), when it succeeded."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (the schema of ``docs/health-checks.md``)."""
        error = self.error
        return {
            "ok": self.ok,
            "relay": self.relay,
            "port": self.port,
            "latency_ms": self.latency_ms,
            "security": self.security,
            "username": self.username,
            "timeout": self.timeout,
            "greeting": self.greeting,
            "steps": [step.to_dict() for step in self.steps],
            "capabilities": self.capabilities.to_dict() if self.capabilities else None,
            "tls": self.tls.to_dict() if self.tls else None,
            "warnings": list(self.warnings),
            "error": None
            if error is None
            else {
                "step": self.failed_step,
                "code": error.code,
                "message": error.message,
                "smtp_code": error.smtp_code,
                "transient": error.transient,
            },
        }


class ProbeFailed(ConnectionFailed):
    """A connection check failed; ``code`` is always ``"connection_failed"``.

    FluxMail's ``test_connection()`` contract: one code for "cannot send from
    here". Why is in ``reason`` (the underlying error's code, e.g.
    ``auth_failed`` or ``timeout``), ``step`` and the full ``result``.
    """

    def __init__(self, result: ProbeResult) -> None:
        error = result.error
        assert error is not None, "ProbeFailed needs a failed result"
        ConnectionFailed.__init__(
            self,
            f"Connection check failed at {result.failed_step}: {error.message}",
            smtp_code=error.smtp_code,
            smtp_error=error.smtp_error,
            transient=error.transient,
        )
        self.result = result
        self.reason: str | None = error.code
        self.step = result.failed_step
        #: For a router: every member's report (``MemberReport.to_dict()``).
        self.members: list[dict[str, Any]] = []


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
        run.step("starttls", conn, lambda: _starttls(conn, ssl_context, where))
        result.tls = TLSInfo.from_socket(conn.sock, now=time.time())
        run.step("ehlo", conn, conn.ehlo, expect=250)
    result.capabilities = Capabilities.from_features(
        conn.esmtp_features, starttls_offered=starttls_offered
    )
    if config.authenticates:
        run.step("auth", conn, lambda: _login(conn, config, where))
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
        return _connect_error(exc, where, "the greeting", config.greeting_timeout)
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
        return ConnectionFailed(
            f"{where} did not answer within the {timeout:g} s deadline "
            f"(at {step or 'connect'}).",
            code="timeout",
            transient=True,
        )
    return _connect_error(exc, where)


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
    line = _text(text).splitlines()[0] if text else ""
    return f"{code} {line}".strip()


def _name_field(name: Any, *keys: str) -> str | None:
    """The first of ``keys`` present in a certificate name decoded by ``ssl``."""
    fields = {key: value for rdn in name for key, value in rdn}
    return next((str(fields[key]) for key in keys if key in fields), None)


def _first_san(alt_names: Any) -> str | None:
    for kind, value in alt_names:
        if kind in ("DNS", "IP Address"):
            return str(value)
    return None
