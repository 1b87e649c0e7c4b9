"""What reaches the server: envelope, headers, BCC, IDNA, SMTPUTF8, Django's APIs."""

from __future__ import annotations

import email
import email.policy
import smtplib

import django
import pytest
from django.core import mail
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.core.management import call_command

from hypermail_django.exceptions import InvalidEmail, SMTPUTF8Unsupported
from hypermail_django.testing import SMTPTestServer

from ..conftest import djangos_bytes, requires_mailers


@pytest.fixture
def server(either_dialogue_server):
    """Every test here runs against a server without and with PIPELINING."""
    return either_dialogue_server


def test_send_mail_is_delivered_through_the_configured_backend(use_server):
    count = mail.send_mail("Hello", "Body text", "from@example.com", ["to@example.com"])
    assert count == 1
    (received,) = use_server.wait_for_messages(1)
    parsed = received.message()
    assert parsed["Subject"] == "Hello"
    assert parsed.get_content().strip() == "Body text"
    assert received.mail_from == "from@example.com"
    assert received.rcpt_tos == ["to@example.com"]


def test_envelope_sender_is_from_email_not_a_from_header_override(
    driver, server, make_backend
):
    message = EmailMessage(
        "Subject",
        "Body",
        "bounces@example.com",
        ["to@example.com"],
        headers={"From": "Support <support@example.com>"},
    )
    assert driver.send(make_backend(), [message]) == 1
    (received,) = server.messages
    assert received.mail_from == "bounces@example.com"
    assert received.message()["From"] == "Support <support@example.com>"


def test_bcc_is_delivered_and_never_written_as_a_header(driver, server, make_backend):
    message = EmailMessage(
        "Subject",
        "Body",
        "from@example.com",
        to=["to@example.com"],
        cc=["cc@example.com"],
        bcc=["hidden@example.com"],
    )
    driver.send(make_backend(), [message])
    (received,) = server.messages
    assert received.rcpt_tos == [
        "to@example.com",
        "cc@example.com",
        "hidden@example.com",
    ]
    assert b"hidden@example.com" not in received.data
    assert "Bcc" not in received.message()
    assert message.hypermail_status.sent == received.rcpt_tos


def test_message_without_recipients_is_skipped_and_not_counted(server, make_backend):
    empty = EmailMessage("Nobody", "Body", "from@example.com", [])
    full = EmailMessage("Somebody", "Body", "from@example.com", ["to@example.com"])
    backend = make_backend()
    assert backend.send_messages([empty]) == 0
    assert server.sessions == 0  # not even a connection for nothing
    assert backend.send_messages([empty, full]) == 1
    assert [m.message()["Subject"] for m in server.messages] == ["Somebody"]


def test_bytes_on_the_wire_are_what_django_builds(driver, server, make_backend):
    message = EmailMultiAlternatives(
        "Ünïcode subject",
        "Plain body ✓",
        "from@example.com",
        ["to@example.com"],
        headers={"X-Tag": "welcome"},
    )
    message.attach_alternative("<p>HTML body ✓</p>", "text/html")
    message.attach("report.csv", "a,b\n1,2\n", "text/csv")
    driver.send(make_backend(), [message])
    (received,) = server.messages
    parsed = received.message()
    assert parsed["Subject"] == "Ünïcode subject"
    assert parsed["X-Tag"] == "welcome"
    assert parsed["Message-ID"] == message.hypermail_status.message_id
    body = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    assert "Plain body ✓" in body
    assert "<p>HTML body ✓</p>" in html
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_filename() == "report.csv"
    assert b"\r\n" in received.data and b"\n" not in received.data.replace(b"\r\n", b"")


def test_idna_domains_are_encoded_on_the_envelope(driver, server, make_backend):
    message = EmailMessage("IDNA", "Body", "from@exämple.com", ["user@bücher.example"])
    driver.send(make_backend(), [message])
    (received,) = server.messages
    assert received.mail_from == "from@xn--exmple-cua.com"
    assert received.rcpt_tos == ["user@xn--bcher-kva.example"]
    assert received.smtputf8 is False


def test_non_ascii_local_part_uses_smtputf8_when_offered(driver, server, make_backend):
    message = EmailMessage("UTF8", "Body", "from@example.com", ["jürgen@example.com"])
    assert driver.send(make_backend(), [message]) == 1
    (received,) = server.messages
    assert received.smtputf8 is True
    assert received.rcpt_tos == ["jürgen@example.com"]
    assert "SMTPUTF8" in [opt.upper() for opt in received.mail_options]


def test_non_ascii_local_part_without_smtputf8_fails_and_sends_nothing(
    driver, make_backend
):
    with SMTPTestServer(smtputf8=False) as plain_server:
        message = EmailMessage(
            "UTF8", "Body", "from@example.com", ["jürgen@example.com"]
        )
        with pytest.raises(SMTPUTF8Unsupported) as caught:
            driver.send(make_backend(plain_server), [message])
        assert caught.value.code == "smtputf8_unsupported"
        assert isinstance(caught.value, smtplib.SMTPException)
        assert plain_server.messages == []


