"""Async sending: asend_mail, asend_messages and FluxMailBackend.asend_messages on
aiosmtplib, with the sync path's envelope rules, retries, status and signals."""

from __future__ import annotations

import asyncio

import pytest
from django.core.mail import EmailMessage
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend
from django.test import AsyncClient

from hypermail_django import signals
from hypermail_django.async_mail import asend_mail, asend_messages
from hypermail_django.exceptions import (
    DataRefused,
    RecipientsRefused,
    TLSFailed,
)
from hypermail_django.testing import SMTPTestServer
from hypermail_django.transport.async_pool import aclose_async_pools

from ..conftest import PASSWORD

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("close_async_pools")]


def _message(*to: str, subject: str = "Async") -> EmailMessage:
    return EmailMessage(
        subject, "Body", "from@example.com", list(to or ["a@example.com"])
    )


async def test_asend_mail_through_the_configured_mailer(use_server):
    assert (
        await asend_mail("Hello", "Body", "from@example.com", ["to@example.com"]) == 1
    )
    (received,) = use_server.wait_for_messages(1)
    assert received.mail_from == "from@example.com"
    assert received.message()["Subject"] == "Hello"
    await aclose_async_pools()


async def test_bcc_status_and_signals_match_the_sync_path(server, make_backend):
    seen = []

    async def on_post_send(sender, message, status, **kwargs):
        seen.append(status)

    signals.post_send.connect(on_post_send)
    try:
        message = EmailMessage(
            "Async",
            "Body",
            "from@example.com",
            ["to@example.com"],
            bcc=["hidden@example.com"],
        )
        assert await make_backend().asend_messages([message]) == 1
    finally:
        signals.post_send.disconnect(on_post_send)
        await aclose_async_pools()
    (received,) = server.messages
    assert received.rcpt_tos == ["to@example.com", "hidden@example.com"]
    assert "Bcc" not in received.message()
    status = message.hypermail_status
    assert status.message_id == received.message()["Message-ID"]
    assert status.sent == ["to@example.com", "hidden@example.com"]
    assert seen == [status]


async def test_connections_are_pooled_within_the_loop(server, make_backend):
    for n in range(5):
        await make_backend().asend_messages([_message(subject=f"n{n}")])
    assert len(server.messages) == 5
    assert server.sessions == 1
    await aclose_async_pools()
    assert server.commands[-1][1] == "QUIT"


async def test_concurrent_sends_never_share_a_connection(server, make_backend):
    backend = make_backend()
    results = await asyncio.gather(
        *(backend.asend_messages([_message(f"r{n}@example.com")]) for n in range(10))
    )
    await aclose_async_pools()
    assert results == [1] * 10
    assert len(server.messages) == 10
    by_session: dict[int, list[str]] = {}
    for session, verb, _ in server.commands:
        by_session.setdefault(session, []).append(verb)
    for verbs in by_session.values():
        flow = [v for v in verbs if v in {"MAIL", "RCPT", "DATA"}]
        assert flow == ["MAIL", "RCPT", "DATA"] * (len(flow) // 3)


async def test_only_deferred_recipients_are_retried(server, make_backend, waits):
    server.fail("RCPT", "451 4.3.0 Try again later", times=1, match="b@example.com")
    message = _message("a@example.com", "b@example.com")
    assert await make_backend(max_retries=2).asend_messages([message]) == 1
    await aclose_async_pools()
    assert [m.rcpt_tos for m in server.messages] == [
        ["a@example.com"],
        ["b@example.com"],
    ]
    assert message.hypermail_status.attempts == 2
    assert len(waits) == 1
    assert 0.5 <= waits[0] <= 1.0  # retry_delay 0.5 plus up to 0.5 of jitter


async def test_permanent_refusal_is_not_retried_and_raises(server, make_backend, waits):
    server.fail("RCPT", "550 5.1.1 No such user")
    message = _message()
    with pytest.raises(RecipientsRefused) as caught:
        await make_backend(max_retries=3).asend_messages([message])
    await aclose_async_pools()
    assert caught.value.code == "recipients_refused"
    assert waits == []
    assert message.hypermail_status.status == "failed"


async def test_data_refusal_and_fail_silently(server, make_backend):
    server.fail("DATA_END", "554 5.6.0 Rejected", times=1)
    with pytest.raises(DataRefused):
        await make_backend().asend_messages([_message()])
    server.fail("DATA_END", "554 5.6.0 Rejected", times=1)
    assert await make_backend(fail_silently=True).asend_messages([_message()]) == 0
    await aclose_async_pools()


async def test_starttls_and_auth(trust_ca, tls_server, make_backend):
    backend = make_backend(
        tls_server, use_tls=True, username="mailer", password=PASSWORD
    )
    assert await backend.asend_messages([_message()]) == 1
    await aclose_async_pools()
    (received,) = tls_server.messages
    assert received.tls is True
    assert received.authenticated_as == "mailer"


async def test_no_starttls_on_the_server_means_no_auth_and_nothing_sent(make_backend):
    with SMTPTestServer(auth={"mailer": PASSWORD}, auth_require_tls=False) as plain:
        backend = make_backend(
            plain, use_tls=True, username="mailer", password=PASSWORD
        )
        with pytest.raises(TLSFailed) as caught:
            await backend.asend_messages([_message()])
        assert caught.value.code == "tls_unavailable"
        assert "AUTH" not in [verb for _, verb, _ in plain.commands]
        assert plain.messages == []


async def test_untrusted_certificate_is_refused(
    tls_server, make_backend, monkeypatch, tmp_path
):
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    backend = make_backend(
        tls_server, use_tls=True, username="mailer", password=PASSWORD
    )
    with pytest.raises(TLSFailed) as caught:
        await backend.asend_messages([_message()])
    assert caught.value.code == "tls_failed"
    assert "AUTH" not in [verb for _, verb, _ in tls_server.commands]


async def test_other_backends_are_run_in_a_thread():
    from django.core import mail

    mail.outbox = []
    assert await asend_messages([_message()], connection=LocmemBackend()) == 1
    assert len(mail.outbox) == 1


async def test_async_view_under_asgi_sends_mail(use_server):
    response = await AsyncClient().get("/notify/", {"to": "user@example.com"})
    assert response.status_code == 200
    assert response.json() == {"sent": 1}
    (received,) = use_server.wait_for_messages(1)
    assert received.rcpt_tos == ["user@example.com"]
