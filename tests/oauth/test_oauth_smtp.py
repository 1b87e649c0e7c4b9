"""OAuth2 sign-in end to end: tokens from a real HTTPS authorization server,
AUTH XOAUTH2/OAUTHBEARER against a real SMTP server, sync, async and bulk."""

from __future__ import annotations

import logging
import math
import time

import pytest
from django.core.mail import EmailMessage, send_mail

from hypermail_django.async_mail import asend_mail
from hypermail_django.bulk import send_bulk
from hypermail_django.exceptions import FluxMailException
from hypermail_django.transport import token_cache as tokens
from hypermail_django.transport.async_pool import aclose_async_pools
from hypermail_django.transport.pool import close_all_pools

from ..bulk.test_bulk import workers
from ..conftest import mailer_for
from ..oauth_fixtures import (
    CLIENT_SECRET,
    MAILBOX,
    REFRESH,
    auth_mechanisms,
    fresh_tokens,
    idp,
    oauth_smtp,
    refresh_provider,
)

__all__ = ["fresh_tokens", "idp", "oauth_smtp", "refresh_provider", "workers"]


def _options(provider, mechanism="xoauth2", **extra):
    return {
        "use_tls": True,
        "username": MAILBOX,
        "auth_mechanism": mechanism,
        "token_provider": provider,
        **extra,
    }


def _send(n: int = 0) -> int:
    return send_mail(f"Hi {n}", "Body", MAILBOX, [f"to{n}@example.com"])


@pytest.mark.parametrize("mechanism", ["xoauth2", "oauthbearer"])
def test_signs_in_with_a_token_and_never_a_password(
    oauth_smtp, idp, refresh_provider, mechanism
):
    with mailer_for(oauth_smtp, **_options(refresh_provider, mechanism)):
        assert _send(1) == 1
        assert _send(2) == 1
    messages = oauth_smtp.messages
    assert [m.authenticated_as for m in messages] == [MAILBOX, MAILBOX]
    assert all(m.tls for m in messages)
    assert auth_mechanisms(oauth_smtp) == [mechanism.upper()]
    assert idp.issued == 1  # the second message reused the pooled connection


def test_a_new_connection_uses_the_cached_token(oauth_smtp, idp, refresh_provider):
    with mailer_for(oauth_smtp, **_options(refresh_provider)):
        _send(1)
        close_all_pools()
        _send(2)
    assert oauth_smtp.sessions == 2
    assert auth_mechanisms(oauth_smtp) == ["XOAUTH2", "XOAUTH2"]
    assert idp.issued == 1
    assert tokens.cache.fetches(refresh_provider) == 1


def test_a_plain_callable_or_dotted_path_is_a_provider(oauth_smtp, idp):
    issued = []

    def provider():
        token = idp.token(
            {
                "grant_type": "refresh_token",
                "refresh_token": REFRESH,
                "client_id": "hypermail-app",
                "client_secret": CLIENT_SECRET,
            },
            idp.token_url,
        )[1]["access_token"]
        issued.append(token)
        return token  # a bare str: kept until the server refuses it

    with mailer_for(oauth_smtp, **_options(provider)):
        assert _send() == 1
    assert len(issued) == 1
    assert oauth_smtp.messages[0].authenticated_as == MAILBOX


def test_revoked_token_is_replaced_with_exactly_one_refresh(
    oauth_smtp, idp, refresh_provider
):
    with mailer_for(oauth_smtp, **_options(refresh_provider)):
        _send(1)
        idp.revoke()  # every token issued so far
        # The authenticated session goes on: servers keep it.
        _send(2)
        close_all_pools()
        _send(3)
    assert len(oauth_smtp.messages) == 3
    assert idp.issued == 2
    attempts = [a.success for a in oauth_smtp.auth_attempts]
    assert attempts == [True, False, True]
    assert oauth_smtp.sessions == 3  # the retry ran on a fresh connection
    assert set(auth_mechanisms(oauth_smtp)) == {"XOAUTH2"}


def test_a_second_refusal_is_permanent_auth_failed(oauth_smtp, idp):
    from hypermail_django.oauth import RefreshToken

    idp.add_refresh_token("hypermail-app", CLIENT_SECRET, "other-rt", "other@x.org")
    provider = RefreshToken(idp.token_url, "hypermail-app", CLIENT_SECRET, "other-rt")
    with (
        mailer_for(oauth_smtp, **_options(provider, max_retries=3)),
        pytest.raises(FluxMailException) as caught,
    ):
        _send()
    error = caught.value
    assert error.code == "auth_failed"
    assert error.transient is False
    assert error.smtp_code == 535
    assert idp.issued == 2  # the first token, and one more after the refusal
    assert [a.success for a in oauth_smtp.auth_attempts] == [False, False]
    assert set(auth_mechanisms(oauth_smtp)) == {"XOAUTH2"}
    assert oauth_smtp.messages == []


