"""The staging allowlist and redirect, through real SMTP deliveries on every path.

What must never happen: a recipient the policy keeps back named in an SMTP
command, or a Bcc revealed in the headers. The tests read the server's record
of every command, not the client's idea of what it sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from django.core.mail import EmailMessage
from django.test import override_settings

import hypermail_django
from hypermail_django.backends import MemoryBackend
from hypermail_django.background import enqueue_messages
from hypermail_django.background.framework import MODULE
from hypermail_django.bulk import asend_bulk, send_bulk
from hypermail_django.checks import check_staging_policies
from hypermail_django.exceptions import ConfigurationError, RecipientsRefused
from hypermail_django.testing import SMTPTestServer

from ..conftest import mailer_for

CUSTOMERS = ("alice@customer.test", "bob@customer.test", "carol@customer.test")
STAFF = ("qa@example.com", "dev+1@example.com")


def _message(**kwargs: Any) -> EmailMessage:
    fields = {
        "subject": "Your invoice",
        "body": "Attached.",
        "from_email": "billing@example.com",
        "to": ["Alice <alice@customer.test>", "qa@example.com"],
        "cc": ["bob@customer.test"],
        "bcc": ["carol@customer.test", "dev+1@example.com"],
        **kwargs,
    }
    return EmailMessage(**fields)


def _named(server: SMTPTestServer) -> str:
    """Every argument of every SMTP command the server received, lowercased."""
    return " ".join(c.argument.lower() for c in server.commands)


def _assert_no_customer_on_the_wire(server: SMTPTestServer) -> None:
    named = _named(server)
    for customer in CUSTOMERS:
        assert customer not in named
    for received in server.messages:  # carol is a Bcc: in no header at all
        assert b"carol@customer.test" not in received.data


ALLOW = {"allowed_recipients": ["@example.com"]}
REDIRECT = {"redirect_to": ["inbox@example.com"]}


# -- the allowlist ------------------------------------------------------------------


def test_only_allowed_recipients_are_sent_to_and_the_rest_are_suppressed(
    make_backend, server
):
    message = _message()
    assert make_backend(**ALLOW).send_messages([message]) == 1
    (received,) = server.messages
    assert received.rcpt_tos == ["qa@example.com", "dev+1@example.com"]
    _assert_no_customer_on_the_wire(server)
    status = message.hypermail_status
    assert status.sent == ["qa@example.com", "dev+1@example.com"]
    assert sorted(status.suppressed) == sorted(CUSTOMERS)
    assert status.recipients["alice@customer.test"].code is None
    assert status.status == "sent"  # everyone who could be sent to was
    headers = received.message()
    # Reply-all from QA's inbox cannot reach the customers: To/Cc are rewritten,
    # the originals travel in X-Original-To / X-Original-Cc; Bcc never appears.
    assert headers["To"] == "qa@example.com"
    assert headers["Cc"] is None
    assert headers["X-Original-To"] == "Alice <alice@customer.test>, qa@example.com"
    assert headers["X-Original-Cc"] == "bob@customer.test"
    assert b"dev+1@example.com" not in received.data


def test_the_callers_message_is_not_changed(make_backend, server):
    message = _message()
    make_backend(**ALLOW).send_messages([message])
    assert message.to == ["Alice <alice@customer.test>", "qa@example.com"]
    assert message.cc == ["bob@customer.test"]
    assert message.bcc == ["carol@customer.test", "dev+1@example.com"]
    assert "X-Original-To" not in message.extra_headers


def test_nobody_allowed_means_nothing_is_sent_at_all(make_backend, server):
    message = _message(to=["alice@customer.test"], cc=[], bcc=[])
    assert make_backend(**ALLOW).send_messages([message]) == 0
    assert server.commands == []  # not even a connection
    assert message.hypermail_status.status == "suppressed"
    assert message.hypermail_status.suppressed == ["alice@customer.test"]


@pytest.mark.parametrize(
    ("pattern", "allowed", "kept_back"),
    [
        ("qa@example.com", "QA@Example.COM", "qa2@example.com"),
        ("@example.com", "anyone@EXAMPLE.com", "x@sub.example.com"),
        ("@*.example.com", "x@sub.example.com", "x@example.com"),
        ("*+test@example.com", "ann+test@example.com", "ann@example.com"),
        ("qa?@example.com", "qa1@example.com", "qa10@example.com"),
        ("@bücher.example", "a@xn--bcher-kva.example", "a@buecher.example"),
    ],
)
def test_patterns(make_backend, server, pattern, allowed, kept_back):
    message = EmailMessage("s", "b", "from@example.com", [allowed, kept_back])
    make_backend(allowed_recipients=[pattern]).send_messages([message])
    assert server.messages[0].rcpt_tos == [message.hypermail_status.sent[0]]
    assert message.hypermail_status.suppressed == [kept_back]
    assert kept_back.lower() not in _named(server)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (["example.com"], "no '@'"),
        (["qa@"], "no usable domain"),
        (["a b@example.com"], "not a single address"),
        (["qa@example.com, x@example.com"], None),  # a comma in a list entry
        ([3], "list of strings"),
        ({"@example.com": True}, "list of strings"),
    ],
)
def test_patterns_that_are_not_addresses_or_domains_fail_at_start_up(
    make_backend, value, words
):
    with pytest.raises(ConfigurationError) as caught:
        make_backend(allowed_recipients=value)
    assert caught.value.code == "invalid_recipient_pattern"
    assert "allowed_recipients" in str(caught.value)
    if words:
        assert words in str(caught.value)


def test_a_redirect_address_that_is_not_an_address_fails_at_start_up(make_backend):
    with pytest.raises(ConfigurationError) as caught:
        make_backend(redirect_to=["not an address"])
    assert caught.value.code == "invalid_redirect_to"
    assert "redirect_to" in str(caught.value)


def test_a_comma_separated_string_is_a_list(make_backend, server):
    backend = make_backend(allowed_recipients="qa@example.com, @staff.example.com")
    message = EmailMessage("s", "b", "f@example.com", ["a@staff.example.com", "x@y.z"])
    backend.send_messages([message])
    assert server.messages[0].rcpt_tos == ["a@staff.example.com"]


# -- the redirect --------------------------------------------------------------------


def test_redirect_sends_everything_to_the_redirect_addresses(make_backend, server):
    message = _message()
    make_backend(**REDIRECT).send_messages([message])
    (received,) = server.messages
    assert received.rcpt_tos == ["inbox@example.com"]
    headers = received.message()
    assert headers["To"] == "inbox@example.com"
    assert headers["X-Original-To"] == "Alice <alice@customer.test>, qa@example.com"
    assert headers["X-Original-Cc"] == "bob@customer.test"
    assert b"carol@customer.test" not in received.data
    assert b"dev+1@example.com" not in received.data  # a Bcc, even an internal one
    assert message.hypermail_status.sent == ["inbox@example.com"]
    assert len(message.hypermail_status.suppressed) == 5
    _assert_no_customer_on_the_wire(server)


def test_allowed_recipients_stay_and_the_rest_are_redirected(make_backend, server):
    message = _message()
    make_backend(**ALLOW, **REDIRECT).send_messages([message])
    (received,) = server.messages
    assert received.rcpt_tos == [
        "qa@example.com",
        "inbox@example.com",
        "dev+1@example.com",
    ]
    assert received.message()["To"] == "qa@example.com, inbox@example.com"
    _assert_no_customer_on_the_wire(server)


def test_a_message_without_suppressed_recipients_is_untouched(make_backend, server):
    message = EmailMessage("s", "b", "f@example.com", ["qa@example.com"])
    make_backend(**ALLOW, **REDIRECT).send_messages([message])
    (received,) = server.messages
    assert received.rcpt_tos == ["qa@example.com"]
    assert received.message()["X-Original-To"] is None


def test_a_to_header_override_cannot_name_a_suppressed_recipient(make_backend, server):
    message = _message(headers={"To": "Customers <alice@customer.test>"})
    make_backend(**REDIRECT).send_messages([message])
    assert (
        b"alice@customer.test>\r\n"
        not in server.messages[0].data.split(b"X-Original-To")[0]
    )
    assert server.messages[0].message()["To"] == "inbox@example.com"


# -- every sending path ---------------------------------------------------------------


def test_through_send_mail_and_the_mailers_settings(server):
    with mailer_for(server, allowed_recipients=["@example.com"]):
        sent = mail.send_mail(
            "s", "b", "f@example.com", ["qa@example.com", "alice@customer.test"]
        )
    assert sent == 1
    assert server.messages[0].rcpt_tos == ["qa@example.com"]
    _assert_no_customer_on_the_wire(server)


@pytest.mark.asyncio
async def test_async_path(server, close_async_pools):
    with mailer_for(server, allowed_recipients=["@example.com"], **REDIRECT):
        message = _message()
        assert await hypermail_django.asend_messages([message]) == 1
        sent = await hypermail_django.asend_mail(
            "s", "b", "f@example.com", ["alice@customer.test"]
        )
    assert sent == 1
    assert message.hypermail_status.sent == [
        "qa@example.com",
        "inbox@example.com",
        "dev+1@example.com",
    ]
    assert len(message.hypermail_status.suppressed) == 3
    assert [m.rcpt_tos for m in server.messages][1] == ["inbox@example.com"]
    _assert_no_customer_on_the_wire(server)


@pytest.fixture
def workers(monkeypatch):
    """Serialize in worker processes (see tests/bulk/test_bulk.py): the policy
    travels to them with each chunk, so settings overrides need not."""
    from hypermail_django.bulk import preparation

    monkeypatch.setattr(preparation, "_settings_module", lambda: "tests.settings")


def _bulk(n: int) -> Iterator[EmailMessage]:
    for i in range(n):
        yield EmailMessage(
            f"Digest {i}",
            "news",
            "news@example.com",
            [f"user{i}@customer.test", f"qa{i}@example.com"],
            bcc=[f"audit{i}@customer.test"],
        )


@pytest.mark.parametrize("processes", [0, 2])
def test_bulk_path(server, workers, processes):
    messages = list(_bulk(40))
    with mailer_for(server, **ALLOW):
        result = send_bulk(messages, processes=processes, progress=False)
    assert result["sent"] == 40
    assert result["failed"] == 0
    assert result["suppressed"] == 80  # user{i} and audit{i} of each message
    assert sorted(r for m in server.messages for r in m.rcpt_tos) == sorted(
        f"qa{i}@example.com" for i in range(40)
    )
    assert "customer.test" not in _named(server)
    assert all(
        m.hypermail_status.suppressed
        == [f"user{i}@customer.test", f"audit{i}@customer.test"]
        for i, m in enumerate(messages)
    )


@pytest.mark.parametrize("processes", [0, 2])
def test_bulk_path_with_nobody_allowed_skips(server, workers, processes):
    messages = [
        EmailMessage("s", "b", "f@example.com", ["a@customer.test"]) for _ in range(3)
    ]
    with mailer_for(server, **ALLOW):
        result = send_bulk(messages, processes=processes, progress=False)
    assert (result["sent"], result["skipped"], result["suppressed"]) == (0, 3, 3)
    assert server.commands == []
    assert {m.hypermail_status.status for m in messages} == {"suppressed"}


@pytest.mark.asyncio
async def test_async_bulk_path(server, close_async_pools):
    messages = list(_bulk(10))
    with mailer_for(server, **REDIRECT):
        result = await asend_bulk(messages, processes=0, progress=False)
    # Redirected: each original recipient (3 a message) is kept from the server.
    assert (result["sent"], result["suppressed"]) == (10, 30)
    assert {tuple(m.rcpt_tos) for m in server.messages} == {("inbox@example.com",)}
    assert "customer.test" not in _named(server)


@pytest.fixture
def immediate_tasks() -> Iterator[None]:
    backend = f"{MODULE}.backends.immediate.ImmediateBackend"
    with override_settings(TASKS={"default": {"BACKEND": backend}}, ADMINS=[]):
        yield


def test_background_path(server, immediate_tasks):
    with mailer_for(server, **ALLOW):
        (result,) = enqueue_messages([_message()])
        nothing = enqueue_messages(
            [EmailMessage("s", "b", "f@example.com", ["a@customer.test"])]
        )
    assert result.status == "SUCCESSFUL", result.errors
    assert list(nothing) == []
    (received,) = server.messages
    assert received.rcpt_tos == ["qa@example.com", "dev+1@example.com"]
    assert sorted(result.return_value["suppressed"]) == sorted(CUSTOMERS)
    _assert_no_customer_on_the_wire(server)


def test_memory_backend_shows_what_production_sends():
    backend = MemoryBackend(**ALLOW, **REDIRECT)
    message = _message()
    backend.send_messages([message])
    assert message.hypermail_status.sent == [
        "qa@example.com",
        "inbox@example.com",
        "dev+1@example.com",
    ]
    assert len(message.hypermail_status.suppressed) == 3
    assert message.hypermail_status.status == "sent"


# -- check --deploy ----------------------------------------------------------


def _ids(**settings: Any) -> list[str]:
    with override_settings(**settings):
        return [m.id for m in check_staging_policies(None)]


def test_deploy_checks(server):
    with mailer_for(server, **ALLOW):
        assert _ids(DEBUG=False) == ["hypermail.W031"]
        assert _ids(DEBUG=True) == []
        assert _ids(DEBUG=False, HYPERMAIL_ENVIRONMENT="staging") == []
    with mailer_for(server):
        assert _ids(DEBUG=False, HYPERMAIL_ENVIRONMENT="staging") == ["hypermail.W032"]
        assert _ids(DEBUG=False) == []
        assert _ids(DEBUG=False, HYPERMAIL_ENVIRONMENT="production") == []


def test_the_policy_is_hashable_data_for_bulk_workers():
    from hypermail_django.outbound import OutboundPolicy

    policy = MemoryBackend(**ALLOW).outbound_policy
    assert {policy: 1}[MemoryBackend(**ALLOW).outbound_policy] == 1
    assert policy and not OutboundPolicy()


def test_from_the_environment(server):
    from hypermail_django.conf.env import options_from_env

    options = options_from_env(
        {
            "FLUXMAIL_ALLOWED_RECIPIENTS": "@example.com, boss@customer.test",
            "FLUXMAIL_REDIRECT_TO": "inbox@example.com",
        }
    )
    with mailer_for(server, **options):
        mail.send_mail("s", "b", "f@example.com", [*CUSTOMERS, "boss@customer.test"])
    assert server.messages[0].rcpt_tos == ["boss@customer.test", "inbox@example.com"]
    with pytest.raises(ConfigurationError) as caught:
        options_from_env({"FLUXMAIL_ALLOWED_RECIPIENTS": "example.com"})
    assert "FLUXMAIL_ALLOWED_RECIPIENTS" in str(caught.value)


@pytest.mark.parametrize("processes", [0, 2])
def test_bulk_failures_still_list_the_suppressed(server, workers, processes):
    server.fail("RCPT", "550 5.1.1 No such user")
    messages = list(_bulk(3))
    with mailer_for(server, **ALLOW):
        result = send_bulk(messages, processes=processes, progress=False)
    assert (result["failed"], result["suppressed"]) == (3, 6)
    for i, m in enumerate(messages):
        assert m.hypermail_status.refused == [f"qa{i}@example.com"]
        assert m.hypermail_status.suppressed == [
            f"user{i}@customer.test",
            f"audit{i}@customer.test",
        ]
    assert "customer.test" not in _named(server)


def test_a_refusal_still_lists_the_suppressed(make_backend, server):
    server.fail("RCPT", "550 5.1.1 No such user")
    message = _message()
    with pytest.raises(RecipientsRefused):
        make_backend(**ALLOW).send_messages([message])
    assert message.hypermail_status.status == "failed"
    assert sorted(message.hypermail_status.suppressed) == sorted(CUSTOMERS)


def test_status_names_suppressed_recipients_as_the_envelope_would(make_backend, server):
    message = EmailMessage(
        "s", "b", "f@example.com", ["Zoë <zoe@bücher.example>", "qa@example.com"]
    )
    make_backend(**ALLOW).send_messages([message])
    assert message.hypermail_status.suppressed == ["zoe@xn--bcher-kva.example"]
