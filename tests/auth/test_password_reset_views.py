"""The server-rendered pages: request, done, confirm (token to session), complete."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.test import Client, override_settings

from hypermail_django.auth.delivery import wait_for_deliveries
from hypermail_django.testing.outbox import get_outbox

from ..auth_urls import FLOW_SETTINGS, reset_flow

pytestmark = pytest.mark.django_db(transaction=True)

FORM = "/accounts/password-reset/"
DONE = "/accounts/password-reset/done/"
COMPLETE = "/accounts/password-reset/complete/"
LINK = re.compile(r"http://testserver(/\S*/password-reset/([^/\s]+)/([^/\s]+)/)")
NEW = "correct-Horse-battery-9"


@pytest.fixture(autouse=True)
def flow() -> Iterator[None]:
    with reset_flow():
        yield


@pytest.fixture
def user():
    return get_user_model().objects.create_user(
        "alice", "alice@example.com", "old-Pa55word!"
    )


def link_path() -> str:
    """The path of the one reset link sent so far."""
    assert wait_for_deliveries()
    (entry,) = get_outbox()
    (match,) = {m.group(1) for m in LINK.finditer(entry.body)}
    return match


def request_reset(client: Client, email: str = "alice@example.com") -> Any:
    return client.post(FORM, {"email": email})


def test_request_page_shows_the_form(client):
    response = client.get(FORM)
    assert response.status_code == 200
    assert b'<input type="email" name="email"' in response.content
    assert b"csrfmiddlewaretoken" in response.content
    assert "no-cache" in response.headers["Cache-Control"]


def test_known_and_unknown_addresses_get_the_same_redirect(client, user):
    known = request_reset(client)
    unknown = request_reset(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 302
    assert known.url == unknown.url == DONE
    assert known.content == unknown.content
    assert wait_for_deliveries()
    assert [e.to for e in get_outbox()] == [["alice@example.com"]]
    page = client.get(DONE)
    assert b"Check your inbox" in page.content


def test_an_invalid_address_shows_the_form_again(client):
    response = request_reset(client, "not-an-address")
    assert response.status_code == 200
    assert b"Enter a valid email address." in response.content


def test_request_form_needs_a_csrf_token(user):
    browser = Client(enforce_csrf_checks=True)
    assert browser.post(FORM, {"email": user.email}).status_code == 403
    page = browser.get(FORM)
    token = page.context["csrf_token"]
    response = browser.post(FORM, {"email": user.email, "csrfmiddlewaretoken": token})
    assert response.status_code == 302


def test_the_whole_flow(client, user):
    request_reset(client)
    path = link_path()
    token = path.rstrip("/").split("/")[-1]

    # Opening the link moves the token into the session, then redirects to a
    # URL without it, before any page renders.
    opened = client.get(path)
    assert opened.status_code == 302
    assert token not in opened.url
    assert opened.url.endswith("/set-password/")
    assert opened.headers["Referrer-Policy"] == "no-referrer"
    assert opened.content == b""

    # The form's URL holds no token; "no-referrer" would make browsers send
    # "Origin: null" with its POST, which fails Django's CSRF check.
    form = client.get(opened.url)
    assert form.status_code == 200
    assert form.headers["Referrer-Policy"] == "same-origin"
    assert token.encode() not in form.content
    assert b'name="new_password1"' in form.content

    mismatch = client.post(
        opened.url, {"new_password1": NEW, "new_password2": NEW + "x"}
    )
    assert mismatch.status_code == 200
    assert b"didn\xe2\x80\x99t match" in mismatch.content

    weak = client.post(
        opened.url, {"new_password1": "alice1", "new_password2": "alice1"}
    )
    assert b"too short" in weak.content

    done = client.post(opened.url, {"new_password1": NEW, "new_password2": NEW})
    assert done.status_code == 302
    assert done.url == COMPLETE
    assert authenticate(username="alice", password=NEW) == user

    complete = client.get(COMPLETE)
    assert b"Your password has been set" in complete.content
    assert b'href="/accounts/login/"' in complete.content  # LOGIN_URL


def test_a_used_link_shows_the_invalid_page(client, user):
    request_reset(client)
    path = link_path()
    opened = client.get(path)
    client.post(opened.url, {"new_password1": NEW, "new_password2": NEW})
    again = Client().get(path)
    assert again.status_code == 200
    assert again.headers["Referrer-Policy"] == "no-referrer"
    assert b"This password reset link is invalid" in again.content
    assert b'href="/accounts/password-reset/"' in again.content


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/password-reset/MQ/not-a-token/",
        "/accounts/password-reset/OTk5/set-password/",
        "/accounts/password-reset/!!/x-y/",
    ],
)
def test_bad_links_show_the_invalid_page(client, user, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert b"This password reset link is invalid" in response.content


def test_set_password_page_without_the_session_token_is_invalid(client, user):
    request_reset(client)
    opened = client.get(link_path())
    other_browser = Client()
    response = other_browser.get(opened.url)
    assert b"This password reset link is invalid" in response.content
    post = other_browser.post(opened.url, {"new_password1": NEW, "new_password2": NEW})
    assert b"This password reset link is invalid" in post.content
    assert authenticate(username="alice", password=NEW) is None


def test_a_link_sent_before_deactivation_stops_working(client, user):
    request_reset(client)
    path = link_path()
    user.is_active = False
    user.save()
    assert b"This password reset link is invalid" in client.get(path).content


def test_pages_work_under_another_namespace(client, user):
    response = client.post("/members/password-reset/", {"email": user.email})
    assert response.url == "/members/password-reset/done/"
    path = link_path()
    assert path.startswith("/members/password-reset/")
    opened = client.get(path)
    assert opened.url.startswith("/members/password-reset/")
    done = client.post(opened.url, {"new_password1": NEW, "new_password2": NEW})
    assert done.url == "/members/password-reset/complete/"


def test_the_setting_points_html_requests_elsewhere(client, user):
    with override_settings(
        HYPERMAIL_PASSWORD_RESET_URL_TEMPLATE="https://app.example.com/r/{uid}/{token}"
    ):
        request_reset(client)
    assert wait_for_deliveries()
    (entry,) = get_outbox()
    assert "https://app.example.com/r/" in entry.body


def test_page_templates_can_be_overridden(client, tmp_path):
    folder = tmp_path / "hypermail_django" / "password_reset"
    folder.mkdir(parents=True)
    (folder / "base.html").write_text(
        "<html><body class=site>{% block content %}{% endblock %}</body></html>"
    )
    templates = [{**FLOW_SETTINGS["TEMPLATES"][0], "DIRS": [tmp_path]}]
    with override_settings(TEMPLATES=templates):
        page = client.get(DONE)
    assert page.content.startswith(b"<html><body class=site>")
    assert b"Check your inbox" in page.content  # the shipped page, new layout


def test_pages_stay_open_under_login_required_middleware(client, user):
    middleware = [
        *FLOW_SETTINGS["MIDDLEWARE"],
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]
    with override_settings(MIDDLEWARE=middleware, LOGIN_URL="/login/"):
        assert client.get(FORM).status_code == 200
        assert request_reset(client).url == DONE
        assert client.get(DONE).status_code == 200
        assert client.get(link_path()).status_code == 302
        assert client.get(COMPLETE).status_code == 200
        api = client.post(
            "/api/password-reset/",
            {"email": user.email},
            content_type="application/json",
        )
        assert api.status_code == 202
