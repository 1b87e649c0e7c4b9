"""``manage.py mailcheck`` with OAuth2: the mechanism, whether the token was
fetched or cached, the provider's time, and a fix for known refusals."""

from __future__ import annotations

import pytest

from hypermail_django.testing import SMTPTestServer

from ..conftest import PASSWORD, mailer_for
from ..oauth_fixtures import MAILBOX, fresh_tokens, idp, refresh_provider
from .test_mailcheck import json_lines, mailcheck

__all__ = ["fresh_tokens", "idp", "refresh_provider"]  # fixtures


@pytest.fixture
def smtp(certs, idp):
    with SMTPTestServer(starttls=True, certs=certs, oauth=idp.check) as server:
        yield server


def test_reports_the_mechanism_and_a_fetched_then_cached_token(
    smtp, idp, refresh_provider
):
    options = {
        "use_tls": True,
        "username": MAILBOX,
        "auth_mechanism": "xoauth2",
        "token_provider": refresh_provider,
    }
    with mailer_for(smtp, **options):
        status, out = mailcheck("--json")
        assert status == 0
        (first,) = json_lines(out)
        status, text = mailcheck()
    assert first["auth"]["mechanism"] == "xoauth2"
    assert first["auth"]["token"] == "fetched"
    assert first["auth"]["provider_ms"] > 0
    assert first["fix"] is None
    assert status == 0
    assert "XOAUTH2, token from the cache" in text
    assert idp.issued == 1
    for token in idp.tokens:
        assert token not in out and token not in text


@pytest.mark.parametrize(
    ("reply", "fix"),
    [
        (
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication "
            "is disabled for the Tenant.",
            "Set-CASMailbox",
        ),
        (
            "535 5.7.139 Authentication unsuccessful, user is locked by your "
            "organization's security defaults policy.",
            "SmtpClientAuthenticationDisabled",
        ),
        (
            "550 5.7.30 Basic authentication is not supported for Client Submission.",
            "auth_mechanism='xoauth2'",
        ),
        ("535 5.7.3 Authentication unsuccessful", "SMTP.SendAsApp"),
        (
            "534 5.7.9 Application-specific password required.",
            "app password",
        ),
    ],
)
def test_known_refusals_come_with_a_fix(certs, trust_ca, reply, fix):
    with SMTPTestServer(starttls=True, certs=certs, auth={"u": PASSWORD}) as smtp:
        smtp.fail("AUTH", reply)
        with mailer_for(smtp, use_tls=True, username="u", password=PASSWORD):
            status, out = mailcheck("--json")
            _, text = mailcheck()
    assert status == 1
    (report,) = json_lines(out)
    assert report["error"]["step"] == "auth"
    assert fix in report["fix"]
    assert f"fix: {report['fix']}" in text
    assert report["auth"] is None


def test_a_provider_that_is_down_is_unhealthy_token_failed(smtp, idp, refresh_provider):
    idp.fail(503, times=None)
    options = {
        "use_tls": True,
        "username": MAILBOX,
        "auth_mechanism": "xoauth2",
        "token_provider": refresh_provider,
    }
    with mailer_for(smtp, **options):
        status, out = mailcheck("--json")
    assert status == 1
    (report,) = json_lines(out)
    assert report["error"]["code"] == "token_failed"
    assert report["error"]["transient"] is True
    assert report["error"]["step"] == "auth"


def test_a_revoked_cached_token_is_replaced_as_sending_does(
    smtp, idp, refresh_provider
):
    options = {
        "use_tls": True,
        "username": MAILBOX,
        "auth_mechanism": "xoauth2",
        "token_provider": refresh_provider,
    }
    with mailer_for(smtp, **options):
        assert mailcheck("--json")[0] == 0
        idp.revoke()
        status, out = mailcheck("--json")
    (report,) = json_lines(out)
    assert status == 0
    assert report["auth"]["token"] == "fetched"
    assert [a.success for a in smtp.auth_attempts] == [True, False, True]
    assert idp.issued == 2


def test_a_token_refused_twice_is_permanent(certs, trust_ca, idp):
    from hypermail_django.oauth import RefreshToken

    idp.add_refresh_token("hypermail-app", "s", "other-rt", "other@x.org")
    provider = RefreshToken(idp.token_url, "hypermail-app", "s", "other-rt")
    with SMTPTestServer(
        starttls=True, certs=certs, oauth=idp.check, oauth_refusal="google"
    ) as server:
        options = {
            "use_tls": True,
            "username": MAILBOX,
            "auth_mechanism": "xoauth2",
            "token_provider": provider,
        }
        with mailer_for(server, **options):
            status, out = mailcheck("--json")
    (report,) = json_lines(out)
    assert status == 1
    assert report["error"]["code"] == "auth_failed"
    assert report["error"]["transient"] is False
    assert "domain-wide delegation" in report["fix"]
    assert idp.issued == 2
