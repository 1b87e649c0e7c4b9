"""``auth_mechanism`` with a password: the server's choice, or one forced."""

from __future__ import annotations

import pytest
from django.core.mail import send_mail

from hypermail_django.async_mail import asend_mail
from hypermail_django.exceptions import FluxMailException
from hypermail_django.testing import SMTPTestServer

from ..conftest import PASSWORD, mailer_for
from ..oauth_fixtures import auth_mechanisms


@pytest.mark.parametrize(
    ("mechanism", "sent"), [("auto", "PLAIN"), ("plain", "PLAIN"), ("login", "LOGIN")]
)
def test_password_mechanisms(tls_server, trust_ca, mechanism, sent):
    with mailer_for(
        tls_server,
        use_tls=True,
        username="mailer",
        password=PASSWORD,
        auth_mechanism=mechanism,
    ):
        assert send_mail("S", "B", "f@example.com", ["t@example.com"]) == 1
    # smtplib's own choice ("auto") is CRAM-MD5, then PLAIN: the server has no
    # CRAM-MD5.
    assert auth_mechanisms(tls_server) == [sent]
    assert tls_server.messages[0].authenticated_as == "mailer"


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_pools")
@pytest.mark.parametrize("mechanism", ["plain", "login"])
async def test_password_mechanisms_async(tls_server, trust_ca, mechanism):
    with mailer_for(
        tls_server,
        use_tls=True,
        username="mailer",
        password=PASSWORD,
        auth_mechanism=mechanism,
    ):
        assert await asend_mail("S", "B", "f@example.com", ["t@example.com"]) == 1
    assert auth_mechanisms(tls_server) == [mechanism.upper()]


def test_a_mechanism_the_server_does_not_offer(certs, trust_ca):
    with SMTPTestServer(
        starttls=True, certs=certs, oauth=lambda mailbox, token: True
    ) as smtp:  # offers XOAUTH2 and OAUTHBEARER only
        with (
            mailer_for(
                smtp, use_tls=True, username="u", password="p", auth_mechanism="login"
            ),
            pytest.raises(FluxMailException) as caught,
        ):
            send_mail("S", "B", "f@example.com", ["t@example.com"])
        assert caught.value.code == "auth_unsupported"
        assert "OAUTHBEARER XOAUTH2" in caught.value.message
        assert auth_mechanisms(smtp) == []


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_pools")
async def test_a_mechanism_the_server_does_not_offer_async(certs, trust_ca):
    with SMTPTestServer(
        starttls=True, certs=certs, oauth=lambda mailbox, token: True
    ) as smtp:
        with (
            mailer_for(
                smtp, use_tls=True, username="u", password="p", auth_mechanism="plain"
            ),
            pytest.raises(FluxMailException) as caught,
        ):
            await asend_mail("S", "B", "f@example.com", ["t@example.com"])
        assert caught.value.code == "auth_unsupported"
        assert auth_mechanisms(smtp) == []