@pytest.mark.parametrize(
    "bad",
    [
        "to@example.com\nBcc: victim@example.com",
        "not an address <",
        "a@example.com, b@example.com",
    ],
)
def test_invalid_address_fails_before_anything_is_sent(
    driver, server, make_backend, bad
):
    good = EmailMessage("Good", "Body", "from@example.com", ["to@example.com"])
    evil = EmailMessage("Evil", "Body", "from@example.com", [bad])
    with pytest.raises(InvalidEmail) as caught:
        driver.send(make_backend(), [good, evil])
    assert caught.value.code == "invalid_email"
    assert isinstance(caught.value, ValueError)  # what Django's backend raises
    assert server.sessions == 0
    assert server.messages == []


def test_send_mass_mail_uses_one_connection(use_server):
    datatuple = [
        (f"Subject {i}", "Body", "from@example.com", [f"to{i}@example.com"])
        for i in range(3)
    ]
    assert mail.send_mass_mail(datatuple) == 3
    assert len(use_server.messages) == 3
    assert use_server.sessions == 1


def test_email_message_send_and_mail_admins(use_server):
    assert (
        EmailMessage("Direct", "Body", "from@example.com", ["to@example.com"]).send()
        == 1
    )
    mail.mail_admins("Alert", "Something happened")
    received = use_server.wait_for_messages(2)
    assert received[1].rcpt_tos == ["admin@example.com"]
    assert received[1].mail_from == "server@example.com"
    assert "Alert" in received[1].message()["Subject"]


def test_sendtestemail_command_goes_through_our_backend(use_server):
    call_command("sendtestemail", "ops@example.com")
    (received,) = use_server.wait_for_messages(1)
    assert received.rcpt_tos == ["ops@example.com"]
    assert received.message()["Subject"].startswith("Test email from")


@requires_mailers
def test_sendtestemail_using_a_named_mailer(server):
    from django.test import override_settings

    from ..conftest import BACKEND

    mailers = {
        "default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
        "ops": {
            "BACKEND": BACKEND,
            "OPTIONS": {"host": server.host, "port": server.port},
        },
    }
    with override_settings(MAILERS=mailers):
        call_command("sendtestemail", "ops@example.com", using="ops")
    (received,) = server.wait_for_messages(1)
    assert received.rcpt_tos == ["ops@example.com"]


def test_bytes_equal_what_djangos_own_backend_sends(driver, server, make_backend):
    headers = {
        "Message-ID": "<fixed@example.com>",
        "Date": "Mon, 1 Jan 2024 00:00:00 -0000",
    }
    message = EmailMessage(
        "Same", "Body ✓", "from@example.com", ["to@example.com"], headers=headers
    )
    driver.send(make_backend(), [message])
    (received,) = server.messages
    # Exactly how django.core.mail.backends.smtp serializes for sendmail().
    if django.VERSION >= (6, 0):
        expected = message.message(policy=email.policy.SMTP).as_bytes()
    else:
        expected = message.message().as_bytes(linesep="\r\n")
    if not expected.endswith(b"\r\n"):
        expected += b"\r\n"  # smtplib ends DATA with CRLF "." CRLF for both
    assert received.data == expected


def test_pipelining_sends_mail_rcpt_and_data_in_one_write(driver, make_backend):
    with SMTPTestServer(pipelining=True) as relay:
        message = EmailMessage(
            "P", "Body", "f@example.com", ["a@example.com", "b@example.com"]
        )
        assert driver.send(make_backend(relay), [message]) == 1
        (received,) = relay.messages
        assert received.rcpt_tos == ["a@example.com", "b@example.com"]
        batches = [chunk for _, chunk in relay.received_chunks if b"MAIL FROM" in chunk]
    assert len(batches) == 1
    assert b"RCPT TO:<a@example.com>" in batches[0]
    assert b"RCPT TO:<b@example.com>" in batches[0]
    assert batches[0].endswith(b"DATA\r\n")


@pytest.mark.parametrize(
    "body",
    [".first line", "a\n.\nb", "..two\n...three", "ends with\n.", "\n.\n.\n", "a.b\n"],
    ids=["first", "lone-dot", "several", "last", "only-dots", "inside"],
)
def test_lines_starting_with_a_dot_arrive_intact(driver, server, make_backend, body):
    """Dot-stuffing (DATA) or none (BDAT): the server sees the very bytes."""
    message = EmailMessage("Dots", body, "f@example.com", ["a@example.com"])
    message.extra_headers["Message-ID"] = "<dots@example.com>"
    message.extra_headers["Date"] = "Sat, 21 Nov 2026 09:00:00 +0000"
    assert driver.send(make_backend(), [message]) == 1
    (received,) = server.messages
    expected = djangos_bytes(message)
    if not expected.endswith(b"\r\n"):
        expected += b"\r\n"  # SMTP ends the message with a line break, as smtplib
    assert received.data == expected


