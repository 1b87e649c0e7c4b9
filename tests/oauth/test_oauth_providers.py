"""The built-in token providers against the in-process HTTPS authorization
server (MSAL, google-auth and urllib really talk to it), and how the
``token_provider`` option is read from settings and the environment."""

from __future__ import annotations

import datetime
import os
import time
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from hypermail_django.conf.env import options_from_env
from hypermail_django.exceptions import ConfigurationError
from hypermail_django.oauth import (
    AccessToken,
    GoogleServiceAccount,
    MicrosoftClientCredentials,
    RefreshToken,
    TokenError,
)
from hypermail_django.oauth.settings import resolve_provider
from hypermail_django.transport import token_cache as tokens
from hypermail_django.transport.config import TransportConfig

from ..oauth_fixtures import (
    CLIENT_ID,
    CLIENT_SECRET,
    MAILBOX,
    REFRESH,
    fresh_tokens,
    idp,
    refresh_provider,
)

__all__ = ["fresh_tokens", "idp", "refresh_provider"]  # fixtures

TENANT = "contoso-tenant"


# -- AccessToken and the cache -------------------------------------------------


def test_access_token_takes_unix_time_or_aware_datetime():
    at = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    assert AccessToken("t", at).expires_at == at.timestamp()
    assert AccessToken("t", 12).expires_at == 12.0
    with pytest.raises(TypeError, match="aware"):
        AccessToken("t", datetime.datetime(2030, 1, 1))
    assert "t'" not in repr(AccessToken("t", 1))


def test_cache_fetches_once_for_many_threads():
    import threading

    calls = []
    gate = threading.Event()

    def slow_provider():
        calls.append(1)
        gate.wait(5)
        return AccessToken("tok", time.time() + 3600)

    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(tokens.cache.get(slow_provider, 300))
        )
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert [r.fetched for r in results].count(True) == 1
    assert {r.token.token for r in results} == {"tok"}


def test_cache_refreshes_within_the_margin_and_invalidates_only_the_refused():
    serial = iter(range(100))

    def provider():
        return AccessToken(f"t{next(serial)}", time.time() + 10)

    first = tokens.cache.get(provider, 1).token
    assert tokens.cache.get(provider, 1).token is first  # fresh for 9 more s
    # A margin longer than the token's life is capped at half of it: a
    # provider of short-lived tokens is not called for every connection.
    assert tokens.cache.get(provider, 300).token is first
    assert tokens.cache.get(provider, 4).token is first
    tokens.cache.invalidate(provider, first)
    current = tokens.cache.get(provider, 1).token
    assert current.token == "t1"
    tokens.cache.invalidate(provider, first)  # stale: another fetched since
    assert tokens.cache.get(provider, 1).token is current
    assert tokens.cache.fetches(provider) == 2

    def short_lived():
        return AccessToken(f"s{next(serial)}", time.time() + 0.4)

    brief = tokens.cache.get(short_lived, 300).token
    time.sleep(0.25)  # past half its life: refreshed
    assert tokens.cache.get(short_lived, 300).token is not brief


def test_provider_returning_garbage_is_a_token_error():
    with pytest.raises(TokenError, match="must return"):
        tokens.cache.get(lambda: 42, 0)


# -- RefreshToken ----------------------------------------------------------------


def test_refresh_token_grant(idp, refresh_provider):
    before = time.time()
    token = refresh_provider()
    assert idp.check(MAILBOX, token.token) is True
    assert before + 3600 - 5 < token.expires_at <= time.time() + 3600
    assert idp.requests[-1].grant_type == "refresh_token"
    assert "***" in repr(refresh_provider)
    assert CLIENT_SECRET not in repr(refresh_provider)
    assert REFRESH not in repr(refresh_provider)


def test_refresh_token_errors(idp, refresh_provider):
    idp.fail(503)
    with pytest.raises(TokenError) as caught:
        refresh_provider()
    assert caught.value.transient is True
    revoked = RefreshToken(idp.token_url, CLIENT_ID, CLIENT_SECRET, "no-such-token")
    with pytest.raises(TokenError) as caught:
        revoked()
    assert caught.value.transient is False
    assert "invalid_grant" in str(caught.value)
    assert "no-such-token" not in str(caught.value)


