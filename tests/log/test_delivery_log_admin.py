"""The delivery log in the admin, through Django's test client.

Messages are sent to a real ``SMTPTestServer`` and recorded; staff users with
and without the body and resend permissions look them up, open them, export
and resend them (through background delivery, on Django Tasks' Immediate
backend, to the same server).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from email import message_from_bytes
from html import escape
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.mail import EmailMultiAlternatives
from django.test import Client, override_settings

from hypermail_django.exceptions import RecipientsRefused
from hypermail_django.log.models import Delivery

from ..background.test_background import IMMEDIATE
from ..records_urls import records_site

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "/admin/hypermail_log/delivery/"
EVIL = (
    '<p>Hello</p><script>window.pwned = 1</script><img src="https://evil.example/t.gif">'
    '<form action="https://evil.example/"><input name="q"></form>'
    '<a href="javascript:alert(1)">click</a>'
)


@pytest.fixture
def site(use_server, keep_full) -> Iterator[None]:
    with (
        records_site(),
        override_settings(TASKS={"default": {"BACKEND": IMMEDIATE}}, ADMINS=[]),
    ):
        yield


def _send(subject: str, *to: str, html: str = EVIL) -> Delivery:
    message = EmailMultiAlternatives(subject, "Plain words.", "shop@example.com", to)
    message.attach_alternative(html, "text/html")
    message.send()
    return Delivery.objects.get(message_id=message.hypermail_status.message_id)


def _staff(*perms: str, username: str = "support") -> Client:
    user = User.objects.create_user(username, f"{username}@example.com", "pw")
    user.is_staff = True
    user.save()
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="hypermail_log", codename__in=perms
        )
    )
    client = Client()
    client.force_login(user)
    return client


def _results(response: Any) -> list[str]:
    return [d.subject for d in response.context["cl"].result_list]


def test_search_by_recipient_message_id_and_subject(site):
    first = _send("Invoice 1042", "alice@example.com")
    _send("Welcome aboard", "bob@example.com")
    client = _staff("view_delivery")
    assert _results(client.get(CHANGELIST, {"q": "Alice@Example.com"})) == [
        "Invoice 1042"
    ]
    assert _results(client.get(CHANGELIST, {"q": first.message_id})) == ["Invoice 1042"]
    bare = first.message_id.strip("<>")
    assert _results(client.get(CHANGELIST, {"q": bare})) == ["Invoice 1042"]
    assert _results(client.get(CHANGELIST, {"q": "Welcome"})) == ["Welcome aboard"]
    assert _results(client.get(CHANGELIST, {"q": "nobody@example.com"})) == []
    assert len(_results(client.get(CHANGELIST))) == 2


def test_filters_by_status_and_mailer(site, use_server):
    use_server.fail("RCPT", "550 5.1.1 No such user", match="ghost@")
    _send("Fine", "alice@example.com")
    message = EmailMultiAlternatives(
        "Lost", "x", "shop@example.com", ["ghost@example.com"]
    )
    with pytest.raises(RecipientsRefused):
        message.send()
    client = _staff("view_delivery")
    assert _results(client.get(CHANGELIST, {"status__exact": "failed"})) == ["Lost"]
    assert _results(client.get(CHANGELIST, {"status__exact": "sent"})) == ["Fine"]
    mailer = Delivery.objects.get(subject="Fine").mailer
    assert len(_results(client.get(CHANGELIST, {"mailer__exact": mailer}))) == 2


def test_detail_shows_each_outcome_headers_and_a_sandboxed_body(site, use_server):
    use_server.fail("RCPT", "550 5.1.1 No such user", match="ghost@")
    delivery = _send("Invoice", "alice@example.com", "ghost@example.com")
    client = _staff("view_delivery", "view_body")
    page = client.get(f"{CHANGELIST}{delivery.pk}/change/").content.decode()
    assert "alice@example.com" in page and "ghost@example.com" in page
    assert "550" in page and "No such user" in page
    assert "Subject: Invoice" in page  # the headers
    assert "Plain words." in page  # the text part
    assert 'sandbox=""' in page
    assert "<script>window.pwned" not in page  # never inline in the admin page

    frame = client.get(f"{CHANGELIST}{delivery.pk}/html/")
    policy = frame["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy  # falls back to 'none'
    assert "img-src data:" in policy and "https:" not in policy
    assert "form-action 'none'" in policy and policy.endswith("img-src data:")
    assert "sandbox" in policy
    with_images = client.get(f"{CHANGELIST}{delivery.pk}/html/", {"images": "1"})
    assert "img-src data: https: http:" in with_images["Content-Security-Policy"]


def test_without_view_body_no_body_no_frame_no_export(site):
    delivery = _send("Private", "alice@example.com")
    client = _staff("view_delivery")
    page = client.get(f"{CHANGELIST}{delivery.pk}/change/").content.decode()
    assert "alice@example.com" in page
    assert "Plain words." not in page
    assert "sandbox" not in page
    assert client.get(f"{CHANGELIST}{delivery.pk}/html/").status_code == 403
    assert client.get(f"{CHANGELIST}{delivery.pk}/eml/").status_code == 403
    refused = client.post(
        CHANGELIST, {"action": "export_selected", "_selected_action": [delivery.pk]}
    )
    assert refused.status_code == 200  # the list again: no such action for them
    assert refused["Content-Type"].startswith("text/html")


def test_anonymous_and_non_staff_get_nothing(site):
    delivery = _send("Private", "alice@example.com")
    anonymous = Client().get(f"{CHANGELIST}{delivery.pk}/html/")
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    user = User.objects.create_user("eve", "eve@example.com", "pw")
    eve = Client()
    eve.force_login(user)
    assert eve.get(f"{CHANGELIST}{delivery.pk}/html/").status_code == 302


def test_export_one_as_eml_and_several_as_zip(site, use_server):
    one = _send("One", "alice@example.com")
    two = _send("Two", "bob@example.com")
    client = _staff("view_delivery", "view_body")
    eml = client.get(f"{CHANGELIST}{one.pk}/eml/")
    assert eml["Content-Type"] == "message/rfc822"
    assert "attachment" in eml["Content-Disposition"]
    assert eml.content.rstrip() == use_server.messages[0].data.rstrip()
    archive = client.post(
        CHANGELIST, {"action": "export_selected", "_selected_action": [one.pk, two.pk]}
    )
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        names = zipped.namelist()
        assert len(names) == 2
        subjects = {message_from_bytes(zipped.read(n))["Subject"] for n in names}
    assert subjects == {"One", "Two"}


def test_resend_needs_the_permission_and_links_a_new_message(site, use_server):
    original = _send("Receipt", "alice@example.com")
    viewer = _staff("view_delivery", "view_body", username="viewer")
    viewer.post(
        CHANGELIST, {"action": "resend_selected", "_selected_action": [original.pk]}
    )
    assert Delivery.objects.count() == 1
    assert len(use_server.messages) == 1

    sender = _staff("view_delivery", "view_body", "resend_delivery", username="lead")
    page = sender.get(f"{CHANGELIST}{original.pk}/change/").content.decode()
    assert "Resend this message" in page
    sender.post(
        CHANGELIST, {"action": "resend_selected", "_selected_action": [original.pk]}
    )
    copy = Delivery.objects.get(resent_from=original)
    assert copy.status == "sent"
    assert copy.via == "background"
    assert copy.message_id != original.message_id
    assert [r.address for r in copy.recipients.all()] == ["alice@example.com"]
    resent = use_server.messages[1].message()
    assert resent["Message-ID"] == copy.message_id
    assert resent["References"] == original.message_id
    assert resent["Subject"] == "Receipt"
    assert resent.get_body(("html",)).get_content().rstrip() == EVIL
    page = sender.get(f"{CHANGELIST}{original.pk}/change/").content.decode()
    assert escape(copy.message_id) in page  # "resent as", linked
    assert f"{CHANGELIST}{copy.pk}/change/" in page


def test_headers_only_records_cannot_be_resent(use_server, log_on):
    with records_site():
        message = EmailMultiAlternatives(
            "Thin", "x", "shop@example.com", ["a@example.com"]
        )
        message.send()
        delivery = Delivery.objects.get()
        client = _staff("view_delivery", "view_body", "resend_delivery")
        page = client.get(f"{CHANGELIST}{delivery.pk}/change/").content.decode()
        assert "Only the headers" in page
        response = client.post(
            CHANGELIST,
            {"action": "resend_selected", "_selected_action": [delivery.pk]},
            follow=True,
        )
    assert "kept only its headers" in response.content.decode()
    assert Delivery.objects.count() == 1


def test_resend_without_background_delivery_says_what_to_fix(site, use_server):
    original = _send("Receipt", "alice@example.com")
    client = _staff("view_delivery", "view_body", "resend_delivery")
    with override_settings(HYPERMAIL_BACKGROUND_BACKEND="missing"):
        response = client.post(
            CHANGELIST,
            {"action": "resend_selected", "_selected_action": [original.pk]},
            follow=True,
        )
    assert "Cannot enqueue email tasks on the TASKS backend" in (
        response.content.decode()
    )
    assert list(Delivery.objects.all()) == [original]  # no dangling "queued"
    assert len(use_server.messages) == 1
