"""With ``django.template`` logging at DEBUG (common in development), Django
logs the whole context of a template that looks up a missing variable. The
password-reset context holds the token, the reset URL and the address: no
shipped template may look up a variable the flow does not give it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.template.loader import get_template
from django.test import override_settings

from hypermail_django.auth import send_password_reset_email
from hypermail_django.auth.tokens import generate_reset_token
from hypermail_django.testing import SMTPTestServer
from hypermail_django.testing.outbox import clear_outbox, get_outbox

from ..auth_urls import FLOW_SETTINGS
from ..conftest import mailer_for
from ..paths import ROOT, TESTS

pytestmark = pytest.mark.django_db

SPA = "https://app.example.com/reset/{uid}/{token}/"
TEMPLATES = ROOT / "hypermail_django" / "templates"


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
    from ..auth.test_password_reset_views import COMPLETE, DONE, FORM, NEW, link_path
    from ..auth_urls import reset_flow

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


# -- every shipped template ------------------------------------------------------

#: What no record may contain: a token, a reset URL, an address.
TOKEN = "c5t-S3CRET-9f8e7d6c"
RESET_URL = f"https://app.example.com/reset/MQ/{TOKEN}/"
ADDRESS = "secret-alice@example.com"
SECRETS = (TOKEN, RESET_URL, ADDRESS)
#: The secret context every standalone render gets on top of its own.
SECRET_CONTEXT = {"token": TOKEN, "reset_url": RESET_URL, "email": ADDRESS}


def _templated_email(client: Any) -> Iterable[str]:
    """The layouts, as a templated email that extends them renders them."""
    from hypermail_django.compose.templated import TemplatedEmail

    engine = {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [TESTS / "templates"],
        "APP_DIRS": True,
    }
    context = {"name": "Alice", "url": RESET_URL, "site": "example.com"}
    with override_settings(TEMPLATES=[engine]):
        TemplatedEmail("emails/welcome", {**context, **SECRET_CONTEXT}).render()
    return ()


def _reset_email(client: Any) -> Iterable[str]:
    """The reset email, sent by the real flow to a user with the address."""
    user = get_user_model().objects.create_user("alice", ADDRESS, "old-Pa55word!")
    clear_outbox()
    with mailer_for(backend="hypermail_django.backends.MemoryBackend"):
        assert send_password_reset_email(user, reset_url_template=SPA) == 1
    (message,) = get_outbox()
    link = next(word for word in message.body.split() if word.startswith("https://"))
    clear_outbox()
    return link, link.rstrip("/").split("/")[-1]


def _reset_pages(client: Any) -> Iterable[str]:
    """Every page of the flow, from the form to the used-up link."""
    from ..auth.test_password_reset_views import COMPLETE, DONE, FORM, NEW, link_path
    from ..auth_urls import reset_flow

    get_user_model().objects.create_user("alice", ADDRESS, "old-Pa55word!")
    with reset_flow():
        client.get(FORM)
        client.post(FORM, {"email": ADDRESS})
        client.get(DONE)
        path = link_path()
        opened = client.get(path)
        client.get(opened.url)
        client.post(opened.url, {"new_password1": NEW, "new_password2": "typo"})
        client.post(opened.url, {"new_password1": NEW, "new_password2": NEW})
        client.get(COMPLETE)
        client.get(path)  # used up: the invalid-link page
    return path, path.rstrip("/").split("/")[-1]


def _login_page(client: Any) -> Iterable[str]:
    """The login page of docs/password-reset.md's urls.py, a secret posted."""
    project = FLOW_SETTINGS | {
        "ROOT_URLCONF": _docs_urlconf(),
        "LOGIN_URL": "/accounts/login/",
    }
    with override_settings(**project):
        client.get("/accounts/login/")
        client.post("/accounts/login/", {"username": ADDRESS, "password": TOKEN})
    return ()


