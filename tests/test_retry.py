"""Retries: transient failures retried with backoff, permanent ones never."""

from __future__ import annotations

import smtplib
import socket

import pytest
from django.core.mail import EmailMessage

from hypermail_django.exceptions import (
    ConnectionFailed,
    ConnectionLost,
    DataRefused,
    RecipientsRefused,
    SenderRefused,
)
from hypermail_django.testing import SMTPTestServer


@pytest.fixture
def server(either_dialogue_server):
    """Every test here runs against a server without and with PIPELINING."""
    return either_dialogue_server


def _message(*to: str) -> EmailMessage:
    return EmailMessage(
        "Subject", "Body", "from@example.com", list(to or ["a@example.com"])
    )


def _count(server: SMTPTestServer, verb: str) -> int:
    return sum(1 for _, seen, _ in server.commands if seen == verb)


def test_only_deferred_recipients_are_retried(server, make_backend, waits):
    server.fail("RCPT", "451 4.3.0 Try again later", times=1, match="b@example.com")
    message = _message("a@example.com", "b@example.com")
    assert make_backend(max_retries=2).send_messages([message]) == 1
    assert [m.rcpt_tos for m in server.messages] == [
        ["a@example.com"],
        ["b@example.com"],
    ]
    status = message.hypermail_status
    assert status.attempts == 2
    assert status.status == "sent"
    assert len(waits) == 1


@pytest.mark.parametrize(
    ("verb", "reply"),
    [
        ("MAIL", "451 4.3.0 Try again later"),
        ("DATA", "452 4.3.1 Insufficient storage"),
        ("DATA_END", "451 4.3.0 Error after data"),
    ],
)
def test_transient_reply_is_retried_and_delivered_once(
    server, make_backend, verb, reply
):
    server.fail(verb, reply, times=1)
    message = _message()
    assert make_backend(max_retries=1).send_messages([message]) == 1
    assert len(server.messages) == 1
    assert message.hypermail_status.attempts == 2


@pytest.mark.parametrize(
    ("verb", "reply", "error", "code"),
    [
        ("MAIL", "550 5.7.1 Sender rejected", SenderRefused, "sender_refused"),
        ("RCPT", "550 5.1.1 No such user", RecipientsRefused, "recipients_refused"),
        ("DATA_END", "554 5.6.0 Message rejected", DataRefused, "data_refused"),
    ],
)
def test_permanent_reply_is_never_retried(
    server, make_backend, waits, verb, reply, error, code
):
    server.fail(verb, reply)
    message = _message()
    with pytest.raises(error) as caught:
        make_backend(max_retries=3).send_messages([message])
    assert caught.value.code == code
    assert caught.value.transient is False
    assert isinstance(caught.value, smtplib.SMTPException)
    assert _count(server, "MAIL") == 1
    assert waits == []
    assert message.hypermail_status.attempts == 1


def test_no_retries_by_default(server, make_backend, waits):
    server.fail("RCPT", "451 4.3.0 Try again later", times=1)
    message = _message()
    with pytest.raises(RecipientsRefused) as caught:
        make_backend().send_messages([message])
    assert caught.value.code == "recipients_deferred"
    assert caught.value.transient is True
    assert message.hypermail_status.deferred == ["a@example.com"]
    assert _count(server, "MAIL") == 1
    assert waits == []


def test_retries_stop_after_max_retries(server, make_backend, waits):
    server.fail("MAIL", "451 4.3.0 Try again later")
    with pytest.raises(SenderRefused) as caught:
        make_backend(max_retries=2).send_messages([_message()])
    assert caught.value.smtp_code == 451
    assert _count(server, "MAIL") == 3
    assert len(waits) == 2


def test_backoff_is_exponential_with_jitter_from_retry_delay(make_backend, waits):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once closed
    backend = make_backend(
        port=port, max_retries=3, retry_delay=0.5, retry_max_delay=60
    )
    with pytest.raises(ConnectionFailed) as caught:
        backend.send_messages([_message()])
    assert caught.value.code == "connection_failed"
    assert len(waits) == 3
    for n, wait in enumerate(waits):
        base = 0.5 * 2**n
        assert base <= wait <= base + 0.5


