"""Retries: transient failures retried with backoff, permanent ones never."""

from __future__ import annotations

import smtplib
import socket

import pytest
from django.core.mail import EmailMessage

from hypermail_django.exceptions import (
    ConnectionFailed,
    DataRefused,
    DeliveryUncertain,
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


def _one_write(server: SMTPTestServer) -> bool:
    """Whether the content rides in the first write (PIPELINING + CHUNKING):
    then every reply comes after the whole content was sent."""
    return server.pipelining and server.chunking


def test_only_deferred_recipients_are_retried(driver, server, make_backend, waits):
    server.fail("RCPT", "451 4.3.0 Try again later", times=1, match="b@example.com")
    message = _message("a@example.com", "b@example.com")
    assert driver.send(make_backend(max_retries=2), [message]) == 1
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
    driver, server, make_backend, verb, reply
):
    server.fail(verb, reply, times=1)
    message = _message()
    assert driver.send(make_backend(max_retries=1), [message]) == 1
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
    driver, server, make_backend, waits, verb, reply, error, code
):
    server.fail(verb, reply)
    message = _message()
    with pytest.raises(error) as caught:
        driver.send(make_backend(max_retries=3), [message])
    assert caught.value.code == code
    assert caught.value.transient is False
    assert isinstance(caught.value, smtplib.SMTPException)
    assert _count(server, "MAIL") == 1
    assert waits == []
    assert message.hypermail_status.attempts == 1


def test_no_retries_by_default(driver, server, make_backend, waits):
    server.fail("RCPT", "451 4.3.0 Try again later", times=1)
    message = _message()
    with pytest.raises(RecipientsRefused) as caught:
        driver.send(make_backend(), [message])
    assert caught.value.code == "recipients_deferred"
    assert caught.value.transient is True
    assert message.hypermail_status.deferred == ["a@example.com"]
    assert _count(server, "MAIL") == 1
    assert waits == []


def test_retries_stop_after_max_retries(driver, server, make_backend, waits):
    server.fail("MAIL", "451 4.3.0 Try again later")
    with pytest.raises(SenderRefused) as caught:
        driver.send(make_backend(max_retries=2), [_message()])
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


def test_backoff_is_capped_by_retry_max_delay(driver, server, make_backend, waits):
    server.fail("MAIL", "451 4.3.0 Try again later")
    with pytest.raises(SenderRefused):
        driver.send(
            make_backend(max_retries=4, retry_delay=1.0, retry_max_delay=2.0),
            [_message()],
        )
    assert max(waits) <= 2.0 + 1.0


@pytest.mark.parametrize("step", ["MAIL", "RCPT"])
def test_connection_dropped_before_the_content_is_retried(
    driver, server, make_backend, step
):
    """Nothing of the message can have been queued: another attempt is safe.
    In the one-write dialogue the content went out with MAIL: a drop before
    any reply is still a connection closed before it processed anything, a
    drop after MAIL's reply is ``uncertain``."""
    server.drop(step, times=1)
    message = _message()
    backend = make_backend(max_retries=1)
    if _one_write(server) and step == "RCPT":
        with pytest.raises(DeliveryUncertain):
            driver.send(backend, [message])
        assert server.messages == []
        assert message.hypermail_status.attempts == 1
        return
    assert driver.send(backend, [message]) == 1
    assert len(server.messages) == 1
    assert message.hypermail_status.attempts == 2


def test_connection_dropped_after_the_content_is_uncertain_and_not_retried(
    driver, server, make_backend, waits
):
    """The server may have queued it before closing: a retry could be a
    second copy, so by default the outcome is ``uncertain`` and nothing more
    is sent."""
    server.drop("DATA_END", times=1)
    message = _message()
    with pytest.raises(DeliveryUncertain) as caught:
        driver.send(make_backend(max_retries=3), [message])
    assert caught.value.code == "delivery_uncertain"
    assert isinstance(caught.value, smtplib.SMTPServerDisconnected)
    assert caught.value.transient is False
    status = message.hypermail_status
    assert status.uncertain == ["a@example.com"]
    assert status.attempts == 1
    assert waits == []
    assert _count(server, "BDAT" if server.chunking else "DATA") == 1


