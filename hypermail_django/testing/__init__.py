"""Test helpers for code that sends email: a real SMTP server with injectable
faults, and an OAuth2 authorization server for OAuth2 sign-in.

Needs the ``testing`` extra (``pip install hypermail-django[testing]``), which
brings aiosmtpd and trustme. Nothing here imports Django.
"""

from .oauth_server import OAuthTestServer, TokenRequest
from .smtpd import (
    AuthAttempt,
    ReceivedCommand,
    ReceivedMessage,
    SMTPTestServer,
    TLSCertificates,
)

__all__ = [
    "AuthAttempt",
    "OAuthTestServer",
    "ReceivedCommand",
    "ReceivedMessage",
    "SMTPTestServer",
    "TLSCertificates",
    "TokenRequest",
]