def test_chunking_with_pipelining_sends_the_whole_message_in_one_write(
    driver, make_backend
):
    body = "First line\n.A line starting with a dot is not stuffed in BDAT\n"
    message = EmailMessage(
        "C", body, "f@example.com", ["a@example.com", "b@example.com"]
    )
    with SMTPTestServer(pipelining=True, chunking=True) as relay:
        assert driver.send(make_backend(relay), [message]) == 1
        (received,) = relay.messages
        flights = [chunk for _, chunk in relay.received_chunks if b"MAIL FROM" in chunk]
        verbs = [verb for _, verb, _ in relay.commands]
    assert _text_of(received) == body
    (flight,) = flights
    # Right behind the RCPTs, in the same write; sent as is (no dot-stuffing,
    # no end marker): the size says where it ends.
    chunk = b"BDAT %d LAST\r\n" % len(received.data) + received.data[:64]
    assert b"RCPT TO:<b@example.com>\r\n" + chunk in flight
    assert "DATA" not in verbs


def test_chunking_without_pipelining_waits_for_each_reply(driver, make_backend):
    message = EmailMessage("C", "Body", "f@example.com", ["a@example.com"])
    with SMTPTestServer(chunking=True) as relay:
        assert driver.send(make_backend(relay), [message]) == 1
        chunks = [chunk for _, chunk in relay.received_chunks]
        verbs = [verb for _, verb, _ in relay.commands]
    assert verbs[-3:] == ["MAIL", "RCPT", "BDAT"]
    assert not any(b"MAIL FROM" in chunk and b"RCPT TO" in chunk for chunk in chunks)
    assert any(chunk.startswith(b"BDAT ") for chunk in chunks)


def test_a_big_message_is_not_uploaded_before_a_recipient_is_accepted(
    driver, make_backend
):
    body = "A long line of text for a big message.\n" * 2000  # about 80 KB
    message = EmailMessage("Big", body, "f@example.com", ["a@example.com"])
    with SMTPTestServer(pipelining=True, chunking=True) as relay:
        relay.fail("RCPT", "550 5.1.1 No such user", times=1)
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            driver.send(make_backend(relay), [message])
        refused_verbs = [verb for _, verb, _ in relay.commands]
        relay.reset()
        assert driver.send(make_backend(relay), [message]) == 1
        (received,) = relay.messages
        flight = next(c for _, c in relay.received_chunks if b"MAIL FROM" in c)
    assert "BDAT" not in refused_verbs  # not one octet of the message went out
    assert b"BDAT" not in flight  # MAIL and RCPT first, then the message
    assert _text_of(received) == body


def _text_of(received) -> str:
    return received.message().get_content().replace("\r\n", "\n")


@pytest.mark.parametrize(
    ("options", "one_write", "data_verb"),
    [
        ({"chunking": False}, True, "DATA"),
        ({"pipelining": False}, False, "BDAT"),
        ({"pipelining": False, "chunking": False}, False, "DATA"),
    ],
)
def test_offered_extensions_can_be_turned_off(
    driver, make_backend, options, one_write, data_verb
):
    message = EmailMessage("C", "Body\n.dot\n", "f@example.com", ["a@example.com"])
    with SMTPTestServer(pipelining=True, chunking=True) as relay:
        assert driver.send(make_backend(relay, **options), [message]) == 1
        (received,) = relay.messages
        chunks = [chunk for _, chunk in relay.received_chunks]
        verbs = [verb for _, verb, _ in relay.commands]
    assert verbs[-3:] == ["MAIL", "RCPT", data_verb]
    pipelined = any(b"MAIL FROM" in chunk and b"RCPT TO" in chunk for chunk in chunks)
    assert pipelined is one_write
    assert _text_of(received) == "Body\n.dot\n"


def test_without_pipelining_each_command_waits_for_its_reply(driver, make_backend):
    with SMTPTestServer(pipelining=False) as relay:
        driver.send(
            make_backend(relay),
            [EmailMessage("P", "B", "f@example.com", ["a@example.com"])],
        )
        chunks = [chunk for _, chunk in relay.received_chunks]
    assert not any(b"MAIL FROM" in chunk and b"RCPT TO" in chunk for chunk in chunks)


def test_the_pipelining_example_runs():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "examples/pipelining.py"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.splitlines() == [
        "sync, defaults: EHLO MAIL RCPT BDAT QUIT  (3 reads from the socket)",
        "sync, chunking=False: EHLO MAIL RCPT DATA QUIT  (4 reads from the socket)",
        "sync, pipelining=False, chunking=False: EHLO MAIL RCPT DATA QUIT"
        "  (6 reads from the socket)",
        "async, defaults: EHLO MAIL RCPT BDAT QUIT  (3 reads from the socket)",
        "received intact: 'Hi'",
    ]
