"""OAuth2 access tokens for SMTP AUTH: one cached token per provider and process.

Fetching a token costs a round trip to an identity provider (tens to hundreds
of milliseconds), and providers throttle clients that ask too often, so every
connection of a process shares one token per provider: refreshed a margin
ahead of its expiry, fetched by one thread at a time while the others wait
(no stampede when a pool opens ten connections at once), dropped when a
server refuses it. Worker processes start with an empty cache (fork-safe).

No token ever reaches a log, an error, a repr or a status from here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("hypermail_django.transport")

__all__ = [
    "AccessToken",
    "Fetched",
    "TokenError",
    "TokenProvider",
    "cache",
    "describe_failure",
]


@dataclass(frozen=True)
class AccessToken:
    """An access token and when it expires (``None``: unknown, kept until refused).

    ``expires_at`` is a Unix time or an aware :class:`~datetime.datetime`; it is
    stored as a Unix time. The token itself is kept out of ``repr()``.
    """

    token: str = field(repr=False)
    expires_at: float | None = None
    #: When it was fetched (set by the cache): a margin is capped at half the
    #: token's lifetime, so a token living less than the margin is still used.
    fetched_at: float | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.token, str) or not self.token:
            raise TypeError("AccessToken.token must be a non-empty str")
        expires = self.expires_at
        if isinstance(expires, datetime.datetime):
            if expires.tzinfo is None:
                raise TypeError(
                    "AccessToken.expires_at must be an aware datetime (or a Unix "
                    "time); a naive one is ambiguous."
                )
            object.__setattr__(self, "expires_at", expires.timestamp())
        elif expires is not None and not isinstance(expires, (int, float)):
            raise TypeError("AccessToken.expires_at must be a Unix time or a datetime")
        elif expires is not None:
            object.__setattr__(self, "expires_at", float(expires))

    def fresh(self, margin: float, now: float | None = None) -> bool:
        """Whether the token is still good for at least ``margin`` seconds."""
        if self.expires_at is None:
            return True
        if self.fetched_at is not None:
            margin = min(margin, (self.expires_at - self.fetched_at) / 2)
        return (time.time() if now is None else now) + margin < self.expires_at


#: What ``token_provider`` is: called with no arguments, returns a token.
TokenProvider = Callable[[], str | AccessToken]


class TokenError(Exception):
    """A token provider could not get a token.

    Providers raise it with a message free of secrets; ``transient`` says
    whether trying later may help (network errors, 5xx, throttling).
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Fetched:
    """The token to use now, whether it came from the provider (``fetched``) or
    the cache, and how long the provider took (0.0 when cached)."""

    token: AccessToken = field(repr=False)
    fetched: bool
    seconds: float


def _normalize(value: object) -> AccessToken:
    if isinstance(value, AccessToken):
        return value
    if isinstance(value, str) and value:
        return AccessToken(value)
    raise TokenError(
        "token_provider returned "
        f"{type(value).__name__}; it must return a non-empty str or an AccessToken."
    )


def describe_failure(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """The provider's message with any known secret replaced by ``***``."""
    message = str(exc) or type(exc).__name__
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    if not isinstance(exc, TokenError):
        message = f"{type(exc).__name__}: {message}"
    return message


def is_transient_failure(exc: BaseException) -> bool:
    """Network trouble and providers that say so are worth another try."""
    flag = getattr(exc, "transient", None)
    if isinstance(flag, bool):
        return flag
    return isinstance(exc, (OSError, TimeoutError))


class _Entry:
    __slots__ = ("fetches", "lock", "provider", "token")

    def __init__(self, provider: Callable[[], object]) -> None:
        self.provider = provider
        self.token: AccessToken | None = None
        self.lock = threading.Lock()
        self.fetches = 0


class TokenCache:
    """Tokens by provider (providers compare by value: two mailers configured
    alike share one token)."""

    def __init__(self) -> None:
        self._entries: dict[object, _Entry] = {}
        self._lock = threading.Lock()
        self._clock: Callable[[], float] = time.monotonic

    def _entry(self, provider: Callable[[], object]) -> _Entry:
        entry = self._entries.get(provider)
        if entry is None:
            with self._lock:
                entry = self._entries.setdefault(provider, _Entry(provider))
        return entry

    def peek(self, provider: Callable[[], object], margin: float) -> AccessToken | None:
        """The cached token when it is fresh enough; never calls the provider."""
        token = self._entry(provider).token
        return token if token is not None and token.fresh(margin) else None

    def get(self, provider: Callable[[], object], margin: float) -> Fetched:
        """A token good for at least ``margin`` more seconds, fetching one if needed.

        Raises whatever the provider raised (see :func:`describe_failure`).
        """
        entry = self._entry(provider)
        token = entry.token
        if token is not None and token.fresh(margin):
            return Fetched(token, False, 0.0)
        with entry.lock:
            token = entry.token  # another thread may have fetched it meanwhile
            if token is not None and token.fresh(margin):
                return Fetched(token, False, 0.0)
            started = self._clock()
            fetched_at = time.time()
            token = _normalize(entry.provider())
            seconds = self._clock() - started
            token = dataclasses.replace(token, fetched_at=fetched_at)
            entry.token = token
            entry.fetches += 1
            lifetime = (
                f"valid for {token.expires_at - fetched_at:.0f} s"
                if token.expires_at is not None
                else "no expiry given"
            )
            # Names the provider by type only: its repr is safe, but a user's
            # callable may print anything.
            logger.debug(
                "Fetched an OAuth2 token from %s in %.0f ms (%s).",
                type(entry.provider).__name__,
                seconds * 1000,
                lifetime,
            )
            return Fetched(token, True, seconds)

    def invalidate(self, provider: Callable[[], object], token: AccessToken) -> None:
        """Drop ``token`` if it is still the cached one: of many connections
        refused with the same token, only the first makes the next one fetch."""
        entry = self._entry(provider)
        with entry.lock:
            if entry.token is token:
                entry.token = None
                logger.debug("Dropped an OAuth2 token the server refused.")
                # A provider with a cache of its own (MSAL keeps tokens until
                # five minutes before expiry) must not hand the refused one back.
                forget = getattr(entry.provider, "forget", None)
                if callable(forget):
                    with contextlib.suppress(Exception):
                        forget(token.token)

    def fetches(self, provider: Callable[[], object]) -> int:
        """How many tokens this process fetched from ``provider`` (for tests and
        ``mailcheck``)."""
        entry = self._entries.get(provider)
        return entry.fetches if entry is not None else 0

    def clear(self) -> None:
        """Forget every token (tests; a child process after fork)."""
        with self._lock:
            self._entries = {}

    def _after_fork(self) -> None:
        # Locks held by other threads at fork time would never be released in
        # the child; start over with new ones (and fetch the child's own token).
        self._lock = threading.Lock()
        self._entries = {}


#: The process-wide cache every sync and async connection uses.
cache = TokenCache()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=cache._after_fork)


def secrets_of(provider: Any) -> tuple[str, ...]:
    """The values a provider asks to have scrubbed from error messages."""
    getter = getattr(provider, "secrets", None)
    if callable(getter):
        try:
            return tuple(s for s in getter() if isinstance(s, str) and s)
        except Exception:
            return ()
    return ()
