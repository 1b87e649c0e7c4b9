"""With ``django.template`` logging at DEBUG (common in development), Django
logs the whole context of a template that looks up a missing variable. The
password-reset context holds the token, the reset URL and the address: no
shipped template may look up a variable the flow does not give it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.template.loader import get_template
from django.test import override_settings

from hypermail_django.auth import send_password_reset_email
from hypermail_django.auth.tokens import generate_reset_token
from hypermail_django.outbox import clear_outbox, get_outbox

from .auth_urls import FLOW_SETTINGS
from .conftest import mailer_for

pytestmark = pytest.mark.django_db

SPA = "https://app.example.com/reset/{uid}/{token}/"
TEMPLATES = Path(__file__).resolve().parent.parent / "hypermail_django" / "templates"


class Records(logging.Handler):
    """Every record, formatted with its traceback, as a log file would hold it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(message)s"))
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))


@pytest.fixture
def template_log() -> Iterator[Records]:
    logger = logging.getLogger("django.template")
    handler = Records()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with override_settings(TEMPLATES=FLOW_SETTINGS["TEMPLATES"]):
            yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def user():
    return get_user_model().objects.create_user(
        "alice", "alice-secret@example.com", "old-Pa55word!"
    )


def _assert_nothing_secret(texts: list[str], *secrets: str) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, text[:500]


def test_the_reset_email_logs_no_token_url_or_address(template_log, user):
    clear_outbox()
    with mailer_for(backend="hypermail_django.backends.MemoryBackend"):
        assert send_password_reset_email(user, reset_url_template=SPA) == 1
    (message,) = get_outbox()
    body = message.body
    link = next(word for word in body.split() if word.startswith("https://"))
    token = link.rstrip("/").split("/")[-1]
    _assert_nothing_secret(template_log.texts, token, link, user.email)


def test_the_reset_email_templates_look_up_nothing_missing(template_log, user):
    # Render each email template with exactly the flow's context: any record
    # would carry the context (and so the token).
    reset = generate_reset_token(user)
    context = {
        "user": user,
        "reset_url": SPA.format(uid=reset.uid, token=reset.token),
        "uid": reset.uid,
        "token": reset.token,
        "site_name": "app.example.com",
        "domain": "app.example.com",
        "valid_for": "3 days",
        "timeout": 259200,
        "subject": "Reset your password",  # added by the templated-email render
    }
    names = sorted(
        str(path.relative_to(TEMPLATES))
        for path in (
            TEMPLATES / "hypermail_django" / "password_reset" / "email"
        ).iterdir()
    )
    assert names  # the templates were found
    for name in names:
        get_template(name).render(context)
    _assert_nothing_secret(template_log.texts, reset.token, user.email)
    assert template_log.texts == []


@pytest.mark.django_db(transaction=True)
def test_the_reset_pages_log_no_token_url_or_address(template_log, user, client):
    """Every HTML page of the flow, from the form to the completed reset."""
    from .auth_urls import reset_flow
    from .test_password_reset_views import COMPLETE, DONE, FORM, NEW, link_path

    with reset_flow():
        client.get(FORM)
        client.post(FORM, {"email": user.email})
        client.get(DONE)
        path = link_path()
        opened = client.get(path)  # redirects to the form, the token out of the URL
        client.get(opened.url)
        client.post(opened.url, {"new_password1": NEW, "new_password2": "typo"})
        done = client.post(opened.url, {"new_password1": NEW, "new_password2": NEW})
        assert done.url == COMPLETE  # the password was set
        client.get(COMPLETE)
        client.get(path)  # used up: the invalid-link page
    token = path.rstrip("/").split("/")[-1]
    _assert_nothing_secret(template_log.texts, token, path, user.email)


def _docs_urlconf() -> str:
    """The urls.py of docs/password-reset.md, as a module a test can use."""
    import re
    import sys
    import types

    text = (TEMPLATES.parent.parent / "docs" / "password-reset.md").read_text()
    (code,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", text, re.S)
        if block.startswith("# urls.py") and "LoginView" in block
    ]
    module = types.ModuleType("docs_password_reset_urls")
    exec(compile(code, "docs/password-reset.md", "exec"), module.__dict__)
    sys.modules[module.__name__] = module
    return module.__name__


@pytest.mark.django_db(transaction=True)
def test_the_docs_urls_py_login_page_works_in_a_new_project(template_log):
    """The login page the docs' urls.py mounts renders from shipped templates
    (a new project has no registration/login.html), links to the reset form,
    and logs nothing with a password posted to it."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    project = FLOW_SETTINGS | {
        "ROOT_URLCONF": _docs_urlconf(),
        "LOGIN_URL": "/accounts/login/",
    }
    with override_settings(**project):
        get_user_model().objects.create_user("bob", "bob@example.com", "Pa55-word-ok!")
        client = Client()
        page = client.get("/accounts/login/")
        assert page.status_code == 200
        assert b'href="/accounts/password-reset/"' in page.content
        wrong = client.post(
            "/accounts/login/", {"username": "bob", "password": "wrong-Secret-1"}
        )
        assert wrong.status_code == 200
        right = client.post(
            "/accounts/login/", {"username": "bob", "password": "Pa55-word-ok!"}
        )
        assert right.status_code == 302
        complete = client.get("/accounts/password-reset/complete/")
        assert b'href="/accounts/login/"' in complete.content
    _assert_nothing_secret(template_log.texts, "wrong-Secret-1", "Pa55-word-ok!")
