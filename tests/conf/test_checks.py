"""System checks hypermail.E001... : each one fires, and only when it should."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from hypermail_django import checks

from ..conftest import BACKEND, PASSWORD, legacy_settings, mailer_for, requires_mailers
from ..mailer_config import DJANGO_SMTP, LOCMEM
from ..paths import ROOT


def ids(deploy: bool = False) -> list[str]:
    """The IDs our checks report, as ``manage.py check [--deploy]`` runs them."""
    messages = run_checks(tags=["hypermail"], include_deployment_checks=deploy)
    return sorted(message.id for message in messages)


def messages_of(check_id: str, deploy: bool = False) -> list[str]:
    found = run_checks(tags=["hypermail"], include_deployment_checks=deploy)
    return [m.msg for m in found if m.id == check_id]


@pytest.fixture
def production_addresses():
    """Sender addresses that raise no W011/W012, to test the other checks alone."""
    with override_settings(
        DEFAULT_FROM_EMAIL="noreply@example.com", SERVER_EMAIL="ops@example.com"
    ):
        yield


def test_a_sound_configuration_passes_every_check(production_addresses):
    with mailer_for(
        host="smtp.example.com",
        use_tls=True,
        username="mailer",
        password=PASSWORD,
    ):
        assert ids(deploy=True) == []


def test_checks_never_connect(server):
    with mailer_for(host=server.host, port=server.port, use_ssl=True, use_tls=True):
        assert ids(deploy=True)
    assert server.sessions == 0


# -- E001-E004 -------------------------------------------------------------------


def test_e001_use_tls_and_use_ssl():
    with mailer_for(host="smtp.example.com", use_tls=True, use_ssl=True):
        assert ids() == ["hypermail.E001"]
        (message,) = messages_of("hypermail.E001")
    assert "use_tls" in message.lower()
    assert "use_ssl" in message.lower()


def test_e001_names_the_legacy_settings():
    with legacy_settings(EMAIL_BACKEND=BACKEND, EMAIL_USE_TLS=True, EMAIL_USE_SSL=True):
        (message,) = messages_of("hypermail.E001")
    assert message.startswith("EMAIL_USE_TLS and EMAIL_USE_SSL are both on")


def test_e001_for_djangos_own_smtp_backend_too():
    with legacy_settings(
        EMAIL_BACKEND=DJANGO_SMTP,
        EMAIL_USE_TLS=True,
        EMAIL_USE_SSL=True,
        EMAIL_TIMEOUT=10,
    ):
        assert ids() == ["hypermail.E001"]


@pytest.mark.parametrize("port", [70000, -1, "smtp"])
def test_e002_invalid_port(port):
    with mailer_for(host="smtp.example.com", port=port):
        assert ids() == ["hypermail.E002"]
        (message,) = messages_of("hypermail.E002")
    assert "port number (1-65535)" in message


def test_e003_negative_retries():
    with mailer_for(host="smtp.example.com", max_retries=-1):
        assert ids() == ["hypermail.E003"]
        (message,) = messages_of("hypermail.E003")
    assert "max_retries" in message.lower()
    assert "whole number >= 0" in message


def test_e003_is_reported_alongside_e001_and_e002():
    with mailer_for(
        host="smtp.example.com",
        use_tls=True,
        use_ssl=True,
        port=0.5,
        retry_delay="soon",
    ):
        assert ids() == ["hypermail.E001", "hypermail.E002", "hypermail.E003"]
        (message,) = messages_of("hypermail.E003")
    assert "retry_delay" in message.lower()


def test_e004_backend_that_cannot_be_imported():
    with legacy_settings(EMAIL_BACKEND="hypermail_django.backends.NoSuchBackend"):
        assert ids() == ["hypermail.E004"]


def test_option_checks_leave_other_backends_alone():
    with legacy_settings(
        EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend",
        EMAIL_USE_TLS=True,
        EMAIL_USE_SSL=True,
        EMAIL_PORT=70000,
    ):
        assert ids() == []


# -- W001-W002 -------------------------------------------------------------------


def test_w001_password_in_clear_to_a_remote_host():
    with mailer_for(host="smtp.example.com", username="mailer", password=PASSWORD):
        assert ids() == ["hypermail.W001"]
        (message,) = messages_of("hypermail.W001")
    assert "'mailer'" in message
    assert "smtp.example.com" in message
    assert PASSWORD not in message


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.0.1.1", "::1"])
def test_w001_not_for_loopback(host):
    with mailer_for(host=host, username="mailer", password=PASSWORD):
        assert ids() == []


@pytest.mark.parametrize("secure", [{"use_tls": True}, {"use_ssl": True}])
def test_w001_not_with_tls(secure):
    options = {"host": "smtp.example.com", "username": "u", "password": PASSWORD}
    with mailer_for(**options, **secure):
        assert ids() == []


def test_w001_not_without_a_password():
    with mailer_for(host="smtp.example.com", username="mailer"):
        assert ids() == []


def test_w001_and_w002_for_djangos_smtp_backend():
    with legacy_settings(
        EMAIL_BACKEND=DJANGO_SMTP,
        EMAIL_HOST="smtp.example.com",
        EMAIL_HOST_USER="mailer",
        EMAIL_HOST_PASSWORD=PASSWORD,
    ):
        assert ids() == ["hypermail.W001", "hypermail.W002"]
        (message,) = messages_of("hypermail.W002")
    assert "has no timeout" in message


def test_w002_not_for_djangos_backend_with_a_timeout():
    with legacy_settings(EMAIL_BACKEND=DJANGO_SMTP, EMAIL_TIMEOUT=20):
        assert ids() == []


def test_w002_not_for_fluxmail_without_a_timeout():
    # FluxMailBackend turns "no timeout" into 30 seconds.
    with legacy_settings(EMAIL_BACKEND=BACKEND, EMAIL_TIMEOUT=None):
        assert ids() == []


def test_w002_timeout_longer_than_smtp_allows():
    with mailer_for(host="smtp.example.com", timeout=3600):
        assert ids() == ["hypermail.W002"]
    with mailer_for(host="smtp.example.com", timeout=600):
        assert ids() == []


# -- deploy: W010-W012 -----------------------------------------------------------


def test_w010_development_backend(production_addresses):
    # Django's test runner made locmem the mailer.
    assert ids() == []
    assert ids(deploy=True) == ["hypermail.W010"]
    (message,) = messages_of("hypermail.W010", deploy=True)
    assert LOCMEM in message


@pytest.mark.parametrize(
    "backend",
    [
        "django.core.mail.backends.console.EmailBackend",
        "django.core.mail.backends.filebased.EmailBackend",
        "django.core.mail.backends.dummy.EmailBackend",
        "hypermail_django.backends.MemoryBackend",
        "hypermail_django.backends.ConsoleBackend",
    ],
)
def test_w010_every_development_backend(production_addresses, backend):
    with legacy_settings(EMAIL_BACKEND=backend, EMAIL_FILE_PATH="/nonexistent"):
        # (E004 too while our memory and console backends do not exist yet.)
        assert "hypermail.W010" in ids(deploy=True)


def test_w010_subclass_of_a_development_backend(production_addresses):
    with legacy_settings(EMAIL_BACKEND="tests.conf.test_checks.OutboxBackend"):
        assert ids(deploy=True) == ["hypermail.W010"]


def test_w010_not_for_smtp(production_addresses):
    with mailer_for(host="smtp.example.com"):
        assert ids(deploy=True) == []


@requires_mailers
def test_w010_every_alias_but_what_django_reports(production_addresses):
    mailers = {
        "default": {"BACKEND": LOCMEM},  # Django's mail.E001 reports this one.
        "smtp": {"BACKEND": BACKEND, "OPTIONS": {"host": "smtp.example.com"}},
        "debug": {"BACKEND": "django.core.mail.backends.console.EmailBackend"},
    }
    with override_settings(MAILERS=mailers):
        (message,) = messages_of("hypermail.W010", deploy=True)
        django_ids = [m.id for m in run_checks(include_deployment_checks=True)]
    assert message.startswith("MAILERS['debug'] uses")
    assert "mail.E001" in django_ids


def test_w011_default_from_email_left_at_djangos_default(production_addresses):
    with (
        mailer_for(host="smtp.example.com"),
        override_settings(DEFAULT_FROM_EMAIL="webmaster@localhost"),
    ):
        assert ids() == []
        assert ids(deploy=True) == ["hypermail.W011"]
    with (
        mailer_for(host="smtp.example.com"),
        override_settings(DEFAULT_FROM_EMAIL="Site <noreply@localhost>"),
    ):
        assert ids(deploy=True) == ["hypermail.W011"]


def test_w012_server_email_at_localhost_only_with_admins(production_addresses):
    with mailer_for(host="smtp.example.com"):
        with override_settings(SERVER_EMAIL="root@localhost"):
            assert ids(deploy=True) == ["hypermail.W012"]
        with override_settings(SERVER_EMAIL="root@localhost", ADMINS=[], MANAGERS=[]):
            assert ids(deploy=True) == []


# -- through manage.py check -------------------------------------------------------


def test_manage_py_check_fails_on_errors_and_lists_warnings():
    with (
        mailer_for(host="smtp.example.com", use_tls=True, use_ssl=True),
        pytest.raises(SystemCheckError, match=r"hypermail\.E001"),
    ):
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
    with mailer_for(host="smtp.example.com", timeout=3600):
        err = io.StringIO()
        call_command("check", "--tag", "hypermail", stdout=io.StringIO(), stderr=err)
    assert "(hypermail.W002)" in err.getvalue()


def test_every_id_is_documented():
    docs = (ROOT / "docs" / "system-checks.md").read_text()
    for check_id in checks.__doc__.split("``")[1::2]:  # type: ignore[union-attr]
        if check_id.startswith("hypermail."):
            assert f"## {check_id}" in docs, check_id


class OutboxBackend(LocmemBackend):
    """A project's own backend built on Django's locmem one (for W010)."""


# -- E020, W020 (OAuth2) ----------------------------------------------------------


def _token() -> str:
    return "token"


@pytest.mark.parametrize(
    ("options", "text"),
    [
        ({"auth_mechanism": "xoauth2"}, "is not set: name a callable"),
        (
            {"auth_mechanism": "xoauth2", "token_provider": _token, "password": "pw"},
            "remove the password",
        ),
    ],
)
def test_e020_oauth2_mechanism_without_provider_or_with_password(options, text):
    with mailer_for(
        host="smtp.office365.com",
        use_tls=True,
        username="noreply@contoso.com",
        **options,
    ):
        assert ids() == ["hypermail.E020"]
        (message,) = messages_of("hypermail.E020")
        assert text in message
        assert "pw" not in message.replace("password", "")


@pytest.mark.parametrize(
    ("host", "deadline"),
    [("smtp.office365.com", "December 2026"), ("smtp.gmail.com", "May 2025")],
)
def test_w020_password_for_microsoft_or_gmail(host, deadline):
    with mailer_for(host=host, use_tls=True, username="me@x.org", password=PASSWORD):
        assert ids() == ["hypermail.W020"]
        (message,) = messages_of("hypermail.W020")
        assert deadline in message
        found = run_checks(tags=["hypermail"])
        assert "auth_mechanism='xoauth2'" in found[0].hint


def test_w020_for_djangos_own_backend_too():
    with legacy_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="smtp.office365.com",
        EMAIL_USE_TLS=True,
        EMAIL_HOST_USER="me@contoso.com",
        EMAIL_HOST_PASSWORD=PASSWORD,
        EMAIL_TIMEOUT=30,
    ):
        assert ids() == ["hypermail.W020"]


def test_no_w020_with_oauth2():
    with mailer_for(
        host="smtp.office365.com",
        use_tls=True,
        username="noreply@contoso.com",
        auth_mechanism="xoauth2",
        token_provider=_token,
    ):
        assert ids() == []


# -- E060 ------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["ssl_certfile", "ssl_keyfile"])
@pytest.mark.parametrize("backend", [BACKEND, DJANGO_SMTP])
def test_e060_a_client_certificate_file_that_is_not_there(
    tmp_path: Path, option: str, backend: str
) -> None:
    absent = str(tmp_path / "absent.pem")
    options = {"host": "smtp.example.com", option: absent}
    if option == "ssl_keyfile":  # a key alone is E003's business
        (tmp_path / "cert.pem").write_text("")
        options["ssl_certfile"] = str(tmp_path / "cert.pem")
    with mailer_for(backend=backend, **options):
        (message,) = messages_of("hypermail.E060")
    assert absent in message
    assert option in message.lower()


def test_e060_not_for_files_that_are_there(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("")
    with mailer_for(host="smtp.example.com", ssl_certfile=str(cert)):
        assert messages_of("hypermail.E060") == []


def test_e060_a_key_without_a_certificate() -> None:
    with mailer_for(host="smtp.example.com", ssl_keyfile="/etc/ssl/key.pem"):
        messages = messages_of("hypermail.E060")
    assert any("without" in message for message in messages), messages