def test_refresh_token_verifies_the_endpoint_against_ssl_cert_file(
    idp, refresh_provider, monkeypatch, tmp_path
):
    other = tmp_path / "other-ca.pem"
    other.write_bytes(__import__("trustme").CA().cert_pem.bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    with pytest.raises(TokenError) as caught:
        refresh_provider()
    assert "failed verification" in str(caught.value)
    assert caught.value.transient is False


def test_refresh_token_server_unreachable_is_transient(idp):
    url = idp.token_url
    idp.stop()
    with pytest.raises(TokenError) as caught:
        RefreshToken(url, CLIENT_ID, CLIENT_SECRET, REFRESH)()
    assert caught.value.transient is True


def test_equal_providers_hash_alike(idp):
    a = RefreshToken(idp.token_url, CLIENT_ID, CLIENT_SECRET, REFRESH)
    b = RefreshToken(idp.token_url, CLIENT_ID, CLIENT_SECRET, REFRESH)
    c = RefreshToken(idp.token_url, CLIENT_ID, "other", REFRESH)
    assert a == b and hash(a) == hash(b) and a != c
    config = TransportConfig(auth_mechanism="xoauth2", token_provider=a)
    assert (
        config.pool_key
        == TransportConfig(auth_mechanism="xoauth2", token_provider=b).pool_key
    )
    assert CLIENT_SECRET not in repr(config)


# -- Microsoft (MSAL) ----------------------------------------------------------


def test_microsoft_client_secret(idp):
    idp.add_client("app-1", secret="s3cret", mailboxes=(MAILBOX,))
    provider = MicrosoftClientCredentials(
        TENANT, "app-1", "s3cret", authority_host=idp.url
    )
    token = provider()
    assert idp.check(MAILBOX, token.token) is True
    assert idp.check("someone.else@contoso.com", token.token) == "mailbox not granted"
    assert token.expires_at > time.time() + 3000
    assert idp.requests[-1].grant_type == "client_credentials"
    assert "s3cret" not in repr(provider)


def _certificate(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hypermail app")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = tmp_path / "app.pem"
    path.write_bytes(key_pem + cert_pem)
    return path, cert_pem


def test_microsoft_certificate(idp, tmp_path):
    path, cert_pem = _certificate(tmp_path)
    idp.add_client("app-2", certificate_pem=cert_pem, mailboxes=(MAILBOX,))
    provider = MicrosoftClientCredentials(
        TENANT, "app-2", certificate=str(path), authority_host=idp.url
    )
    assert idp.check(MAILBOX, provider().token) is True
    # Signed with another key: refused, permanently.
    other, _ = _certificate(tmp_path / "..")
    wrong = MicrosoftClientCredentials(
        TENANT, "app-2", certificate=str(other), authority_host=idp.url
    )
    with pytest.raises(TokenError) as caught:
        wrong()
    assert caught.value.transient is False
    assert "invalid_client" in str(caught.value)


def test_microsoft_errors(idp):
    idp.add_client("app-3", secret="s3cret", mailboxes=(MAILBOX,))
    wrong = MicrosoftClientCredentials(TENANT, "app-3", "nope", authority_host=idp.url)
    with pytest.raises(TokenError) as caught:
        wrong()
    assert caught.value.transient is False
    assert "AADSTS7000215" in str(caught.value) and "nope" not in str(caught.value)
    provider = MicrosoftClientCredentials(
        TENANT, "app-3", "s3cret", authority_host=idp.url
    )
    idp.fail(503, times=None)
    with pytest.raises(TokenError) as caught:
        provider()
    assert caught.value.transient is True


def test_microsoft_short_lived_tokens_are_fetched_again(idp):
    """MSAL's own cache treats a token with under five minutes left as
    expired, so our cache decides when to refresh."""
    idp.token_lifetime = 60
    idp.add_client("app-4", secret="s3cret", mailboxes=(MAILBOX,))
    provider = MicrosoftClientCredentials(
        TENANT, "app-4", "s3cret", authority_host=idp.url
    )
    assert provider().token != provider().token
    assert idp.issued == 2


# -- Google (google-auth) ------------------------------------------------------


def test_google_service_account(idp, tmp_path):
    info = idp.add_service_account("mailer@proj.iam", subjects=("g@example.com",))
    provider = GoogleServiceAccount(info, "g@example.com")
    asked = time.time()
    token = provider()
    answered = time.time()
    assert idp.check("g@example.com", token.token) is True
    # The expiry comes from the server's expires_in (3600 s), counted from the
    # reply: google-auth keeps whole seconds and may take a little off.
    lifetime = 3600
    assert asked + lifetime - 60 <= token.expires_at <= answered + lifetime + 1
    assert info["private_key"] not in repr(provider)
    keyfile = tmp_path / "sa.json"
    keyfile.write_text(__import__("json").dumps(info))
    from_file = GoogleServiceAccount(str(keyfile), "g@example.com")
    assert idp.check("g@example.com", from_file().token) is True
    assert str(keyfile) in repr(from_file)


def test_google_without_delegation_is_permanent(idp):
    info = idp.add_service_account("mailer@proj.iam", subjects=("g@example.com",))
    with pytest.raises(TokenError) as caught:
        GoogleServiceAccount(info, "ceo@example.com")()
    assert caught.value.transient is False
    assert "unauthorized_client" in str(caught.value)
    assert info["private_key"] not in str(caught.value)


# -- token_provider from settings and the environment ---------------------------


def test_provider_from_a_dict_with_secrets_from_the_environment(monkeypatch):
    monkeypatch.setenv("FLUXMAIL_OAUTH_CLIENT_SECRET", "from-env")
    provider = resolve_provider(
        {"provider": "microsoft", "tenant_id": "t", "client_id": "c"}, "where"
    )
    assert provider == MicrosoftClientCredentials("t", "c", "from-env")
    monkeypatch.setenv("FLUXMAIL_OAUTH_TENANT_ID", "t")
    monkeypatch.setenv("FLUXMAIL_OAUTH_CLIENT_ID", "c")
    assert resolve_provider("microsoft", "where") == provider


def test_google_subject_defaults_to_the_username(monkeypatch):
    monkeypatch.setenv("FLUXMAIL_OAUTH_INFO_OR_FILE", "/etc/sa.json")
    provider = resolve_provider("google", "where", username="me@example.com")
    assert provider == GoogleServiceAccount("/etc/sa.json", "me@example.com")


def test_provider_errors_name_the_setting():
    with pytest.raises(
        ConfigurationError, match="where: the 'microsoft' provider needs"
    ):
        resolve_provider({"provider": "microsoft", "tenant_id": "t"}, "where")
    with pytest.raises(ConfigurationError, match="takes no 'tenant'"):
        resolve_provider({"provider": "microsoft", "tenant": "t"}, "where")
    with pytest.raises(ConfigurationError, match="cannot be imported"):
        resolve_provider("no.such.module.provider", "where")
    with pytest.raises(ConfigurationError, match="must be a callable"):
        resolve_provider(42, "where")
    assert resolve_provider("tests.oauth.test_oauth_providers.dotted", "w") is dotted


def dotted() -> str:
    return "token"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"auth_mechanism": "xoauth2", "username": MAILBOX}, "token_provider"),
        (
            {
                "auth_mechanism": "xoauth2",
                "username": MAILBOX,
                "password": "pw",
                "token_provider": dotted,
            },
            "remove the password",
        ),
        ({"auth_mechanism": "xoauth2", "token_provider": dotted}, "no username"),
        ({"token_provider": dotted}, "set it to 'xoauth2'"),
        ({"auth_mechanism": "cram"}, "must be one of"),
    ],
)
def test_misconfigurations(options, message):
    from hypermail_django.backends import FluxMailBackend

    with pytest.raises(ConfigurationError, match=message):
        FluxMailBackend(host="smtp.example.com", **options)


