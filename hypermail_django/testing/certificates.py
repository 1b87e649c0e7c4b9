"""Throw-away TLS certificates for tests: a CA, a server and a client certificate.

Written as PEM files (``smtplib`` and Django settings want paths), for the test
SMTP server, the OAuth2 test server and the clients that talk to them.
"""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
import weakref

import trustme
from cryptography import x509

__all__ = ["TLSCertificates", "subject_of"]


class TLSCertificates:
    """A throw-away certificate authority with a server and a client certificate.

    TLS code paths (STARTTLS, implicit TLS, certificate verification, client
    certificates) are where mail delivery most often breaks in production, and
    they can only be tested against a server with a certificate the client can
    verify. This wraps trustme: a fresh CA, a server certificate for
    ``127.0.0.1``, ``::1`` and ``localhost`` and a client certificate, all
    written as PEM files because ``smtplib`` and Django settings want paths.

    The files live in a private temporary directory removed by :meth:`cleanup`
    (also on garbage collection and at interpreter exit). Generating the
    certificates takes a few milliseconds, so a session-scoped fixture is enough.
    """

    #: The names the server certificate is valid for.
    server_identities: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")

    def __init__(
        self,
        *,
        client_common_name: str = "hypermail test client",
        client_email: str = "client@example.com",
    ) -> None:
        self.ca = trustme.CA()
        """The underlying :class:`trustme.CA`, to issue more certificates."""
        self.server_cert = self.ca.issue_cert(*self.server_identities)
        # An identity, not only a common name: Python 3.13's default
        # VERIFY_X509_STRICT rejects the empty subjectAltName trustme gives else.
        self.client_cert = self.ca.issue_cert(
            client_email, common_name=client_common_name
        )
        self.directory = tempfile.mkdtemp(prefix="hypermail-certs-")
        """The directory holding the PEM files."""
        self._finalizer = weakref.finalize(
            self, shutil.rmtree, self.directory, ignore_errors=True
        )
        self.ca_file = self._write("ca.pem", self.ca.cert_pem.bytes())
        """PEM file of the CA: a ``cafile`` / ``SSL_CERT_FILE`` that trusts the
        server certificate."""
        self.server_cert_file = self._write(
            "server.pem", b"".join(b.bytes() for b in self.server_cert.cert_chain_pems)
        )
        self.server_key_file = self._write(
            "server.key", self.server_cert.private_key_pem.bytes()
        )
        self.client_cert_file = self._write(
            "client.pem", b"".join(b.bytes() for b in self.client_cert.cert_chain_pems)
        )
        """PEM file of the client certificate (e.g. ``EMAIL_SSL_CERTFILE``)."""
        self.client_key_file = self._write(
            "client.key", self.client_cert.private_key_pem.bytes()
        )
        """PEM file of the client certificate's key (e.g. ``EMAIL_SSL_KEYFILE``)."""
        self.client_subject = subject_of(
            x509.load_pem_x509_certificate(self.client_cert.cert_chain_pems[0].bytes())
        )
        """The client certificate's subject as :class:`SMTPTestServer` records it
        in ``client_cert_subjects`` (RFC 4514, e.g. ``CN=...,OU=...,O=...``)."""

    def _write(self, name: str, data: bytes) -> str:
        path = os.path.join(self.directory, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def client_context(self, *, client_cert: bool = False) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` for clients that trusts this CA (and only it).

        With ``client_cert=True`` it also presents the client certificate, for
        servers started with ``require_client_cert=True``.
        """
        context = ssl.create_default_context(cafile=self.ca_file)
        if client_cert:
            context.load_cert_chain(self.client_cert_file, self.client_key_file)
        return context

    def server_context(
        self, *, verify_client: ssl.VerifyMode = ssl.CERT_NONE
    ) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` for a server presenting the server certificate.

        ``verify_client`` other than ``CERT_NONE`` asks clients for a certificate
        and verifies it against this CA.
        """
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.server_cert_file, self.server_key_file)
        if verify_client != ssl.CERT_NONE:
            context.load_verify_locations(cafile=self.ca_file)
            context.verify_mode = verify_client
        return context

    def cleanup(self) -> None:
        """Delete the PEM files. Idempotent."""
        self._finalizer()

    def __enter__(self) -> TLSCertificates:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()


def subject_of(certificate: x509.Certificate) -> str:
    """A certificate's subject as the server records it (RFC 4514)."""
    return certificate.subject.rfc4514_string()
