"""Test helpers for code that sends email: a real SMTP server with injectable
faults, and an OAuth2 authorization server for OAuth2 sign-in.

Needs the ``testing`` extra (``pip install hypermail-django[testing]``), which
brings aiosmtpd and trustme. Nothing here imports Django.
"""

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
