"""Per-mailer defaults: each mailer its own sender, Reply-To and headers.

Deliveries go to a real SMTP server; the envelope sender (MAIL FROM) is read
from the server's record, not from the message object.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core import mail
from django.core.mail import EmailMessage
from django.test import override_settings

import hypermail_django
from hypermail_django.background import send_mail_later
from hypermail_django.background.framework import MODULE
from hypermail_django.bulk import send_bulk
from hypermail_django.exceptions import ConfigurationError

from ..conftest import mailer_for
from ..dkim_fixtures.keys import RSA, dnsfunc

DEFAULTS = {
    "from_email": "Billing <billing@example.com>",
    "reply_to": ["support@example.com"],
    "headers": {"X-Mailer-Name": "billing", "List-Unsubscribe": "<mailto:u@x.test>"},
}


def test_a_message_from_default_from_email_takes_the_mailers(make_backend, server):
    message = EmailMessage("Invoice", "Attached.", None, ["a@customer.test"])
    assert message.from_email == settings.DEFAULT_FROM_EMAIL  # what Django does
    make_backend(defaults=DEFAULTS).send_messages([message])
    (received,) = server.messages
    assert received.mail_from == "billing@example.com"  # the envelope follows
    headers = received.message()
    assert headers["From"] == "Billing <billing@example.com>"
    assert headers["Reply-To"] == "support@example.com"
    assert headers["X-Mailer-Name"] == "billing"
    assert headers["List-Unsubscribe"] == "<mailto:u@x.test>"
    # The caller's message is unchanged: another mailer starts from it again.
    assert message.from_email == settings.DEFAULT_FROM_EMAIL
    assert message.reply_to == [] and message.extra_headers == {}


def test_what_the_message_sets_wins(make_backend, server):
    message = EmailMessage(
        "Invoice",
        "Attached.",
        "Sales <sales@example.com>",
        ["a@customer.test"],
        reply_to=["sales-team@example.com"],
        headers={"x-mailer-name": "sales"},
    )
    make_backend(defaults=DEFAULTS).send_messages([message])
    (received,) = server.messages
    assert received.mail_from == "sales@example.com"
    headers = received.message()
    assert headers["Reply-To"] == "sales-team@example.com"
    assert headers.get_all("X-Mailer-Name") == ["sales"]
    assert headers["List-Unsubscribe"] == "<mailto:u@x.test>"


def test_each_mailer_its_own_sender(server):
    from hypermail_django.backends import FluxMailBackend

    alerts = FluxMailBackend(
        host=server.host,
        port=server.port,
        defaults={"from_email": "alerts@example.com"},
    )
    billing = FluxMailBackend(host=server.host, port=server.port, defaults=DEFAULTS)
    for backend in (alerts, billing):
        backend.send_messages([EmailMessage("s", "b", None, ["a@customer.test"])])
    assert [m.mail_from for m in server.messages] == [
        "alerts@example.com",
        "billing@example.com",
    ]


def test_defaults_then_dkim_for_the_mailers_domain(make_backend, server):
    import dkim

    backend = make_backend(defaults=DEFAULTS, dkim=RSA.option)
    backend.send_messages([EmailMessage("s", "b", None, ["a@customer.test"])])
    assert dkim.verify(server.messages[0].data, dnsfunc=dnsfunc)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("billing@example.com", "must be a dict"),
        ({"from": "x@example.com"}, "unknown key"),
        ({"from_email": "not an address"}, "not a usable address"),
        ({"reply_to": 3}, "list of addresses"),
        ({"headers": {"Bad Name": "x"}}, "invalid header name"),
        ({"headers": {"X-A": "one\r\nBcc: x@evil.test"}}, "line break"),
        ({"headers": ["X-A"]}, "dict of str to str"),
    ],
)
def test_bad_defaults_fail_at_start_up(make_backend, value, words):
    with pytest.raises(ConfigurationError) as caught:
        make_backend(defaults=value)
    assert caught.value.code == "invalid_defaults"
    assert words in str(caught.value)
    assert "defaults" in str(caught.value)


# -- every sending path ----------------------------------------------------------


def test_send_mail(server):
    with mailer_for(server, defaults=DEFAULTS):
        mail.send_mail("s", "b", None, ["a@customer.test"])
    assert server.messages[0].mail_from == "billing@example.com"


@pytest.mark.asyncio
async def test_async_path(server, close_async_pools):
    with mailer_for(server, defaults=DEFAULTS):
        await hypermail_django.asend_mail("s", "b", None, ["a@customer.test"])
        await hypermail_django.asend_messages(
            [EmailMessage("s", "b", None, ["b@customer.test"])]
        )
    assert [m.mail_from for m in server.messages] == ["billing@example.com"] * 2
    assert server.messages[1].message()["Reply-To"] == "support@example.com"


@pytest.fixture
def workers(monkeypatch):
    from hypermail_django.bulk import preparation

    monkeypatch.setattr(preparation, "_settings_module", lambda: "tests.settings")


@pytest.mark.parametrize("processes", [0, 2])
def test_bulk_path(server, workers, processes):
    messages = [
        EmailMessage(f"s{n}", "b", None, ["a@customer.test"]) for n in range(40)
    ]
    with mailer_for(server, defaults=DEFAULTS):
        result = send_bulk(messages, processes=processes, progress=False)
    assert result["sent"] == 40
    assert {m.mail_from for m in server.messages} == {"billing@example.com"}
    assert {m.message()["X-Mailer-Name"] for m in server.messages} == {"billing"}


@pytest.fixture
def immediate_tasks() -> Iterator[None]:
    backend = f"{MODULE}.backends.immediate.ImmediateBackend"
    with override_settings(TASKS={"default": {"BACKEND": backend}}, ADMINS=[]):
        yield


def test_background_path(server, immediate_tasks):
    with mailer_for(server, defaults=DEFAULTS):
        (result,) = send_mail_later("s", "b", None, ["a@customer.test"])
    assert result.status == "SUCCESSFUL", result.errors
    assert server.messages[0].mail_from == "billing@example.com"
