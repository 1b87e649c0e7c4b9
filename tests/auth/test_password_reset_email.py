"""The reset email, sent to a real SMTP server; links and the settings."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import DisallowedHost
from django.test import RequestFactory, override_settings

from hypermail_django.auth import check_reset_token, send_password_reset_email
from hypermail_django.compat import MAILERS_SUPPORTED
from hypermail_django.conf.password_reset import Rate, get_settings, setting_names
from hypermail_django.exceptions import ConfigurationError
from hypermail_django.testing.outbox import clear_outbox, get_outbox

from ..auth_urls import FLOW_SETTINGS, MEMORY
from ..conftest import mailer_for, requires_mailers
from ..paths import ROOT

pytestmark = pytest.mark.django_db

SPA = "https://app.example.com/reset/{uid}/{token}/"
LINK = re.compile(r"https?://[^\s\"<>]+")


@pytest.fixture(autouse=True)
def templates() -> Iterator[None]:
    clear_outbox()
    with override_settings(
        TEMPLATES=FLOW_SETTINGS["TEMPLATES"], ALLOWED_HOSTS=["www.example.com"]
    ):
        yield
    clear_outbox()


@pytest.fixture
def user():
    return get_user_model().objects.create_user(
        "alice", "Alice@Example.com", "old-Pa55word!"
    )


def _uid_token(link: str) -> tuple[str, str]:
    uid, token = link.rstrip("/").split("/")[-2:]
    return uid, token


def test_sends_html_and_text_with_a_working_link(use_server, user):
    sent = send_password_reset_email(user, reset_url_template=SPA)
    assert sent == 1
    (received,) = use_server.wait_for_messages(1)
    assert received.rcpt_tos == ["Alice@example.com"]  # as stored
    assert received.mail_from == "noreply@example.com"  # DEFAULT_FROM_EMAIL
    parsed = received.message()
    assert parsed["Subject"] == "Reset your password on app.example.com"
    text = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    (link,) = set(LINK.findall(text))
    assert link.startswith("https://app.example.com/reset/")
    assert f'href="{link}"' in html
    assert "Hello alice," in text
    assert "3\xa0days" in text  # PASSWORD_RESET_TIMEOUT, in words
    assert check_reset_token(*_uid_token(link)) == user


def test_from_email_and_subject_can_be_given(user):
    with mailer_for(backend=MEMORY):
        send_password_reset_email(
            user,
            reset_url_template=SPA,
            from_email="security@example.com",
            subject="Your\nreset link",
        )
    (entry,) = get_outbox()
    assert entry.from_email == "security@example.com"
    assert entry.subject == "Your reset link"  # one line: no header injection
    assert "<title>Your reset link</title>" in entry.html_body


def test_from_email_and_site_name_settings(user):
    with (
        mailer_for(backend=MEMORY),
        override_settings(
            HYPERMAIL_PASSWORD_RESET_FROM_EMAIL="accounts@example.com",
            HYPERMAIL_PASSWORD_RESET_SITE_NAME="Example Shop",
        ),
    ):
        send_password_reset_email(user, reset_url_template=SPA)
    (entry,) = get_outbox()
    assert entry.from_email == "accounts@example.com"
    assert entry.subject == "Reset your password on Example Shop"


def test_templates_can_be_overridden(user, tmp_path):
    folder = tmp_path / "hypermail_django" / "password_reset" / "email"
    folder.mkdir(parents=True)
    (folder / "subject.txt").write_text("Custom for {{ user.get_username }}")
    templates = [{**FLOW_SETTINGS["TEMPLATES"][0], "DIRS": [tmp_path]}]
    with mailer_for(backend=MEMORY), override_settings(TEMPLATES=templates):
        send_password_reset_email(user, reset_url_template=SPA)
    (entry,) = get_outbox()
    assert entry.subject == "Custom for alice"
    assert "app.example.com/reset/" in entry.body  # shipped bodies still used


@pytest.mark.parametrize(
    "change",
    ["inactive", "unusable", "no email"],
)
def test_users_who_may_not_reset_get_no_email(user, change):
    if change == "inactive":
        user.is_active = False
    elif change == "unusable":
        user.set_unusable_password()
    else:
        user.email = ""
    user.save()
    with mailer_for(backend=MEMORY):
        assert send_password_reset_email(user, reset_url_template=SPA) == 0
    assert get_outbox() == []


# -- where the link's scheme and host come from --------------------------------


def _link_of(user, **kwargs) -> str:
    with mailer_for(backend=MEMORY):
        send_password_reset_email(user, **kwargs)
    (entry,) = get_outbox()
    (link,) = set(LINK.findall(entry.body))
    return link


def test_relative_template_takes_the_validated_request_host(user):
    request = RequestFactory().get("/", HTTP_HOST="www.example.com", secure=True)
    link = _link_of(user, reset_url_template="/r/{uid}/{token}/", request=request)
    assert link.startswith("https://www.example.com/r/")


def test_a_host_outside_allowed_hosts_is_refused(user):
    request = RequestFactory().get("/", HTTP_HOST="evil.example")
    with mailer_for(backend=MEMORY), pytest.raises(DisallowedHost):
        send_password_reset_email(
            user, reset_url_template="/r/{uid}/{token}/", request=request
        )
    assert get_outbox() == []


def test_allowed_hosts_star_is_never_trusted_for_links(user):
    request = RequestFactory().get("/", HTTP_HOST="evil.example")
    with (
        override_settings(ALLOWED_HOSTS=["*"]),
        pytest.raises(ConfigurationError, match="HYPERMAIL_PASSWORD_RESET_BASE_URL"),
    ):
        send_password_reset_email(
            user, reset_url_template="/r/{uid}/{token}/", request=request
        )


def test_base_url_setting_wins_over_the_request(user):
    request = RequestFactory().get("/", HTTP_HOST="www.example.com")
    with override_settings(
        HYPERMAIL_PASSWORD_RESET_BASE_URL="https://accounts.example.com/app/"
    ):
        link = _link_of(user, reset_url_template="/r/{uid}/{token}/", request=request)
    assert link.startswith("https://accounts.example.com/app/r/")


def test_absolute_template_needs_no_request(user):
    link = _link_of(user, reset_url_template="http://localhost:3000/#/r/{uid}/{token}")
    assert link.startswith("http://localhost:3000/#/r/")


def test_relative_template_without_request_or_base_url_is_an_error(user):
    with pytest.raises(ConfigurationError, match="HYPERMAIL_PASSWORD_RESET_BASE_URL"):
        send_password_reset_email(user, reset_url_template="/r/{uid}/{token}/")


@pytest.mark.parametrize(
    "template",
    [
        "https://app.example.com/reset/{token}/",  # no {uid}
        "https://app.example.com/reset/{uid}/",  # no {token}
        "//evil.example/{uid}/{token}/",  # scheme-relative: no
        "javascript:alert(1)//{uid}/{token}",
        "reset/{uid}/{token}/",  # relative, but not to the root
    ],
)
def test_bad_templates_are_refused_before_anything_is_sent(user, template):
    with (
        mailer_for(backend=MEMORY),
        pytest.raises(ConfigurationError, match="reset_url_template"),
    ):
        send_password_reset_email(user, reset_url_template=template)
    assert get_outbox() == []


# -- mailers -------------------------------------------------------------------


@pytest.mark.skipif(MAILERS_SUPPORTED, reason="MAILERS aliases exist on 6.1")
def test_using_an_alias_before_django_61_is_a_clear_error(user):
    with pytest.raises(ConfigurationError, match=r"6\.1"):
        send_password_reset_email(user, reset_url_template=SPA, using="accounts")


@requires_mailers
def test_using_sends_through_that_mailer(server, user):
    mailers = {
        "default": {"BACKEND": MEMORY},
        "accounts": {
            "BACKEND": "hypermail_django.backends.FluxMailBackend",
            "OPTIONS": {"host": server.host, "port": server.port},
        },
    }
    with override_settings(MAILERS=mailers):
        send_password_reset_email(user, reset_url_template=SPA, using="accounts")
        with override_settings(HYPERMAIL_PASSWORD_RESET_MAILER="accounts"):
            send_password_reset_email(user, reset_url_template=SPA)
    assert len(server.wait_for_messages(2)) == 2
    assert get_outbox() == []


# -- settings ------------------------------------------------------------------


def test_defaults():
    conf = get_settings()
    assert conf.rate_limit_email == Rate(3, 3600)
    assert conf.rate_limit_ip == Rate(20, 3600)
    assert conf.delivery == "auto"
    assert conf.url_template is None and conf.base_url is None
    assert conf.ipv6_prefix == 64
    assert len(setting_names()) == 11


@pytest.mark.parametrize(
    ("value", "rate"),
    [("5/s", Rate(5, 1)), ("20/15m", Rate(20, 900)), (" 1 / d ", Rate(1, 86400))],
)
def test_rates(value, rate):
    with override_settings(HYPERMAIL_PASSWORD_RESET_RATE_LIMIT_IP=value):
        assert get_settings().rate_limit_ip == rate


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("URL_TEMPLATE", "https://app.example.com/reset/"),
        ("BASE_URL", "www.example.com"),
        ("BASE_URL", "https://www.example.com/?next=1"),
        ("FROM_EMAIL", ""),
        ("MAILER", 3),
        ("SITE_NAME", ""),
        ("RATE_LIMIT_EMAIL", "3 per hour"),
        ("RATE_LIMIT_EMAIL", "0/h"),
        ("RATE_LIMIT_IP", "5/0m"),
        ("RATE_LIMIT_IP", 5),
        ("CACHE", ""),
        ("CLIENT_IP", "no.such.module.function"),
        ("CLIENT_IP", 42),
        ("DELIVERY", "celery"),
    ],
)
def test_invalid_settings_name_the_setting(name, value):
    setting = f"HYPERMAIL_PASSWORD_RESET_{name}"
    with (
        override_settings(**{setting: value}),
        pytest.raises(ConfigurationError, match=setting),
    ):
        get_settings()


# -- the example ---------------------------------------------------------------


def test_the_example_runs():
    root = ROOT
    result = subprocess.run(
        [sys.executable, "examples/password_reset.py"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "link: https://app.example.com/reset/" in out
    assert "validate: 200 {'valid': True}" in out
    assert "confirm with 'password': 400 ['password_too_common']" in out
    assert "log in with the new password: True" in out
    assert "the same link again: 400 invalid_token" in out
    assert "emails received in all: 2 (one more)" in out
    assert "request 4: 202, emails: 4" in out
