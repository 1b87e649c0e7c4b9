"""The one configuration object the transport runs on."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

_NOT_IN_POOL_KEY = frozenset(
    {"max_retries", "retry_delay", "retry_max_delay", "retry_uncertain", "data_timeout"}
)


#: The default bound on connect + greeting, in seconds (``connect_timeout``).
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class TransportConfig:
    """Everything needed to reach one SMTP server and deliver to it.

    Frozen and hashable: connections are pooled per distinct ``pool_key``, so two
    backends configured alike share their connections. ``password`` is kept out of
    ``repr()`` so a config can be logged or shown in a traceback safely.
    """

    host: str = "localhost"
    port: int = 25
    username: str = ""
    password: str = field(default="", repr=False)
    use_tls: bool = False
    use_ssl: bool = False
    timeout: float = 30.0
    #: How long TCP connect, an implicit-TLS handshake and the 220 greeting may
    #: take together; None: :data:`CONNECT_TIMEOUT`, or ``timeout`` if smaller.
    connect_timeout: float | None = None
    #: How long to wait for the reply to the end of the content (RFC 5321
    #: 4.5.3.2.6 suggests 10 minutes: the server may be scanning the message).
    data_timeout: float = 120.0
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    local_hostname: str | None = None
    # OAuth2 sign-in (transport/sasl.py): the provider is hashable (a function,
    # or a provider object comparing by value) and never shown by repr().
    auth_mechanism: str = "auto"
    token_provider: Callable[[], object] | None = field(default=None, repr=False)
    token_refresh_margin: float = 300.0
    # Retry policy.
    max_retries: int = 0
    retry_delay: float = 1.0
    retry_max_delay: float = 30.0
    #: Retry a message whose outcome is uncertain (sent, and no reply came):
    #: at-least-once instead of at-most-once.
    retry_uncertain: bool = False
    # Pool.
    pool_size: int = 10
    max_connection_age: float = 300.0
    max_messages_per_connection: int = 100
    # SMTP extensions used when the server offers them (False: never).
    pipelining: bool = True
    chunking: bool = True

    @property
    def greeting_timeout(self) -> float:
        """The bound on connect + TLS handshake + greeting actually used.

        Shorter than ``timeout`` by default: a port that accepts and never
        greets (an HTTP server) is found out in seconds, while a greeting
        pause such as Postfix postscreen's (6 s) still fits.
        """
        if self.connect_timeout is not None:
            return self.connect_timeout
        return min(CONNECT_TIMEOUT, self.timeout)

    @property
    def pool_key(self) -> tuple[object, ...]:
        """The fields that decide whether two configs may share connections.

        The retry policy and the wait for the content's reply are left out:
        they change how we use a connection, not which server, identity or TLS
        setup it has.
        """
        return tuple(
            getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in _NOT_IN_POOL_KEY
        )

    @property
    def authenticates(self) -> bool:
        """Log in only with both a username and a password (as Django does) or a
        token provider."""
        return bool(self.username and (self.password or self.token_provider))
