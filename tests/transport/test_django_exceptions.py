"""Each failure is also the exception Django's own SMTP backend raises in the
same situation (``except ConnectionRefusedError:`` around ``send_mail`` keeps
working), keeps our ``.code``, and its message begins with smtplib's words
where smtplib has them. Real servers on loopback, both drivers."""

from __future__ import annotations

import smtplib
import socket
import ssl
from pathlib import Path

import pytest
from django.core.mail import EmailMessage

from hypermail_django.exceptions import FluxMailException
from hypermail_django.testing import SMTPTestServer

from ..conftest import PASSWORD, Driver, MakeBackend


def _message() -> EmailMessage:
    return EmailMessage("Hi", "Body", "from@example.com", ["to@example.com"])


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _send_and_catch(driver: Driver, backend: object) -> FluxMailException:
    with pytest.raises(FluxMailException) as caught:
        driver.send(backend, [_message()])  # type: ignore[arg-type]
    return caught.value


def test_a_refused_connection_is_a_connection_refused_error(
    driver: Driver, make_backend: MakeBackend
) -> None:
    backend = make_backend(host="127.0.0.1", port=_closed_port(), max_retries=0)
    error = _send_and_catch(driver, backend)
    assert isinstance(error, ConnectionRefusedError)
    assert isinstance(error, smtplib.SMTPException)
    assert error.code == "connection_failed"
    assert error.errno is not None


def test_a_tls_handshake_failure_is_an_ssl_error(
    driver: Driver, make_backend: MakeBackend, server: SMTPTestServer
) -> None:
    # Implicit TLS against a plain-text SMTP port: a wrong-version handshake.
    backend = make_backend(server, use_ssl=True, max_retries=0)
    error = _send_and_catch(driver, backend)
    assert isinstance(error, ssl.SSLError)
    assert not isinstance(error, ssl.SSLCertVerificationError)
    assert error.code == "tls_failed"
    assert str(error).startswith(f"TLS with {server.host}:{server.port} failed")


def test_starttls_not_offered_is_smtplibs_error_and_words(
    driver: Driver, make_backend: MakeBackend
) -> None:
    error = _send_and_catch(driver, make_backend(use_tls=True))
    assert isinstance(error, smtplib.SMTPNotSupportedError)
    assert error.code == "tls_unavailable"
    assert str(error).startswith("STARTTLS extension not supported by server. ")
    assert "587" in str(error)  # our hint follows


def test_auth_not_offered_is_smtplibs_error_and_words(
    driver: Driver, make_backend: MakeBackend
) -> None:
    error = _send_and_catch(driver, make_backend(username="mailer", password=PASSWORD))
    assert isinstance(error, smtplib.SMTPNotSupportedError)
    assert isinstance(error, smtplib.SMTPAuthenticationError)  # as before
    assert error.code == "auth_unsupported"
    assert str(error).startswith("SMTP AUTH extension not supported by server. ")


def test_a_refused_starttls_is_an_smtp_response_exception(
    driver: Driver, make_backend: MakeBackend
) -> None:
    with SMTPTestServer(offer_starttls_ext=True) as plain:
        error = _send_and_catch(driver, make_backend(plain, use_tls=True))
    assert error.code == "tls_failed", error
    assert isinstance(error, smtplib.SMTPResponseException)
    assert error.smtp_code is not None


def test_a_missing_client_certificate_is_file_not_found_at_first_use(
    driver: Driver,
    make_backend: MakeBackend,
    tls_server: SMTPTestServer,
    tmp_path: Path,
) -> None:
    backend = make_backend(
        tls_server, use_tls=True, ssl_certfile=str(tmp_path / "absent.pem")
    )  # Built without complaint, as Django's backend is.
    error = _send_and_catch(driver, backend)
    assert isinstance(error, FileNotFoundError)
    assert error.code == "configuration"
    assert "absent.pem" in str(error)


def test_an_unusable_client_certificate_is_an_ssl_error(
    driver: Driver,
    make_backend: MakeBackend,
    tls_server: SMTPTestServer,
    tmp_path: Path,
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    error = _send_and_catch(
        driver, make_backend(tls_server, use_tls=True, ssl_certfile=str(junk))
    )
    assert isinstance(error, ssl.SSLError)
    assert error.code == "configuration"
