"""The mail previews, through Django's test client.

The package's own preview (password reset) is found by autodiscovery; the
samples in ``mail_previews_samples.py`` add inline images, attachments and a
hostile HTML body. "Send to me" goes through a real ``SMTPTestServer``.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.test import Client

from hypermail_django.previews import get_preview
from hypermail_django.previews.registry import InvalidPreview
from hypermail_django.testing.outbox import clear_outbox

from .. import mail_previews_samples as samples
from ..conftest import mailer_for
from ..records_urls import records_site

pytestmark = pytest.mark.django_db

INDEX = "/mail-previews/"
ORDER = f"{INDEX}preview/tests.mail_previews_samples.order_confirmation/"
RESET = f"{INDEX}preview/hypermail_django.password_reset/"


def _client(*, staff: bool, email: str = "dev@example.com") -> Client:
    user = User.objects.create_user("dev", email, "pw", is_staff=staff)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def site():
    with records_site():
        yield


def test_nobody_but_staff_without_debug(site):
    for url in (INDEX, ORDER, ORDER + "html/", ORDER + "source/"):
        assert Client().get(url).status_code == 404
        assert _client(staff=False).get(url).status_code == 404
        User.objects.all().delete()
    staff = _client(staff=True)
    assert staff.get(INDEX).status_code == 200


def test_debug_serves_anyone():
    with records_site(DEBUG=True):
        assert Client().get(INDEX).status_code == 200


def test_index_lists_discovered_previews_and_the_outbox_newest_first(site):
    clear_outbox()
    with mailer_for(backend="hypermail_django.backends.MemoryBackend"):
        send_mail("First", "x", "a@example.com", ["b@example.com"])
        send_mail("Second", "x", "a@example.com", ["c@example.com"])
    page = _client(staff=True).get(INDEX).content.decode()
    assert "Password reset" in page  # hypermail_django/mail_previews.py
    assert "Order confirmation" in page
    assert "An order confirmation with a logo" in page
    assert page.index("Second") < page.index("First")
    clear_outbox()


def test_detail_shows_both_widths_text_headers_and_parts(site):
    client = _client(staff=True)
    page = client.get(ORDER).content.decode()
    assert page.count('sandbox=""') == 2
    assert "width: 800px" in page and "width: 375px" in page
    assert "Total: 42 EUR" in page  # the text part
    assert "Your order #1042" in page  # the Subject header
    assert "invoice.txt" in page and "cid:logo" in page

    frame = client.get(ORDER + "html/")
    assert "img-src data:" in frame["Content-Security-Policy"]
    assert 'src="data:image/png;base64,' in frame.content.decode()  # cid: inlined

    source = client.get(ORDER + "source/")
    assert source["Content-Type"].startswith("text/plain")
    assert b"Subject: Your order #1042" in source.content
    assert b"Content-ID: <logo>" in source.content

    invoice = client.get(ORDER + "part/1/")
    assert invoice.content.splitlines() == [b"Invoice 1042"]
    assert "attachment" in invoice["Content-Disposition"]
    assert client.get(ORDER + "part/9/").status_code == 404


def test_the_password_reset_preview_renders(site):
    page = _client(staff=True).get(RESET).content.decode()
    assert "https://www.example.com/accounts/password-reset/" in page
    assert "alice@example.com" in page


def test_send_to_me_goes_through_the_configured_mailer(site, use_server):
    client = Client(enforce_csrf_checks=True)
    client.force_login(
        User.objects.create_user("dev", "dev@example.com", "pw", is_staff=True)
    )
    page = client.get(ORDER)
    token = page.cookies["csrftoken"].value
    assert client.get(ORDER + "send/").status_code == 405
    assert client.post(ORDER + "send/").status_code == 403  # no CSRF token
    response = client.post(ORDER + "send/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    (received,) = use_server.messages
    assert received.rcpt_tos == ["dev@example.com"]
    assert received.message()["Subject"] == "Your order #1042"
    assert (
        "Sent to dev@example.com" in client.get(response["Location"]).content.decode()
    )


def test_a_preview_must_return_a_message():
    found = get_preview("tests.mail_previews_samples.not_a_message")
    assert found is not None
    with pytest.raises(InvalidPreview, match="must return a Django EmailMessage"):
        found.build()
    assert samples.BEACON  # the module is registered by importing it