def _previews(client: Any) -> Iterable[str]:
    """The previews of a message in the outbox that carries every secret."""
    from django.contrib.auth.models import User
    from django.core.mail import EmailMultiAlternatives

    from ..records_urls import records_site

    clear_outbox()
    message = EmailMultiAlternatives(
        "Reset", f"Open {RESET_URL}", "shop@example.com", [ADDRESS]
    )
    message.attach_alternative(f'<a href="{RESET_URL}">{TOKEN}</a>', "text/html")
    with mailer_for(backend="hypermail_django.backends.MemoryBackend"):
        message.send()
    with records_site():
        client.force_login(
            User.objects.create_user("dev", "dev@example.com", "pw", is_staff=True)
        )
        client.get("/mail-previews/")
        client.get("/mail-previews/outbox/0/")
        client.get("/mail-previews/outbox/0/html/")
    clear_outbox()
    return ()


def _delivery_admin(client: Any) -> Iterable[str]:
    """The delivery log's admin page of a reset email it kept in full."""
    from django.contrib.auth.models import User
    from django.core.mail import EmailMultiAlternatives

    from hypermail_django.log.models import Delivery

    from ..records_urls import records_site

    message = EmailMultiAlternatives(
        "Reset", f"Open {RESET_URL}", "shop@example.com", [ADDRESS]
    )
    message.attach_alternative(f'<a href="{RESET_URL}">{TOKEN}</a>', "text/html")
    with (
        SMTPTestServer() as server,
        mailer_for(server),
        override_settings(HYPERMAIL_LOG_ENABLED=True, HYPERMAIL_LOG_KEEP="full"),
    ):
        message.send()
    delivery = Delivery.objects.get(message_id=message.hypermail_status.message_id)
    with records_site():
        client.force_login(
            User.objects.create_superuser("root", "root@example.com", "pw")
        )
        page = client.get(f"/admin/hypermail_log/delivery/{delivery.pk}/change/")
    assert page.status_code == 200
    return ()


Renderer = Callable[[Any], Iterable[str]]

#: How each shipped template is rendered: through the real view or flow that
#: renders it, or with the context its renderer gives (a layout alone would be
#: missing its blocks). A template that is found here must render; one found
#: on disk must be here.
RENDERERS: dict[str, Renderer] = {
    "hypermail_django/email/base.html": _templated_email,
    "hypermail_django/email/base.txt": _templated_email,
    "hypermail_django/log/delivery_change_form.html": _delivery_admin,
    "hypermail_django/mailview/frame.html": _previews,
    "hypermail_django/mailview/message.html": _previews,
    "hypermail_django/password_reset/base.html": _reset_pages,
    "hypermail_django/password_reset/complete.html": _reset_pages,
    "hypermail_django/password_reset/confirm.html": _reset_pages,
    "hypermail_django/password_reset/done.html": _reset_pages,
    "hypermail_django/password_reset/email/body.html": _reset_email,
    "hypermail_django/password_reset/email/body.txt": _reset_email,
    "hypermail_django/password_reset/email/subject.txt": _reset_email,
    "hypermail_django/password_reset/form.html": _reset_pages,
    "hypermail_django/password_reset/invalid.html": _reset_pages,
    "hypermail_django/password_reset/login.html": _login_page,
    "hypermail_django/previews/base.html": _previews,
    "hypermail_django/previews/detail.html": _previews,
    "hypermail_django/previews/index.html": _previews,
}


def shipped_templates() -> list[str]:
    """Every file under the package's templates folder, by template name."""
    return sorted(
        str(path.relative_to(TEMPLATES))
        for path in TEMPLATES.rglob("*")
        if path.is_file()
    )


def test_every_shipped_template_has_a_renderer():
    shipped = shipped_templates()
    assert "hypermail_django/email/base.html" in shipped  # the folder was walked
    assert sorted(set(shipped) - set(RENDERERS)) == [], "add them to RENDERERS"
    assert sorted(set(RENDERERS) - set(shipped)) == [], "gone: remove them"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", shipped_templates())
def test_every_shipped_template_logs_no_secret(template_log, name):
    from django.test import Client
    from django.test.signals import template_rendered

    rendered: list[str] = []

    def seen(sender: Any, template: Any, **kwargs: Any) -> None:
        rendered.append(template.name)

    template_rendered.connect(seen)
    try:
        found = RENDERERS[name](Client())
    finally:
        template_rendered.disconnect(seen)
    assert name in rendered  # the renderer really rendered it
    _assert_nothing_secret(template_log.texts, *SECRETS, *found)
