"""Outcome on the message (``hypermail_status``), signals, fail_silently, logs."""

from __future__ import annotations

import logging
import smtplib

import pytest
from django.core.mail import EmailMessage

from hypermail_django import signals
from hypermail_django.exceptions import CancelSend, RecipientsRefused


@pytest.fixture
def server(either_dialogue_server):
    """Every test here runs against a server without and with PIPELINING."""
    return either_dialogue_server


def _message(*to: str) -> EmailMessage:
    return EmailMessage("Subject", "Body", "from@example.com", list(to))


@pytest.fixture
def received_signals():
    seen: list[tuple[str, dict]] = []

    def receiver(name):
        def record(sender, **kwargs):
            seen.append((name, kwargs))

        return record

    handlers = {
        name: receiver(name) for name in ("pre_send", "post_send", "send_failed")
    }
    for name, handler in handlers.items():
        getattr(signals, name).connect(handler)
    yield seen
    for name, handler in handlers.items():
        getattr(signals, name).disconnect(handler)


def test_status_records_message_id_attempts_and_each_recipient(
    driver, server, make_backend
):
    message = _message("a@example.com", "b@example.com")
    driver.send(make_backend(), [message])
    status = message.hypermail_status
    (received,) = server.messages
    assert status.message_id == received.message()["Message-ID"]
    assert status.attempts == 1
    assert status.status == "sent"
    assert set(status.recipients) == {"a@example.com", "b@example.com"}
    for rs in status.recipients.values():
        assert (rs.status, rs.code) == ("sent", 250)


def test_partly_refused_message_counts_as_sent_and_records_the_refusal(
    driver, server, make_backend, received_signals, caplog
):
    server.fail("RCPT", "550 5.1.1 No such user", match="ghost@example.com")
    message = _message("a@example.com", "ghost@example.com")
    with caplog.at_level(logging.WARNING, logger="hypermail_django"):
        assert driver.send(make_backend(), [message]) == 1
    status = message.hypermail_status
    assert status.status == "partial"
    assert status.sent == ["a@example.com"]
    assert status.refused == ["ghost@example.com"]
    refused = status.recipients["ghost@example.com"]
    assert (refused.code, refused.reply) == (550, "5.1.1 No such user")
    assert server.messages[0].rcpt_tos == ["a@example.com"]
    assert any("ghost@example.com" in r.getMessage() for r in caplog.records)
    (post,) = [kwargs for name, kwargs in received_signals if name == "post_send"]
    assert post["message"] is message
    assert post["status"] is status


def test_every_recipient_refused_raises_and_signals(
    driver, server, make_backend, received_signals
):
    server.fail("RCPT", "550 5.1.1 No such user")
    message = _message("a@example.com", "b@example.com")
    with pytest.raises(RecipientsRefused) as caught:
        driver.send(make_backend(), [message])
    error = caught.value
    assert error.code == "recipients_refused"
    assert isinstance(error, smtplib.SMTPRecipientsRefused)
    assert error.recipients["a@example.com"][0] == 550
    assert message.hypermail_status.status == "failed"
    assert error.status is message.hypermail_status
    (failed,) = [kwargs for name, kwargs in received_signals if name == "send_failed"]
    assert failed["error"] is error
    assert server.messages == []


def test_fail_silently_returns_zero_instead_of_raising(driver, server, make_backend):
    server.fail("RCPT", "550 5.1.1 No such user", match="ghost")
    messages = [_message("ghost@example.com"), _message("real@example.com")]
    assert driver.send(make_backend(fail_silently=True), messages) == 1
    assert messages[0].hypermail_status.status == "failed"
    assert len(server.messages) == 1


def test_fail_silently_when_the_server_is_down(make_backend, server):
    backend = make_backend(fail_silently=True)
    server.stop()
    assert backend.open() is None
    assert backend.send_messages([_message("a@example.com")]) == 0


def test_pre_send_receiver_can_cancel_a_message(driver, server, make_backend):
    def cancel(sender, message, **kwargs):
        if message.subject == "Skip me":
            raise CancelSend

    signals.pre_send.connect(cancel)
    try:
        skipped = EmailMessage("Skip me", "Body", "from@example.com", ["a@example.com"])
        kept = _message("b@example.com")
        assert driver.send(make_backend(), [skipped, kept]) == 1
    finally:
        signals.pre_send.disconnect(cancel)
    assert skipped.hypermail_status.status == "cancelled"
    assert [m.rcpt_tos for m in server.messages] == [["b@example.com"]]


def test_pre_send_receiver_can_change_the_message(driver, server, make_backend):
    def tag(sender, message, **kwargs):
        message.extra_headers["X-Campaign"] = "spring"

    signals.pre_send.connect(tag)
    try:
        driver.send(make_backend(), [_message("a@example.com")])
    finally:
        signals.pre_send.disconnect(tag)
    assert server.messages[0].message()["X-Campaign"] == "spring"


def test_prepare_then_deliver_sends_the_prepared_bytes(server, make_backend):
    backend = make_backend()
    message = _message("a@example.com")
    envelope = backend.prepare(message)
    assert envelope is not None
    assert server.sessions == 0  # preparing talks to nobody
    status = make_backend().deliver(envelope)
    assert status.sent == ["a@example.com"]
    expected = (
        envelope.data if envelope.data.endswith(b"\r\n") else envelope.data + b"\r\n"
    )
    assert server.messages[0].data == expected  # smtplib ends DATA with CRLF


def test_prepare_returns_none_when_there_is_nothing_to_send(make_backend):
    assert make_backend().prepare(EmailMessage("S", "B", "f@example.com", [])) is None