def test_backoff_is_capped_by_retry_max_delay(server, make_backend, waits):
    server.fail("MAIL", "451 4.3.0 Try again later")
    with pytest.raises(SenderRefused):
        make_backend(max_retries=4, retry_delay=1.0, retry_max_delay=2.0).send_messages(
            [_message()]
        )
    assert max(waits) <= 2.0 + 1.0


def test_connection_dropped_during_data_is_retried(server, make_backend):
    server.drop("DATA_END", times=1)
    message = _message()
    assert make_backend(max_retries=1).send_messages([message]) == 1
    assert len(server.messages) == 1
    assert message.hypermail_status.attempts == 2


def test_connection_dropped_without_retries_raises_connection_lost(
    server, make_backend
):
    server.drop("DATA_END", times=1)
    with pytest.raises(ConnectionLost) as caught:
        make_backend().send_messages([_message()])
    assert caught.value.code == "connection_lost"
    assert isinstance(caught.value, smtplib.SMTPServerDisconnected)


def test_hung_server_times_out_and_is_retried(server, make_backend):
    server.hang("DATA_END", times=1)
    message = _message()
    assert make_backend(timeout=0.5, max_retries=1).send_messages([message]) == 1
    assert len(server.messages) == 1
    assert message.hypermail_status.attempts == 2


def test_421_at_rcpt_defers_the_rest_and_retries_on_a_new_connection(
    server, make_backend
):
    server.fail("RCPT", "421 4.3.2 Shutting down", times=1, match="b@example.com")
    message = _message("a@example.com", "b@example.com", "c@example.com")
    assert make_backend(max_retries=1).send_messages([message]) == 1
    delivered = sorted(r for m in server.messages for r in m.rcpt_tos)
    assert delivered == ["a@example.com", "b@example.com", "c@example.com"]
    assert message.hypermail_status.status == "sent"
    assert server.sessions == 2


def test_421_at_rcpt_then_hanging_up_delivers_each_recipient_once(server, make_backend):
    """A server that means its 421 closes the connection: with the message
    already sent behind the RCPTs (pipelining and chunking), nothing of this
    attempt was accepted, and everyone is tried again."""
    server.fail("RCPT", "421 4.3.2 Shutting down", times=1, match="b@example.com")
    server.drop("RCPT", times=1, match="c@example.com")
    message = _message("a@example.com", "b@example.com", "c@example.com")
    assert make_backend(max_retries=2).send_messages([message]) == 1
    delivered = sorted(r for m in server.messages for r in m.rcpt_tos)
    assert delivered == ["a@example.com", "b@example.com", "c@example.com"]
    assert message.hypermail_status.status == "sent"


@pytest.mark.parametrize("is_async", [False, True])
def test_error_greeting_is_an_smtp_connect_error(server, make_backend, is_async):
    import asyncio

    server.fail("CONNECT", "554 5.3.2 Not accepting mail")
    backend = make_backend()
    send = (
        (lambda: asyncio.run(backend.asend_messages([_message()])))
        if is_async
        else (lambda: backend.send_messages([_message()]))
    )
    with pytest.raises(smtplib.SMTPConnectError) as caught:
        send()
    assert (caught.value.code, caught.value.smtp_code) == ("connection_failed", 554)
    assert caught.value.transient is False


@pytest.mark.parametrize("is_async", [False, True])
def test_silent_server_is_a_timeout(server, make_backend, is_async):
    import asyncio

    server.hang("CONNECT")  # accepts the connection, never greets
    backend = make_backend(timeout=0.5)
    send = (
        (lambda: asyncio.run(backend.asend_messages([_message()])))
        if is_async
        else (lambda: backend.send_messages([_message()]))
    )
    with pytest.raises(TimeoutError) as caught:  # what Django's backend raises
        send()
    assert caught.value.code == "timeout"
    assert caught.value.transient is True
