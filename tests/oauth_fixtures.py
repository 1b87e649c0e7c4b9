"""Fixtures shared by the OAuth2 tests: an authorization server and an SMTP
server that accepts its tokens, both real, on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hypermail_django.oauth import RefreshToken
from hypermail_django.testing import SMTPTestServer, TLSCertificates
from hypermail_django.testing.oauth_server import OAuthTestServer
from hypermail_django.transport import token_cache as tokens

MAILBOX = "noreply@contoso.com"
CLIENT_ID = "hypermail-app"
CLIENT_SECRET = "client-secret-Zq8~never-logged"
REFRESH = "refresh-token-1//never-logged"


@pytest.fixture(autouse=True)
def fresh_tokens() -> Iterator[None]:
    """Each test starts with no cached token."""
    tokens.cache.clear()
    yield
    tokens.cache.clear()


@pytest.fixture
def idp(certs: TLSCertificates, trust_ca: None) -> Iterator[OAuthTestServer]:
    """The authorization server, trusted through SSL_CERT_FILE."""
    with OAuthTestServer(certs) as server:
        server.add_refresh_token(CLIENT_ID, CLIENT_SECRET, REFRESH, MAILBOX)
        yield server


@pytest.fixture
def refresh_provider(idp: OAuthTestServer) -> RefreshToken:
    return RefreshToken(idp.token_url, CLIENT_ID, CLIENT_SECRET, REFRESH)


@pytest.fixture(params=["microsoft", "google"])
def oauth_smtp(
    request: pytest.FixtureRequest, certs: TLSCertificates, idp: OAuthTestServer
) -> Iterator[SMTPTestServer]:
    """STARTTLS, PIPELINING, and AUTH XOAUTH2/OAUTHBEARER (also PLAIN/LOGIN, so
    that a test can see they are never tried), refusing as ``request.param``."""
    with SMTPTestServer(
        starttls=True,
        certs=certs,
        auth={MAILBOX: "a-password-nobody-sends"},
        oauth=idp.check,
        oauth_refusal=request.param,
        pipelining=True,
    ) as smtp:
        yield smtp


def auth_mechanisms(smtp: SMTPTestServer) -> list[str]:
    """The mechanism of every AUTH command the server received."""
    return [c.argument.upper() for c in smtp.commands if c.verb == "AUTH"]
