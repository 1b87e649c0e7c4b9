"""SMTP AUTH: the mechanism the configuration names, on smtplib and aiosmtplib.

``auth_mechanism="auto"`` keeps the libraries' own choice (the server's best of
CRAM-MD5, PLAIN and LOGIN with the password). ``"plain"``/``"login"`` force one.
``"xoauth2"`` (Google's and Microsoft's) and ``"oauthbearer"`` (RFC 7628) send
an OAuth2 access token from ``token_provider`` through :mod:`.tokens`, and never
fall back to another mechanism: a password is never sent.

A refused token is dropped from the cache and :class:`TokenRefused` raised; the
``reauthenticating`` wrappers of ``open_connection`` catch it once, so AUTH is
tried a second time, with a new token, on a fresh connection (a server that
has answered a failed XOAUTH2 may not take a second AUTH on the same one). A
second refusal is permanent.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import json
import smtplib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiosmtplib

from . import failures
from . import token_cache as tokens
from .config import TransportConfig
from .errors import SendError, TokenRefused

__all__ = [
    "OAUTH_MECHANISMS",
    "AuthReport",
    "TokenRefused",
    "alogin",
    "areauthenticating",
    "error_challenge",
    "initial_response",
    "login",
    "reauthenticating",
]

#: ``auth_mechanism`` values that sign in with a token.
OAUTH_MECHANISMS = frozenset({"xoauth2", "oauthbearer"})
MECHANISMS = frozenset({"auto", "plain", "login"}) | OAUTH_MECHANISMS


@dataclass(frozen=True)
class AuthReport:
    """How a connection signed in, for the health check: the mechanism, and for
    OAuth2 whether the token was fetched or cached and the provider's time."""

    mechanism: str
    token_fetched: bool | None = None
    provider_seconds: float | None = None


def initial_response(
    mechanism: str, username: str, token: str, host: str = "", port: int = 0
) -> bytes:
    """The SASL initial client response, before base64.

    XOAUTH2: ``user=<mailbox>^Aauth=Bearer <token>^A^A``. OAUTHBEARER (RFC 7628
    section 3.1): a GS2 header naming the mailbox, then ``host``, ``port`` and
    ``auth`` key/values separated by ``^A``.
    """
    if mechanism == "xoauth2":
        return f"user={username}\x01auth=Bearer {token}\x01\x01".encode()
    if mechanism == "oauthbearer":
        authzid = username.replace("=", "=3D").replace(",", "=2C")
        return (
            f"n,a={authzid},\x01host={host}\x01port={port}\x01"
            f"auth=Bearer {token}\x01\x01"
        ).encode()
    raise ValueError(f"not an OAuth2 mechanism: {mechanism!r}")


