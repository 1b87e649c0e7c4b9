"""Helpers for the health-check tests: mailer options, short-lived certs.

To make a mailer the default one, use ``conftest.mailer_for``."""

from __future__ import annotations

import datetime
from typing import Any

from hypermail_django.testing import SMTPTestServer, TLSCertificates

LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
DJANGO_SMTP = "django.core.mail.backends.smtp.EmailBackend"


def aimed_at(server: SMTPTestServer, **options: Any) -> dict[str, Any]:
    """Backend options for ``server``, plus ``options``."""
    return {"host": server.host, "port": server.port, **options}


def short_lived_certs(days: int) -> TLSCertificates:
    """Certificates whose server certificate expires in ``days`` days (and an
    hour, so that whole days left is exactly ``days`` while the test runs)."""
    certs = TLSCertificates()
    not_after = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
        days=days, hours=1
    )
    leaf = certs.ca.issue_cert(*certs.server_identities, not_after=not_after)
    with open(certs.server_cert_file, "wb") as f:
        f.write(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    with open(certs.server_key_file, "wb") as f:
        f.write(leaf.private_key_pem.bytes())
    return certs


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
