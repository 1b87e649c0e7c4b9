"""The delivery log's admin and the mail previews in a real browser.

Headless Chromium (Debian's ``chromium``, driven by Playwright) logs in as
staff, finds a message by recipient, opens it, reads each recipient's outcome,
resends it and sees the new delivery; opens the previews at both widths and
their source; and proves that hostile HTML in an email -- scripts, a form, a
``javascript:`` link, remote images and stylesheets -- runs nothing and fetches
nothing (a local HTTP server counts every request) until remote images are
asked for, and then only the images.

Set ``HYPERMAIL_SCREENSHOTS`` to a directory to save the documentation's
screenshots there (``docs/img``). As in ``test_password_reset_browser.py`` the
database is touched only before and after the browser runs.
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.mail import EmailMultiAlternatives
from django.test import override_settings
from pytest_django.live_server_helper import LiveServer

from hypermail_django.log.models import Delivery

from .. import mail_previews_samples as samples
from ..auth.test_password_reset_browser import CHROMIUM_ARGS, chromium  # noqa: F401
from ..background.test_background import IMMEDIATE
from ..records_urls import RECORDS_SETTINGS, records_site

PASSWORD = "correct-Horse-battery-9"
SHOTS = os.environ.get("HYPERMAIL_SCREENSHOTS")


class Beacon:
    """A local HTTP server that counts the requests an email makes."""

    PIXEL = samples.PIXEL

    def __init__(self) -> None:
        self.hits: collections.Counter[str] = collections.Counter()
        beacon = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                beacon.hits[self.path.split("?")[0]] += 1
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()
                self.wfile.write(beacon.PIXEL)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def beacon() -> Iterator[Beacon]:
    server = Beacon()
    samples.BEACON["url"] = server.url
    yield server
    server.close()


@pytest.fixture(scope="module")
def live_server() -> Iterator[LiveServer]:
    """A live server started with the admin's middleware and static files."""
    with override_settings(
        MIDDLEWARE=RECORDS_SETTINGS["MIDDLEWARE"],
        SESSION_ENGINE=RECORDS_SETTINGS["SESSION_ENGINE"],
        STATIC_URL="/static/",
    ):
        server = LiveServer("localhost")
    yield server
    server.stop()


@pytest.fixture
def site(live_server, use_server, keep_full) -> Iterator[str]:
    with (
        records_site(),
        override_settings(TASKS={"default": {"BACKEND": IMMEDIATE}}, ADMINS=[]),
    ):
        yield live_server.url


def _send(subject: str, to: list[str], html: str, **kwargs: Any) -> None:
    message = EmailMultiAlternatives(
        subject, "Plain words.", "shop@example.com", to, **kwargs
    )
    message.attach_alternative(html, "text/html")
    message.send()


def _browser(playwright: Any, chromium_path: str) -> Any:
    return playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)


def _log_in(page: Any, base: str, next_url: str) -> None:
    page.goto(f"{base}/admin/login/?next={next_url}")
    page.get_by_label("Username").fill("lead")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def _shot(page: Any, name: str) -> None:
    """Save a documentation screenshot (only with ``HYPERMAIL_SCREENSHOTS``).

    The viewport grows to the whole page rather than using ``full_page``,
    which leaves the sandboxed (out-of-process) frames blank."""
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": height})
    page.wait_for_timeout(500)  # let the frames paint at the new size
    page.screenshot(path=str(Path(SHOTS) / name))
    page.set_viewport_size(size)


def _assert_inert(page: Any, beacon: Beacon) -> None:
    """The hostile frame rendered, ran nothing and fetched nothing; with remote
    images asked for, it fetches its image and still nothing else."""
    from playwright.sync_api import expect

    frame = page.frame_locator("iframe.hm-frame").first
    expect(frame.locator("#greeting")).to_have_text("Hello")
    frame.locator("#js").click()
    page.wait_for_load_state("networkidle")
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert dict(beacon.hits) == {}

    page.get_by_role("link", name="Load remote images").click()
    frame = page.frame_locator("iframe.hm-frame").first
    expect(frame.locator("#greeting")).to_have_text("Hello")
    page.wait_for_load_state("networkidle")
    expect(frame.locator("#remote")).to_be_visible()
    page.wait_for_function(
        "() => true", timeout=1000
    )  # let a late request arrive, were there one
    assert beacon.hits["/image"] >= 1
    assert set(beacon.hits) == {"/image"}  # no fetch, script image, form, css
    assert page.evaluate("typeof window.pwned") == "undefined"


