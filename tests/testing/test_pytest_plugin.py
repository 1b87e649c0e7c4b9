"""The pytest plugin, exercised the way users run it: in a fresh pytest process
(pytester) on a small Django project of its own."""

from __future__ import annotations

import importlib.metadata
import textwrap

import pytest

from hypermail_django.compat import MAILERS_SUPPORTED

pytest_plugins = ["pytester"]

PLUGIN = "hypermail_django.testing.pytest_plugin"

SETTINGS = """
SECRET_KEY = "plugin-tests"
INSTALLED_APPS = ["django.contrib.contenttypes", "hypermail_django"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
DEFAULT_FROM_EMAIL = "app@example.com"
"""

MAILERS = """
MAILERS = {
    "default": {
        "BACKEND": "hypermail_django.backends.FluxMailBackend",
        "OPTIONS": {"host": "smtp.example.com", "css_inline": True},
    },
    "bulk": {
        "BACKEND": "hypermail_django.backends.FluxMailBackend",
        "OPTIONS": {"host": "bulk.example.com"},
    },
}
"""

USERS_TESTS = """
import smtplib

import pytest
from django.core import mail
from django.core.mail import EmailMessage

from hypermail_django.testing.assertions import assert_not_sent, assert_sent


def test_server_with_scripted_failures(smtp_server):
    smtp_server.fail("RCPT", "550 5.1.1 No such user", match="ghost")
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as client:
        to = ["ghost@example.com", "b@example.com"]
        refused = client.sendmail("a@example.com", to, "Hi")
    assert list(refused) == ["ghost@example.com"]
    assert smtp_server.messages[0].rcpt_tos == ["b@example.com"]


def test_mailer_retries_a_transient_failure(smtp_mailer):
    smtp_mailer.fail("MAIL", "451 4.7.1 Greylisted", times=1)
    message = EmailMessage("Hello", "Body", to=["to@example.com"])
    assert message.send() == 1
    assert message.hypermail_status.attempts == 2
    (received,) = smtp_mailer.messages
    assert received.message()["Subject"] == "Hello"
    assert_sent(smtp_mailer.messages, to="to@example.com", from_email="app@example.com")


def test_mailer_reports_a_dropped_connection(smtp_mailer):
    smtp_mailer.drop("DATA_END")
    with pytest.raises(smtplib.SMTPServerDisconnected):
        mail.send_mail("Lost", "Body", None, ["to@example.com"])
    assert_not_sent(smtp_mailer.messages)


def test_mailer_waits_for_a_slow_server(smtp_mailer):
    smtp_mailer.delay("RCPT", 0.2, times=1)
    mail.send_mail("Slow", "Body", None, ["to@example.com"])
    assert_sent(smtp_mailer.messages, subject="Slow")


@pytest.mark.smtp_server(starttls=True, auth={"mailer": "secret"})
def test_mailer_follows_the_servers_tls_and_auth(smtp_mailer):
    mail.send_mail("Secure", "Body", None, ["to@example.com"])
    (received,) = smtp_mailer.messages
    assert received.tls
    assert received.authenticated_as == "mailer"


def test_outbox_first(mail_outbox):
    mail.send_mail("Welcome", "Hi!", None, ["alice@example.com"])
    entry = mail_outbox.assert_sent(to="alice@example.com", subject="Welcome")
    assert entry.body == "Hi!"
    assert len(mail_outbox) == 1


def test_outbox_is_empty_again(mail_outbox, mailoutbox):
    assert len(mail_outbox) == 0
    EmailMessage("Again", "Body", to=["b@example.com"], bcc=["c@example.com"]).send()
    mail_outbox.assert_sent(recipients=["b@example.com", "c@example.com"])
    assert [m.subject for m in mailoutbox] == ["Again"]  # pytest-django's too


def test_a_failing_assertion_explains_itself(mail_outbox):
    mail.send_mail("Receipt", "Body", None, ["bob@example.com"])
    mail_outbox.assert_sent(to="alice@example.com")


def test_untouched_without_the_fixtures():
    from django.conf import settings
    from hypermail_django.testing.outbox import get_outbox

    locmem = "django.core.mail.backends.locmem.EmailBackend"
    if hasattr(settings, "MAILERS"):
        assert {c["BACKEND"] for c in settings.MAILERS.values()} == {locmem}
    else:
        assert settings.EMAIL_BACKEND == locmem
    assert get_outbox() == []
"""

CONFTEST = """
import pytest


@pytest.fixture
def mail_outbox_options():
    return {"css_inline": True}
"""

CSS_TESTS = """
from django.core.mail import EmailMultiAlternatives


def test_options_fixture_is_honoured(mail_outbox):
    message = EmailMultiAlternatives("Styled", "t", to=["a@example.com"])
    html = "<style>p { color: #1a2b3c }</style><p>x</p>"
    message.attach_alternative(html, "text/html")
    message.send()
    entry = mail_outbox.assert_sent(subject="Styled")
    assert 'style="color: #1a2b3c' in entry.html_body
"""


def _registered() -> bool:
    return any(
        entry.value.startswith(PLUGIN)
        for entry in importlib.metadata.entry_points(group="pytest11")
    )


@pytest.fixture
def project(pytester: pytest.Pytester, request: pytest.FixtureRequest):
    """A users' project with the plugin, settings on EMAIL_* or MAILERS."""
    settings = SETTINGS + (MAILERS if request.param == "mailers" else "")
    pytester.makepyfile(project_settings=settings)
    pytester.makeini(
        textwrap.dedent(
            """
            [pytest]
            DJANGO_SETTINGS_MODULE = project_settings
            pythonpath = .
            filterwarnings = error
            asyncio_default_fixture_loop_scope = function
            addopts = --strict-markers -p no:cacheprovider
            """
        )
    )
    return pytester


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    plugin = [] if _registered() else ["-p", PLUGIN]
    # --ds: the outer run exported DJANGO_SETTINGS_MODULE for its own settings.
    return pytester.runpytest_subprocess(
        "--ds=project_settings", *plugin, *args, timeout=120
    )


SETTINGS_KINDS = [
    "legacy",
    pytest.param(
        "mailers",
        marks=pytest.mark.skipif(not MAILERS_SUPPORTED, reason="MAILERS is 6.1+"),
    ),
]


@pytest.mark.parametrize("project", SETTINGS_KINDS, indirect=True)
def test_fixtures_in_a_users_test_suite(project):
    project.makepyfile(test_users=USERS_TESTS)
    result = _run(project, "-v")
    result.assert_outcomes(passed=8, failed=1)
    result.stdout.fnmatch_lines(["*test_a_failing_assertion_explains_itself FAILED*"])
    output = result.stdout.str()
    assert (
        "expected 1 message(s) matching to='alice@example.com'; found 0 among 1 sent:"
        in output
    )
    assert (
        "1. subject='Receipt' from='app@example.com' to=['bob@example.com']" in output
    )


@pytest.mark.parametrize("project", SETTINGS_KINDS, indirect=True)
def test_options_fixtures_can_be_overridden(project):
    project.makeconftest(CONFTEST)
    project.makepyfile(test_css=CSS_TESTS)
    _run(project).assert_outcomes(passed=1)


@pytest.mark.parametrize("project", ["legacy"], indirect=True)
def test_markers_are_registered(project):
    result = _run(project, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.smtp_server(**options):*"])