def test_provider_down_is_transient_token_failed(oauth_smtp, idp, refresh_provider):
    idp.fail(503, times=None)
    with (
        mailer_for(oauth_smtp, **_options(refresh_provider)),
        pytest.raises(FluxMailException) as caught,
    ):
        _send()
    error = caught.value
    assert error.code == "token_failed"
    assert error.transient is True
    assert "HTTP 503" in error.message and "temporarily_unavailable" in error.message
    assert CLIENT_SECRET not in error.message and REFRESH not in error.message
    assert auth_mechanisms(oauth_smtp) == []  # no AUTH without a token


def test_provider_refusing_the_client_is_permanent(oauth_smtp, idp):
    from hypermail_django.oauth import RefreshToken

    provider = RefreshToken(idp.token_url, "hypermail-app", "wrong-secret", REFRESH)
    with (
        mailer_for(oauth_smtp, **_options(provider)),
        pytest.raises(FluxMailException) as caught,
    ):
        _send()
    assert caught.value.code == "token_failed"
    assert caught.value.transient is False
    assert "invalid_client" in caught.value.message
    assert "wrong-secret" not in caught.value.message


def test_retries_recover_once_the_provider_is_back(oauth_smtp, idp, refresh_provider):
    idp.fail(503, times=2)
    with mailer_for(oauth_smtp, **_options(refresh_provider, max_retries=3)):
        assert _send() == 1
    assert [r.status for r in idp.requests] == [503, 503, 200]


def test_bulk_send_while_tokens_expire_every_second(
    oauth_smtp, idp, refresh_provider, workers
):
    """Tokens live one second and are refreshed half a second ahead, while
    four pooled connections send two thousand messages, serialized in two
    worker processes: nothing fails, and tokens are fetched no more often than
    they expire."""
    idp.token_lifetime = 1.0
    count = 2000
    started = time.monotonic()
    with mailer_for(
        oauth_smtp,
        **_options(
            refresh_provider,
            token_refresh_margin=0.5,
            max_messages_per_connection=50,
            pool_size=4,
        ),
    ):
        messages = (
            EmailMessage(f"N {n}", "Body", MAILBOX, [f"u{n}@example.com"])
            for n in range(count)
        )
        result = send_bulk(messages, processes=2, concurrency=4, progress=False)
    elapsed = time.monotonic() - started
    assert result["failed"] == 0 and result["errors"] == []
    assert result["sent"] == count
    assert len(oauth_smtp.messages) == count
    assert set(auth_mechanisms(oauth_smtp)) == {"XOAUTH2"}
    assert all(a.success for a in oauth_smtp.auth_attempts)
    # Connections were opened all along (50 messages each) with fresh tokens.
    assert oauth_smtp.sessions >= count // 50
    # A token is good for 0.5 s before it is refreshed: at most one fetch per
    # half second of the run (plus the first).
    assert 2 <= idp.issued <= math.ceil(elapsed / 0.5) + 1
    assert tokens.cache.fetches(refresh_provider) == idp.issued


