"""TLS and AUTH: verified certificates, no clear-text AUTH, client certificates."""

from __future__ import annotations

import logging
import smtplib

import pytest
from django.core.mail import EmailMessage

from hypermail_django.exceptions import AuthenticationFailed, TLSFailed
from hypermail_django.testing import SMTPTestServer

from ..conftest import PASSWORD


def _message() -> EmailMessage:
    return EmailMessage("Secure", "Body", "from@example.com", ["to@example.com"])


def test_starttls_and_auth(trust_ca, tls_server, make_backend):
    backend = make_backend(
        tls_server, use_tls=True, username="mailer", password=PASSWORD
    )
    assert backend.send_messages([_message()]) == 1
    (received,) = tls_server.messages
    assert received.tls is True
    assert received.authenticated_as == "mailer"
    verbs = [verb for _, verb, _ in tls_server.commands]
    assert verbs.index("STARTTLS") < verbs.index("AUTH")


def test_starttls_and_auth_with_pipelining_and_chunking(trust_ca, certs, make_backend):
    """The extensions offered after STARTTLS are the ones used (RFC 3207)."""
    relay = SMTPTestServer(
        starttls=True,
        certs=certs,
        auth={"mailer": PASSWORD},
        pipelining=True,
        chunking=True,
    )
    with relay:
        backend = make_backend(
            relay, use_tls=True, username="mailer", password=PASSWORD
        )
        messages = [_message(), _message()]
        assert backend.send_messages(messages) == 2
        received = relay.messages
        verbs = [verb for _, verb, _ in relay.commands]
    assert [m.tls for m in received] == [True, True]
    assert [m.authenticated_as for m in received] == ["mailer", "mailer"]
    assert verbs.count("BDAT") == 2 and "DATA" not in verbs
    assert relay.sessions == 1


def test_use_tls_without_starttls_on_the_server_sends_nothing_and_never_auths(
    make_backend,
):
    with SMTPTestServer(auth={"mailer": PASSWORD}, auth_require_tls=False) as plain:
        backend = make_backend(
            plain, use_tls=True, username="mailer", password=PASSWORD
        )
        with pytest.raises(TLSFailed) as caught:
            backend.send_messages([_message()])
        assert caught.value.code == "tls_unavailable"
        verbs = [verb for _, verb, _ in plain.commands]
        assert "AUTH" not in verbs
        assert "MAIL" not in verbs
        assert plain.messages == []


def test_untrusted_certificate_is_refused(
    tls_server, make_backend, monkeypatch, tmp_path
):
    empty_store = tmp_path / "empty.pem"
    empty_store.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty_store))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    backend = make_backend(
        tls_server, use_tls=True, username="mailer", password=PASSWORD
    )
    with pytest.raises(TLSFailed) as caught:
        backend.send_messages([_message()])
    assert caught.value.code == "tls_failed"
    assert "AUTH" not in [verb for _, verb, _ in tls_server.commands]
    assert tls_server.messages == []


def test_implicit_tls(trust_ca, certs, make_backend):
    with SMTPTestServer(implicit_tls=True, certs=certs) as tls:
        assert make_backend(tls, use_ssl=True).send_messages([_message()]) == 1
        assert tls.messages[0].tls is True


def test_client_certificate_is_presented_and_the_server_still_verified(
    trust_ca, certs, make_backend
):
    with SMTPTestServer(starttls=True, certs=certs, require_client_cert=True) as tls:
        backend = make_backend(
            tls,
            use_tls=True,
            ssl_certfile=certs.client_cert_file,
            ssl_keyfile=certs.client_key_file,
        )
        assert backend.send_messages([_message()]) == 1
        assert tls.client_cert_subjects


def test_client_certificate_does_not_turn_off_server_verification(
    certs, make_backend, monkeypatch, tmp_path
):
    empty_store = tmp_path / "empty.pem"
    empty_store.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty_store))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    with SMTPTestServer(starttls=True, certs=certs) as tls:
        backend = make_backend(
            tls,
            use_tls=True,
            ssl_certfile=certs.client_cert_file,
            ssl_keyfile=certs.client_key_file,
        )
        with pytest.raises(TLSFailed):
            backend.send_messages([_message()])


def test_wrong_password_is_a_permanent_auth_failure(
    trust_ca, tls_server, make_backend, waits
):
    backend = make_backend(
        tls_server, use_tls=True, username="mailer", password="wrong", max_retries=3
    )
    with pytest.raises(AuthenticationFailed) as caught:
        backend.send_messages([_message()])
    assert caught.value.code == "auth_failed"
    assert isinstance(caught.value, smtplib.SMTPAuthenticationError)
    assert waits == []
    assert (
        tls_server.sessions == 1
    )  # no retry: one login (smtplib tries each mechanism)
    assert tls_server.auth_attempts
    assert all(attempt.success is False for attempt in tls_server.auth_attempts)


def test_temporary_auth_failure_is_retried(trust_ca, tls_server, make_backend):
    tls_server.fail("AUTH", "454 4.7.0 Temporary authentication failure", times=1)
    backend = make_backend(
        tls_server, use_tls=True, username="mailer", password=PASSWORD, max_retries=1
    )
    assert backend.send_messages([_message()]) == 1


def test_secrets_never_reach_logs_reprs_or_errors(
    trust_ca, tls_server, make_backend, caplog
):
    caplog.set_level(logging.DEBUG)
    tls_server.fail("MAIL", "451 4.3.0 Try again later", times=1)
    good = make_backend(
        tls_server, use_tls=True, username="mailer", password=PASSWORD, max_retries=1
    )
    good.send_messages([_message()])
    bad = make_backend(
        tls_server, use_tls=True, username="mailer", password=PASSWORD + "x"
    )
    with pytest.raises(AuthenticationFailed) as caught:
        bad.send_messages([_message()])
    texts = [
        repr(good),
        repr(good.transport_config),
        str(caught.value),
        repr(caught.value),
    ]
    for record in caplog.records:
        texts.append(record.getMessage())
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
    assert caplog.records  # the retry and the failure were logged
    assert not [text for text in texts if PASSWORD in text]


def test_refused_starttls_is_a_tls_failure(make_backend):
    with (
        SMTPTestServer(offer_starttls_ext=True) as liar,  # offers it, then 454
        pytest.raises(TLSFailed) as caught,
    ):
        make_backend(liar, use_tls=True).send_messages([_message()])
    assert (caught.value.code, caught.value.smtp_code) == ("tls_failed", 454)
    assert caught.value.transient is True


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_pools")
async def test_refused_starttls_is_a_tls_failure_async(make_backend):
    with (
        SMTPTestServer(offer_starttls_ext=True) as liar,
        pytest.raises(TLSFailed) as caught,
    ):
        await make_backend(liar, use_tls=True).asend_messages([_message()])
    assert (caught.value.code, caught.value.smtp_code) == ("tls_failed", 454)


def test_untrusted_certificate_is_what_djangos_backend_raises(
    tls_server, make_backend, monkeypatch, tmp_path
):
    import ssl

    empty_store = tmp_path / "empty.pem"
    empty_store.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty_store))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    with pytest.raises(ssl.SSLCertVerificationError) as caught:
        make_backend(tls_server, use_tls=True).send_messages([_message()])
    assert caught.value.code == "tls_failed"