def error_challenge(payload: str | bytes) -> dict[str, Any] | None:
    """Decode the base64 JSON error a server sends as a ``334`` challenge when
    it refuses a token (Google; RFC 7628 section 3.2.2), or None."""
    try:
        decoded = base64.b64decode(payload, validate=True)
        value = json.loads(decoded)
    except (binascii.Error, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _where(config: TransportConfig) -> str:
    return f"{config.host}:{config.port}"


def _offered(features: str, mechanism: str) -> bool:
    return mechanism.upper() in features.upper().split()


def _token(config: TransportConfig) -> tokens.Fetched:
    provider = config.token_provider
    # conf/mailer_options.py refuses this; a TransportConfig built by hand may not
    if provider is None:
        raise failures.token_provider_missing(config.auth_mechanism)
    try:
        return tokens.cache.get(provider, config.token_refresh_margin)
    except Exception as exc:
        raise token_failed(config, exc) from None


def token_failed(config: TransportConfig, exc: BaseException) -> SendError:
    """The provider raised: ``token_failed``, transient when it says so."""
    reason = tokens.describe_failure(exc, tokens.secrets_of(config.token_provider))
    return failures.token_failed(
        config.username, reason, transient=tokens.is_transient_failure(exc)
    )


def _refused(
    config: TransportConfig,
    fetched: tokens.Fetched,
    code: int,
    reply: bytes | str,
    detail: dict[str, Any] | None,
) -> TokenRefused:
    assert config.token_provider is not None
    tokens.cache.invalidate(config.token_provider, fetched.token)
    return failures.token_refused(_where(config), config.username, code, reply, detail)


def _judge(
    config: TransportConfig,
    fetched: tokens.Fetched,
    code: int,
    reply: bytes | str,
    detail: dict[str, Any] | None,
) -> SendError:
    """A 5xx refuses the token; a 4xx is the server's trouble, not the token's."""
    if 500 <= code < 600:
        return _refused(config, fetched, code, reply, detail)
    return failures.auth_refused(_where(config), config.username, code, reply)


def _mark(conn: object, report: AuthReport) -> None:
    # Read by the health probe (mechanism used, token fetched or cached).
    with contextlib.suppress(AttributeError):
        conn.hypermail_auth = report  # type: ignore[attr-defined]


# -- smtplib ----------------------------------------------------------------


def login(conn: smtplib.SMTP, config: TransportConfig, where: str) -> tuple[int, bytes]:
    """Sign in with the configured mechanism; raise a classified SendError."""
    features = conn.esmtp_features.get("auth")
    if features is None:
        raise failures.auth_unsupported(where)
    mechanism = config.auth_mechanism
    if mechanism in OAUTH_MECHANISMS:
        return _oauth_login(conn, config, where, features)
    if mechanism != "auto" and not _offered(features, mechanism):
        raise failures.mechanism_unoffered(where, mechanism, features)
    try:
        if mechanism == "auto":
            result = conn.login(config.username, config.password)
        else:
            conn.user, conn.password = config.username, config.password
            auth = conn.auth_plain if mechanism == "plain" else conn.auth_login
            result = conn.auth(mechanism.upper(), auth)
    except smtplib.SMTPAuthenticationError as exc:
        raise failures.auth_refused(
            where, config.username, exc.smtp_code, exc.smtp_error
        ) from None
    _mark(conn, AuthReport(mechanism))
    return result


def _oauth_login(
    conn: smtplib.SMTP, config: TransportConfig, where: str, features: str
) -> tuple[int, bytes]:
    mechanism = config.auth_mechanism
    if not _offered(features, mechanism):
        raise failures.mechanism_unoffered(where, mechanism, features)
    fetched = _token(config)
    blob = initial_response(
        mechanism, config.username, fetched.token.token, config.host, config.port
    )
    encoded = base64.b64encode(blob).decode("ascii")
    code, reply = conn.docmd("AUTH", f"{mechanism.upper()} {encoded}")
    detail = None
    if code == 334:
        # A refusal carried as a challenge: answer it (an empty line for
        # XOAUTH2, ^A for OAUTHBEARER) to get the final 5xx.
        detail = error_challenge(reply)
        code, reply = conn.docmd("" if mechanism == "xoauth2" else "AQ==")
    if code == 235:
        _mark(conn, AuthReport(mechanism, fetched.fetched, fetched.seconds))
        return code, reply
    raise _judge(config, fetched, code, reply, detail)


Opener = TypeVar("Opener", bound=Callable[..., Any])


def reauthenticating(open_connection: Opener) -> Opener:
    """Open again, once, when the server refused the token: the cache then holds
    none, so the new connection signs in with a newly fetched one."""

    @functools.wraps(open_connection)
    def wrapper(config: TransportConfig, *args: Any, **kwargs: Any) -> Any:
        try:
            return open_connection(config, *args, **kwargs)
        except TokenRefused:
            pass
        try:
            return open_connection(config, *args, **kwargs)
        except TokenRefused as exc:
            exc.transient = False
            raise

    return wrapper  # type: ignore[return-value]


# -- aiosmtplib ---------------------------------------------------------------


async def alogin(smtp: Any, config: TransportConfig, where: str) -> None:
    """:func:`login` on an ``aiosmtplib.SMTP``."""
    if not smtp.supports_extension("auth"):
        raise failures.auth_unsupported(where)
    features = smtp.esmtp_extensions.get("auth", "")
    mechanism = config.auth_mechanism
    if mechanism in OAUTH_MECHANISMS:
        await _aoauth_login(smtp, config, where, features)
        return
    if mechanism != "auto" and not _offered(features, mechanism):
        raise failures.mechanism_unoffered(where, mechanism, features)
    try:
        if mechanism == "auto":
            await smtp.login(config.username, config.password)
        else:
            auth = smtp.auth_plain if mechanism == "plain" else smtp.auth_login
            await auth(config.username, config.password)
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise failures.auth_refused(
            where, config.username, exc.code, exc.message
        ) from None
    _mark(smtp, AuthReport(mechanism))


async def _atoken(config: TransportConfig) -> tokens.Fetched:
    provider = config.token_provider
    if provider is not None:
        cached = tokens.cache.peek(provider, config.token_refresh_margin)
        if cached is not None:
            return tokens.Fetched(cached, False, 0.0)
    # Providers block (HTTP); the cache's lock makes coroutines in other
    # threads and threads of the sync path wait for one fetch.
    return await asyncio.to_thread(_token, config)


async def _aoauth_login(
    smtp: Any, config: TransportConfig, where: str, features: str
) -> None:
    mechanism = config.auth_mechanism
    if not _offered(features, mechanism):
        raise failures.mechanism_unoffered(where, mechanism, features)
    fetched = await _atoken(config)
    blob = initial_response(
        mechanism, config.username, fetched.token.token, config.host, config.port
    )
    encoded = base64.b64encode(blob)
    response = await smtp.execute_command(b"AUTH", mechanism.upper().encode(), encoded)
    code, reply = response.code, response.message
    detail = None
    if code == 334:
        detail = error_challenge(reply)
        answer = b"" if mechanism == "xoauth2" else b"AQ=="
        response = await smtp.execute_command(answer)
        code, reply = response.code, response.message
    if code == 235:
        _mark(smtp, AuthReport(mechanism, fetched.fetched, fetched.seconds))
        return
    raise _judge(config, fetched, code, reply, detail)


AsyncOpener = TypeVar("AsyncOpener", bound=Callable[..., Awaitable[Any]])


def areauthenticating(open_connection: AsyncOpener) -> AsyncOpener:
    """:func:`reauthenticating` for ``open_async_connection``."""

    @functools.wraps(open_connection)
    async def wrapper(config: TransportConfig, *args: Any, **kwargs: Any) -> Any:
        try:
            return await open_connection(config, *args, **kwargs)
        except TokenRefused:
            pass
        try:
            return await open_connection(config, *args, **kwargs)
        except TokenRefused as exc:
            exc.transient = False
            raise

    return wrapper  # type: ignore[return-value]
