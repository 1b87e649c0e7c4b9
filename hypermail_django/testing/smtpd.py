"""The test SMTP server's public names, importable from here as before.

The server is :mod:`.smtp_test_server`; its parts live in :mod:`.certificates`,
:mod:`.server_options`, :mod:`.server_records`, :mod:`.faults`,
:mod:`.harness_smtp` and :mod:`.server_thread`.
"""

from __future__ import annotations

from .certificates import TLSCertificates
from .faults import CONNECT, DATA_END
from .server_options import HOST, SMTPServerOptions
from .server_records import AuthAttempt, ReceivedCommand, ReceivedMessage
from .smtp_test_server import SMTPTestServer

__all__ = [
    "CONNECT",
    "DATA_END",
    "HOST",
    "AuthAttempt",
    "ReceivedCommand",
    "ReceivedMessage",
    "SMTPServerOptions",
    "SMTPTestServer",
    "TLSCertificates",
]
