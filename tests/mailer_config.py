"""Helpers for the health-check tests: mailers in settings, short-lived certs."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator
from typing import Any

from django.test import override_settings

from hypermail_django.compat import MAILERS_SUPPORTED
from hypermail_django.conf import settings_for
from hypermail_django.testing import SMTPTestServer, TLSCertificates

from .conftest import BACKEND, legacy_settings

LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
DJANGO_SMTP = "django.core.mail.backends.smtp.EmailBackend"


@contextlib.contextmanager
def default_mailer(**options: Any) -> Iterator[None]:
    """Make FluxMailBackend with ``options`` the default mailer.

    Through ``MAILERS`` on Django 6.1, through ``EMAIL_*`` settings before.
    """
    if MAILERS_SUPPORTED:
        mailers = {"default": {"BACKEND": BACKEND, "OPTIONS": options}}
        with override_settings(MAILERS=mailers):
            yield
    else:
        with legacy_settings(EMAIL_BACKEND=BACKEND, **settings_for(options)):
            yield


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