@pytest.mark.django_db(transaction=True)
def test_find_open_and_resend_a_message(chromium, site, use_server):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    User.objects.create_superuser("lead", "lead@example.com", PASSWORD)
    use_server.fail("RCPT", "550 5.1.1 No such user", match="ghost@")
    _send(
        "Invoice 1042",
        ["alice@example.com"],
        "<h1>Invoice 1042</h1><p>Total: <b>42 EUR</b></p>",
        cc=["ghost@example.com"],
    )
    _send("Welcome aboard", ["bob@example.com"], "<h1>Welcome</h1>")
    original = Delivery.objects.get(subject="Invoice 1042")

    with sync_playwright() as playwright:
        browser = _browser(playwright, chromium)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(10_000)
            _log_in(page, site, "/admin/hypermail_log/delivery/")
            expect(page.locator("#result_list")).to_contain_text("Welcome aboard")
            _shot(page, "delivery-log-list.png")

            page.locator("#searchbar").fill("alice@example.com")
            page.locator("#searchbar").press("Enter")
            rows = page.locator("#result_list tbody tr")
            expect(rows).to_have_count(1)
            expect(rows).to_contain_text("Invoice 1042")

            rows.first.locator("th a").click()
            recipients = page.locator(".tabular tbody tr")
            expect(recipients.filter(has_text="alice@example.com")).to_contain_text(
                "sent"
            )
            ghost = recipients.filter(has_text="ghost@example.com")
            expect(ghost).to_contain_text("refused")
            expect(ghost).to_contain_text("550")
            expect(ghost).to_contain_text("No such user")
            frame = page.frame_locator("iframe.hm-frame").first
            expect(frame.locator("h1")).to_have_text("Invoice 1042")
            _shot(page, "delivery-log-detail.png")

            page.get_by_role("button", name="Resend this message").click()
            expect(page.locator(".messagelist")).to_contain_text("Queued 1 message")
            page.locator("#searchbar").fill("alice@example.com")
            page.locator("#searchbar").press("Enter")
            expect(rows).to_have_count(2)
            rows.first.locator("th a").click()
            expect(page.locator(".field-original")).to_contain_text("Invoice 1042")
            expect(page.locator(".field-via")).to_contain_text("background")
            # The server still refuses the ghost: the resend is partly sent.
            expect(page.locator("div.field-status")).to_contain_text("partly sent")
            expect(recipients.filter(has_text="alice@example.com")).to_contain_text(
                "sent"
            )
            expect(recipients.filter(has_text="ghost@example.com")).to_contain_text(
                "550"
            )
        finally:
            browser.close()

    copy = Delivery.objects.get(resent_from=original)
    resent = use_server.messages[-1].message()
    assert resent["References"] == original.message_id
    assert resent["Message-ID"] == copy.message_id


@pytest.mark.django_db(transaction=True)
def test_hostile_html_runs_and_fetches_nothing_in_the_admin(chromium, site, beacon):  # noqa: F811
    from playwright.sync_api import sync_playwright

    User.objects.create_superuser("lead", "lead@example.com", PASSWORD)
    _send(
        "Hostile",
        ["alice@example.com"],
        samples.EVIL_HTML.replace("{beacon}", beacon.url),
    )
    pk = Delivery.objects.get().pk

    with sync_playwright() as playwright:
        browser = _browser(playwright, chromium)
        try:
            page = browser.new_page()
            page.set_default_timeout(10_000)
            _log_in(page, site, f"/admin/hypermail_log/delivery/{pk}/change/")
            _assert_inert(page, beacon)
        finally:
            browser.close()


@pytest.mark.django_db(transaction=True)
def test_previews_at_both_widths_source_and_hostile_html(chromium, site, beacon):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    User.objects.create_superuser("lead", "lead@example.com", PASSWORD)
    User.objects.create_user("eve", "eve@example.com", PASSWORD)

    with sync_playwright() as playwright:
        browser = _browser(playwright, chromium)
        try:
            # Anonymous and non-staff users get a 404 (DEBUG is off).
            anonymous = browser.new_page()
            assert anonymous.goto(f"{site}/mail-previews/").status == 404
            nonstaff = browser.new_page()
            nonstaff.goto(f"{site}/admin/login/")
            nonstaff.get_by_label("Username").fill("eve")
            nonstaff.get_by_label("Password").fill(PASSWORD)
            nonstaff.get_by_role("button", name="Log in").click()
            assert nonstaff.goto(f"{site}/mail-previews/").status == 404

            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(10_000)
            _log_in(page, site, "/mail-previews/")
            expect(page.get_by_role("link", name="Password reset")).to_be_visible()
            _shot(page, "previews-index.png")

            page.get_by_role("link", name="Order confirmation").click()
            frames = page.locator("iframe.hm-frame")
            expect(frames).to_have_count(2)
            widths = [frames.nth(i).bounding_box()["width"] for i in range(2)]
            assert [round(w) for w in widths] == [802, 377]  # plus the borders
            for i in range(2):
                inner = page.frame_locator("iframe.hm-frame").nth(i)
                expect(inner.locator("h1")).to_have_text("Thanks for your order")
                # The cid: logo, inlined: it loaded without any request.
                expect(inner.locator("img")).to_have_js_property("naturalWidth", 1)
            expect(page.locator(".hm-text")).to_contain_text("Total: 42 EUR")
            _shot(page, "previews-detail.png")

            page.get_by_role("link", name="Raw source").click()
            expect(page.locator("body")).to_contain_text("Subject: Your order #1042")

            page.goto(f"{site}/mail-previews/")
            page.get_by_role("link", name="Hostile HTML").click()
            _assert_inert(page, beacon)
        finally:
            browser.close()
