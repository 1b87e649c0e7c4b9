"""How a test SMTP server behaves when nothing goes wrong: its frozen options.

One validated, immutable value (:class:`SMTPServerOptions`), so a test suite
can define a server once (``RELAY = SMTPServerOptions(chunking=True, ...)``)
and start as many as it needs; ``SMTPTestServer(**keywords)`` builds one too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .certificates import TLSCertificates
from .smtpd_oauth import TokenCheck

__all__ = ["HOST", "SMTPServerOptions"]

#: The server only ever listens on IPv4 loopback: nothing outside the machine
#: should reach a server that accepts any credentials a test configures.
HOST = "127.0.0.1"


@dataclass(frozen=True)
class SMTPServerOptions:
    """The options of :class:`~.smtp_test_server.SMTPTestServer` (see there
    for each one); invalid combinations raise ``ValueError`` when built."""

    starttls: bool = False
    implicit_tls: bool = False
    certs: TLSCertificates | None = None
    auth: Mapping[str, str] | None = field(default=None, repr=False)
    auth_require_tls: bool = True
    require_client_cert: bool = False
    smtputf8: bool = True
    offer_starttls_ext: bool | None = None
    reply_delay: float = 0.0
    port: int = 0
    pipelining: bool = False
    round_trip_delay: float = 0.0
    chunking: bool = False
    oauth: TokenCheck | None = None
    oauth_refusal: str = "microsoft"

    def __post_init__(self) -> None:
        if self.oauth_refusal not in ("microsoft", "google"):
            raise ValueError("oauth_refusal must be 'microsoft' or 'google'")
        if self.starttls and self.implicit_tls:
            raise ValueError("choose one of starttls and implicit_tls")
        if self.require_client_cert and not self.tls:
            raise ValueError("require_client_cert needs starttls or implicit_tls")
        if self.reply_delay < 0 or self.round_trip_delay < 0:
            raise ValueError("reply_delay and round_trip_delay must not be negative")
        if self.auth is not None:
            # A copy: the test's dict may change after the server started.
            object.__setattr__(self, "auth", dict(self.auth))

    @property
    def tls(self) -> bool:
        """Whether a TLS mode is on (STARTTLS or implicit TLS)."""
        return self.starttls or self.implicit_tls

    @property
    def offers_auth(self) -> bool:
        """Whether EHLO offers AUTH at all (passwords, tokens or both)."""
        return self.auth is not None or self.oauth is not None