def test_retry_uncertain_sends_again_after_a_drop_after_the_content(
    driver, server, make_backend
):
    server.drop("DATA_END", times=1)
    message = _message()
    backend = make_backend(max_retries=1, retry_uncertain=True)
    assert driver.send(backend, [message]) == 1
    assert len(server.messages) == 1  # The dropped one was never recorded.
    assert message.hypermail_status.attempts == 2
    assert message.hypermail_status.sent == ["a@example.com"]


def test_no_reply_to_the_content_within_data_timeout_is_uncertain(
    driver, server, make_backend
):
    server.hang("DATA_END", times=1)
    message = _message()
    with pytest.raises(DeliveryUncertain) as caught:
        driver.send(make_backend(data_timeout=0.5, max_retries=2), [message])
    assert "did not answer within 0.5 s" in str(caught.value)
    assert message.hypermail_status.uncertain == ["a@example.com"]
    assert message.hypermail_status.attempts == 1


def test_hung_server_before_the_content_times_out_and_is_retried(
    driver, server, make_backend
):
    """Before the content went out a timeout is safe to retry; in the
    one-write dialogue the content is already out, so it is ``uncertain``."""
    server.hang("RCPT", times=1)
    message = _message()
    backend = make_backend(timeout=0.5, data_timeout=0.5, max_retries=1)
    if _one_write(server):
        with pytest.raises(DeliveryUncertain):
            driver.send(backend, [message])
        assert message.hypermail_status.uncertain == ["a@example.com"]
        assert server.messages == []
    else:
        assert driver.send(backend, [message]) == 1
        assert len(server.messages) == 1
    assert message.hypermail_status.attempts == 1 + (not _one_write(server))


def test_timeout_names_the_reply_it_waited_for(driver, server, make_backend):
    server.hang("RCPT", times=1)
    with pytest.raises(
        TimeoutError if not _one_write(server) else DeliveryUncertain
    ) as caught:
        driver.send(make_backend(timeout=0.5, data_timeout=0.5), [_message()])
    # Pipelined, MAIL's reply is read first, and it comes: RCPT's does not.
    assert "did not answer within 0.5 s (waiting for the reply to RCPT TO)" in str(
        caught.value
    )
    assert caught.value.code == (
        "delivery_uncertain" if _one_write(server) else "timeout"
    )


def test_421_at_rcpt_defers_the_rest_and_retries_on_a_new_connection(
    driver, server, make_backend
):
    server.fail("RCPT", "421 4.3.2 Shutting down", times=1, match="b@example.com")
    message = _message("a@example.com", "b@example.com", "c@example.com")
    assert driver.send(make_backend(max_retries=1), [message]) == 1
    delivered = sorted(r for m in server.messages for r in m.rcpt_tos)
    assert delivered == ["a@example.com", "b@example.com", "c@example.com"]
    assert message.hypermail_status.status == "sent"
    assert server.sessions == 2


def test_421_at_rcpt_then_hanging_up_delivers_each_recipient_once(
    driver, server, make_backend
):
    """A server that means its 421 closes the connection: with the message
    already sent behind the RCPTs (pipelining and chunking), nothing of this
    attempt was accepted, and everyone is tried again."""
    server.fail("RCPT", "421 4.3.2 Shutting down", times=1, match="b@example.com")
    server.drop("RCPT", times=1, match="c@example.com")
    message = _message("a@example.com", "b@example.com", "c@example.com")
    assert driver.send(make_backend(max_retries=2), [message]) == 1
    delivered = sorted(r for m in server.messages for r in m.rcpt_tos)
    assert delivered == ["a@example.com", "b@example.com", "c@example.com"]
    assert message.hypermail_status.status == "sent"


def test_error_greeting_is_an_smtp_connect_error(driver, server, make_backend):
    server.fail("CONNECT", "554 5.3.2 Not accepting mail")
    with pytest.raises(smtplib.SMTPConnectError) as caught:
        driver.send(make_backend(), [_message()])
    assert (caught.value.code, caught.value.smtp_code) == ("connection_failed", 554)
    assert caught.value.transient is False


def test_silent_server_is_a_timeout(driver, server, make_backend):
    server.hang("CONNECT")  # accepts the connection, never greets
    with pytest.raises(TimeoutError) as caught:  # what Django's backend raises
        driver.send(make_backend(timeout=0.5), [_message()])
    assert caught.value.code == "timeout"
    assert caught.value.transient is True
