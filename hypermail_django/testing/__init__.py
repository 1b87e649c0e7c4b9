"""Test helpers for code that sends email: a real SMTP server with injectable faults.

Needs the ``testing`` extra (``pip install hypermail-django[testing]``), which
brings aiosmtpd and trustme. Nothing here imports Django.
"""

from .smtpd import (
    AuthAttempt,
    ReceivedCommand,
    ReceivedMessage,
    SMTPTestServer,
    TLSCertificates,
)

__all__ = [
    "AuthAttempt",
    "ReceivedCommand",
    "ReceivedMessage",
    "SMTPTestServer",
    "TLSCertificates",
]