def test_secrets_never_reach_a_log_record(oauth_smtp, idp, refresh_provider, caplog):
    from hypermail_django.oauth import RefreshToken

    caplog.set_level(logging.DEBUG)
    with mailer_for(oauth_smtp, **_options(refresh_provider)):
        _send(1)
        idp.revoke()
        close_all_pools()
        _send(2)
        idp.fail(503)
        idp.revoke()
        close_all_pools()
        tokens.cache.clear()
        with pytest.raises(FluxMailException) as caught:
            _send(3)
    bad = RefreshToken(idp.token_url, "hypermail-app", "wrong-secret", REFRESH)
    with mailer_for(oauth_smtp, **_options(bad)), pytest.raises(FluxMailException):
        _send(4)
    secrets = [CLIENT_SECRET, REFRESH, "wrong-secret", *idp.tokens]
    assert len(idp.tokens) == 2
    records = [
        r
        for r in caplog.records
        # aiosmtpd logs what the *test server* receives; a real server's logs
        # are not ours to keep clean.
        if not r.name.startswith("mail.log")
    ]
    assert records  # DEBUG logging really ran (urllib3, our transport)
    for record in records:
        text = record.getMessage() + repr(record.args)
        for secret in secrets:
            assert secret not in text, record.name
    for secret in secrets:
        assert secret not in str(caught.value) and secret not in repr(caught.value)


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_pools")
async def test_async_signs_in_and_recovers_a_revoked_token(
    oauth_smtp, idp, refresh_provider
):
    with mailer_for(oauth_smtp, **_options(refresh_provider, "oauthbearer")):
        assert await asend_mail("A", "B", MAILBOX, ["a@example.com"]) == 1
        idp.revoke()
        await aclose_async_pools()
        assert await asend_mail("A", "B", MAILBOX, ["b@example.com"]) == 1
    assert [m.authenticated_as for m in oauth_smtp.messages] == [MAILBOX, MAILBOX]
    assert [a.success for a in oauth_smtp.auth_attempts] == [True, False, True]
    assert set(auth_mechanisms(oauth_smtp)) == {"OAUTHBEARER"}
    assert idp.issued == 2


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_pools")
async def test_async_provider_down_is_token_failed(oauth_smtp, idp, refresh_provider):
    idp.fail(503, times=None)
    with (
        mailer_for(oauth_smtp, **_options(refresh_provider)),
        pytest.raises(FluxMailException) as caught,
    ):
        await asend_mail("A", "B", MAILBOX, ["a@example.com"])
    assert caught.value.code == "token_failed"
    assert caught.value.transient is True


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_pools")
async def test_async_second_refusal_is_permanent(oauth_smtp, idp):
    from hypermail_django.oauth import RefreshToken

    idp.add_refresh_token("hypermail-app", CLIENT_SECRET, "other-rt", "other@x.org")
    provider = RefreshToken(idp.token_url, "hypermail-app", CLIENT_SECRET, "other-rt")
    with (
        mailer_for(oauth_smtp, **_options(provider)),
        pytest.raises(FluxMailException) as caught,
    ):
        await asend_mail("A", "B", MAILBOX, ["a@example.com"])
    assert caught.value.code == "auth_failed"
    assert caught.value.transient is False
    assert idp.issued == 2


def test_microsoft_provider_end_to_end_with_revocation(oauth_smtp, idp):
    """MSAL caches tokens itself: a refused one must be dropped there too."""
    from hypermail_django.oauth import MicrosoftClientCredentials

    idp.add_client("app-ms", secret="ms-secret", mailboxes=(MAILBOX,))
    provider = {
        "provider": "microsoft",
        "tenant_id": "contoso",
        "client_id": "app-ms",
        "client_secret": "ms-secret",
        "authority_host": idp.url,
    }
    with mailer_for(oauth_smtp, **_options(provider)):
        _send(1)
        idp.revoke()
        close_all_pools()
        _send(2)
    assert [a.success for a in oauth_smtp.auth_attempts] == [True, False, True]
    assert idp.issued == 2
    resolved = MicrosoftClientCredentials(
        "contoso", "app-ms", "ms-secret", authority_host=idp.url
    )
    assert tokens.cache.fetches(resolved) == 2


def test_google_provider_end_to_end(oauth_smtp, idp):
    info = idp.add_service_account("mailer@proj.iam", subjects=(MAILBOX,))
    provider = {"provider": "google", "info_or_file": info}  # subject: username
    with mailer_for(oauth_smtp, **_options(provider, "oauthbearer")):
        _send(1)
        idp.revoke()
        close_all_pools()
        _send(2)
    assert [a.success for a in oauth_smtp.auth_attempts] == [True, False, True]
    assert set(auth_mechanisms(oauth_smtp)) == {"OAUTHBEARER"}


def test_the_oauth2_example_runs():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "examples/oauth2.py"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.splitlines() == [
        "microsoft: 2 sent, 1 token fetched",
        "microsoft: revoked token replaced, 2 tokens in all",
        "refresh_token: 2 sent, 1 token fetched",
        "refresh_token: revoked token replaced, 2 tokens in all",
        "AUTH mechanisms used: XOAUTH2",
        "signed in as: ['noreply@contoso.com']",
    ]


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_pools")
async def test_async_bulk_while_tokens_expire(oauth_smtp, idp, refresh_provider):
    from hypermail_django.bulk import asend_bulk

    idp.token_lifetime = 1.0
    count = 600
    started = time.monotonic()
    with mailer_for(
        oauth_smtp,
        **_options(
            refresh_provider,
            "oauthbearer",
            token_refresh_margin=0.5,
            max_messages_per_connection=25,
            pool_size=4,
        ),
    ):
        messages = [
            EmailMessage(f"N {n}", "Body", MAILBOX, [f"u{n}@example.com"])
            for n in range(count)
        ]
        result = await asend_bulk(messages, processes=0, concurrency=4, progress=False)
    elapsed = time.monotonic() - started
    assert result["sent"] == count and result["failed"] == 0
    assert len(oauth_smtp.messages) == count
    assert set(auth_mechanisms(oauth_smtp)) == {"OAUTHBEARER"}
    assert all(a.success for a in oauth_smtp.auth_attempts)
    assert oauth_smtp.sessions >= count // 25
    assert idp.issued <= math.ceil(elapsed / 0.5) + 1