def test_options_from_env(monkeypatch):
    environ = {
        "FLUXMAIL_AUTH_MECHANISM": "XOAUTH2",
        "FLUXMAIL_TOKEN_PROVIDER": "microsoft",
        "FLUXMAIL_TOKEN_REFRESH_MARGIN": "120",
    }
    options = options_from_env(environ)
    assert options == {
        "auth_mechanism": "XOAUTH2",  # the backend lower-cases it
        "token_provider": "microsoft",
        "token_refresh_margin": 120.0,
    }


def test_a_slow_token_endpoint_times_out_as_transient(idp):
    idp.delay = 1.0
    slow = RefreshToken(idp.token_url, CLIENT_ID, CLIENT_SECRET, REFRESH, timeout=0.2)
    with pytest.raises(TokenError) as caught:
        slow()
    assert caught.value.transient is True
    assert "timed out" in str(caught.value)


def test_msal_and_google_auth_verify_against_ssl_cert_file(idp, monkeypatch, tmp_path):
    """Not requests' certifi bundle: the trust store SMTP uses."""
    idp.add_client("app-5", secret="s3cret", mailboxes=(MAILBOX,))
    info = idp.add_service_account("mailer@proj.iam", subjects=(MAILBOX,))
    other = tmp_path / "other-ca.pem"
    other.write_bytes(__import__("trustme").CA().cert_pem.bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    providers = [
        MicrosoftClientCredentials(TENANT, "app-5", "s3cret", authority_host=idp.url),
        GoogleServiceAccount(info, MAILBOX),
    ]
    for provider in providers:
        with pytest.raises(TokenError) as caught:
            provider()
        assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
        assert caught.value.transient is False
    assert idp.requests == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_starts_with_an_empty_cache():
    def provider():
        return AccessToken("parent-token", time.time() + 3600)

    tokens.cache.get(provider, 0)
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a process with threads.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            empty = tokens.cache.peek(provider, 0) is None
            os.write(
                write_end,
                b"1" if empty and not tokens.cache.fetches(provider) else b"0",
            )
        finally:
            os._exit(0)
    os.close(write_end)
    assert os.read(read_end, 1) == b"1"
    os.waitpid(pid, 0)
    assert tokens.cache.peek(provider, 0).token == "parent-token"
