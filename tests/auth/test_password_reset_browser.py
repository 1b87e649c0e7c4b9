"""The reset flow in a real browser, on the test project's URLs.

Headless Chromium (Debian's ``chromium`` package, driven by Playwright) asks
for a reset on the login page, follows the link from the outbox, sets a new
password and logs in with it. The server is pytest-django's live server, in
this process, so the memory backend's outbox is readable here.

The test fails -- never skips -- without ``/usr/bin/chromium``: CI must prove
it ran. The database is touched only before and after the browser runs
(Playwright's sync API keeps an event loop in this thread, and Django refuses
database access from one).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.test import override_settings
from pytest_django.live_server_helper import LiveServer

from hypermail_django.auth.delivery import wait_for_deliveries
from hypermail_django.testing.outbox import get_outbox

from ..auth_urls import FLOW_SETTINGS, reset_flow
from ..paths import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium phones home, and this machine's closed network
    # refuses its connections.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TESTPROJECT_TEMPLATES = ROOT / "testproject" / "templates"
NEW = "correct-Horse-battery-9"
OLD = "old-Pa55word!"


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser test needs Debian's chromium "
            "package (apt-get install -y chromium). It fails rather than skips "
            "so that CI proves it ran."
        )
    return CHROMIUM


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    """pytest-django's live server, started with the settings it keeps.

    The server reads ``MIDDLEWARE`` (sessions, CSRF, auth), ``SESSION_ENGINE``
    and ``STATIC_URL`` once, when it starts, and the test settings have none
    of them; so this module
    starts its own rather than sharing pytest-django's session-wide one.
    """
    with override_settings(
        MIDDLEWARE=FLOW_SETTINGS["MIDDLEWARE"],
        SESSION_ENGINE=FLOW_SETTINGS["SESSION_ENGINE"],
        STATIC_URL="/static/",
    ):
        server = LiveServer("localhost")
    yield server
    server.stop()


@pytest.fixture
def testproject(live_server: LiveServer) -> Iterator[str]:
    """The test project's URLs and templates, served by the live server."""
    templates = [{**FLOW_SETTINGS["TEMPLATES"][0], "DIRS": [TESTPROJECT_TEMPLATES]}]
    with reset_flow(
        ROOT_URLCONF="testproject.urls",
        TEMPLATES=templates,
        ALLOWED_HOSTS=["localhost", "127.0.0.1"],
        LOGIN_URL="/accounts/login/",
        LOGIN_REDIRECT_URL="/",
    ):
        yield live_server.url


@pytest.mark.django_db(transaction=True)
def test_reset_then_log_in_with_the_new_password(chromium, testproject):
    from playwright.sync_api import expect, sync_playwright

    user = get_user_model().objects.create_user("alice", "alice@example.com", OLD)
    responses: dict[str, dict[str, str]] = {}
    referers: list[str] = []

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(10_000)
            page.on("response", lambda r: responses.setdefault(r.url, r.headers))
            page.on("request", lambda r: referers.append(r.headers.get("referer", "")))

            # 1. Ask for a reset from the login page.
            page.goto(f"{testproject}/accounts/login/")
            page.get_by_role("link", name="Forgotten your password?").click()
            page.get_by_label("Email").fill("alice@example.com")
            page.get_by_role("button", name="Send me a reset link").click()
            expect(page.get_by_role("heading")).to_have_text("Check your inbox")

            # 2. The link, from the outbox.
            assert wait_for_deliveries()
            (entry,) = get_outbox()
            assert entry.to == ["alice@example.com"]
            (link,) = set(re.findall(r"http://\S+/password-reset/\S+/\S+/", entry.body))
            assert link.startswith(testproject)
            token = link.rstrip("/").split("/")[-1]

            # 3. Open it: the token leaves the URL before the page renders.
            page.goto(link)
            assert page.url.endswith("/set-password/")
            assert token not in page.url
            assert responses[link]["referrer-policy"] == "no-referrer"
            # The form's own URL holds no token: same-origin, so that its
            # POST carries an Origin that Django's CSRF check accepts.
            assert responses[page.url]["referrer-policy"] == "same-origin"

            # 4. Set the new password.
            page.get_by_label("New password:", exact=True).fill(NEW)
            page.get_by_label("New password confirmation").fill(NEW)
            page.get_by_role("button", name="Set my password").click()
            expect(page.get_by_role("heading")).to_have_text("Password reset complete")

            # 5. Log in with it.
            page.get_by_role("link", name="Log in").click()
            page.get_by_label("Username").fill("alice")
            page.get_by_label("Password").fill(NEW)
            page.get_by_role("button", name="Log in").click()
            expect(page.locator("#who")).to_have_text("Logged in as alice")

            # 6. The link is spent.
            spent = browser.new_page()
            spent.goto(link)
            expect(spent.get_by_role("heading")).to_have_text(
                "Password reset unsuccessful"
            )
        finally:
            browser.close()

    assert not any(token in referer for referer in referers)
    user.refresh_from_db()
    assert authenticate(username="alice", password=NEW) == user
    assert authenticate(username="alice", password=OLD) is None
