"""Test tools: SMTP and OAuth2 servers, the memory outbox, assertions, pytest plugin.

The SMTP server is real, with faults injected on the server side.

The servers need the ``testing`` extra (``pip install hypermail-django[testing]``),
which brings aiosmtpd and trustme. Importing this package imports none of them
and no Django: each name loads on first use, so the pytest plugin and the memory
backend's outbox (``testing.outbox``) work without the extra.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .certificates import TLSCertificates
    from .faults import Fault, FaultKind
    from .oauth_server import OAuthTestServer, TokenRequest
    from .server_options import SMTPServerOptions
    from .server_records import AuthAttempt, ReceivedCommand, ReceivedMessage
    from .smtp_test_server import SMTPTestServer

__all__ = [
    "AuthAttempt",
    "Fault",
    "FaultKind",
    "OAuthTestServer",
    "ReceivedCommand",
    "ReceivedMessage",
    "SMTPServerOptions",
    "SMTPTestServer",
    "TLSCertificates",
    "TokenRequest",
]

#: Public name -> the module that defines it, imported when first used.
_LAZY = {
    "AuthAttempt": ".server_records",
    "Fault": ".faults",
    "FaultKind": ".faults",
    "OAuthTestServer": ".oauth_server",
    "ReceivedCommand": ".server_records",
    "ReceivedMessage": ".server_records",
    "SMTPServerOptions": ".server_options",
    "SMTPTestServer": ".smtp_test_server",
    "TLSCertificates": ".certificates",
    "TokenRequest": ".oauth_server",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
