"""MemoryBackend and ConsoleBackend: what each keeps or prints, and how they are
configured. What they share with FluxMailBackend is in test_contract.py."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.test import override_settings

from hypermail_django import signals
from hypermail_django.backends import ConsoleBackend, MemoryBackend
from hypermail_django.backends.console import RULE
from hypermail_django.compat import MAILERS_SUPPORTED, mailers_configured
from hypermail_django.compose.message import HypermailMessage
from hypermail_django.exceptions import ConfigurationError
from hypermail_django.testing.outbox import OutboxEntry, clear_outbox, get_outbox

from ..conftest import legacy_settings, requires_mailers

MEMORY = "hypermail_django.backends.MemoryBackend"
CONSOLE = "hypermail_django.backends.ConsoleBackend"
PNG = b"\x89PNG\r\n\x1a\nimage-bytes"


@pytest.fixture(autouse=True)
def empty_outbox() -> Iterator[None]:
    clear_outbox()
    yield
    clear_outbox()


def rich_message() -> HypermailMessage:
    return HypermailMessage(
        "Your receipt",
        from_email="Shop <shop@example.com>",
        to=["alice@example.com"],
        cc=["bob@example.com"],
        bcc=["archive@example.com"],
        reply_to="help@example.com",
        html='<p>Order <b>#1042</b><img src="cid:logo"></p>',
        attachments=[("receipt.csv", "item,price\nmug,19.95\n", "text/csv")],
        inline_images={"logo": ("logo.png", PNG, "image/png")},
        headers={"X-Campaign": "receipts"},
    )


# -- MemoryBackend -------------------------------------------------------------


def test_outbox_entry_exposes_every_part():
    message = rich_message()
    assert MemoryBackend().send_messages([message]) == 1
    (entry,) = get_outbox()
    assert isinstance(entry, OutboxEntry)
    assert entry.subject == "Your receipt"
    assert entry.body == "Order #1042"
    assert entry.html_body == '<p>Order <b>#1042</b><img src="cid:logo"></p>'
    assert entry.from_email == "Shop <shop@example.com>"
    assert (entry.to, entry.cc, entry.bcc) == (
        ["alice@example.com"],
        ["bob@example.com"],
        ["archive@example.com"],
    )
    assert entry.reply_to == ["help@example.com"]
    assert entry.recipients == [
        "alice@example.com",
        "bob@example.com",
        "archive@example.com",
    ]
    assert entry.mail_from == "shop@example.com"
    assert entry.headers["X-Campaign"] == "receipts"
    assert entry.headers["Message-ID"] == entry.message_id
    assert "Bcc" not in entry.headers
    [(filename, content, mimetype)] = entry.attachments
    assert (filename, mimetype) == ("receipt.csv", "text/csv")
    assert content == "item,price\nmug,19.95\n"
    assert entry.inline_images["logo"].content == PNG
    assert entry.alias is None


def test_outbox_keeps_the_exact_bytes_that_would_be_sent():
    message = rich_message()
    MemoryBackend().send_messages([message])
    (entry,) = get_outbox()
    parsed = entry.message()
    assert parsed["Message-ID"] == message.hypermail_status.message_id
    assert parsed["Subject"] == "Your receipt"
    assert b"archive@example.com" not in entry.data  # Bcc: envelope only
    assert entry.data.endswith(b"\r\n")
    assert b"\n" not in entry.data.replace(b"\r\n", b"")  # CRLF, as on the wire


def test_django_outbox_and_pytest_django_mailoutbox_receive_a_copy(mailoutbox):
    message = EmailMessage("Hello", "Body", "from@example.com", ["to@example.com"])
    MemoryBackend().send_messages([message])
    (kept,) = mailoutbox
    assert kept is not message  # a copy, as Django's locmem backend keeps
    assert (kept.subject, kept.to) == ("Hello", ["to@example.com"])
    assert get_outbox()[0].django_message is kept


def test_get_outbox_is_a_snapshot_and_clear_outbox_empties_it():
    backend = MemoryBackend()
    backend.send_messages([EmailMessage("1", "b", "f@example.com", ["t@example.com"])])
    snapshot = get_outbox()
    backend.send_messages([EmailMessage("2", "b", "f@example.com", ["t@example.com"])])
    assert [e.subject for e in snapshot] == ["1"]
    assert [e.subject for e in get_outbox()] == ["1", "2"]
    clear_outbox()
    assert get_outbox() == []


def test_the_outbox_is_thread_safe():
    def send(worker: int) -> None:
        backend = MemoryBackend()
        for n in range(25):
            subject = f"{worker}-{n}"
            backend.send_messages([EmailMessage(subject, "b", to=["t@example.com"])])

    threads = [threading.Thread(target=send, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    subjects = [entry.subject for entry in get_outbox()]
    assert sorted(subjects) == sorted(f"{w}-{n}" for w in range(8) for n in range(25))


@pytest.fixture
def memory_mailer() -> Iterator[None]:
    """MemoryBackend as Django's mailer, css_inline on."""
    if mailers_configured() or MAILERS_SUPPORTED:
        mailers = {"default": {"BACKEND": MEMORY, "OPTIONS": {"css_inline": True}}}
        with override_settings(MAILERS=mailers):
            yield
    else:
        with legacy_settings(EMAIL_BACKEND=MEMORY, EMAIL_FLUXMAIL_CSS_INLINE=True):
            yield


def test_django_send_mail_goes_through_it(memory_mailer):
    html = "<style>p { color: #1a2b3c }</style><p>Hi</p>"
    assert mail.send_mail("Hi", "text", None, ["to@example.com"], html_message=html)
    (entry,) = get_outbox()
    assert entry.from_email == "noreply@example.com"
    assert 'style="color: #1a2b3c' in (entry.html_body or "")
    if MAILERS_SUPPORTED:
        assert entry.alias == "default"
        assert entry.django_message.sent_using == "default"


def test_message_send_with_a_connection_attached(memory_mailer):
    message = EmailMessage("Bound", "Body", to=["to@example.com"])
    assert message.send() == 1  # Django 5.2 stores the backend on the message
    assert get_outbox()[0].subject == "Bound"


# -- ConsoleBackend ------------------------------------------------------------


def console(**options: Any) -> tuple[ConsoleBackend, io.StringIO]:
    stream = io.StringIO()
    return ConsoleBackend(stream=stream, **options), stream


def test_console_prints_the_reference_format():
    backend, stream = console()
    message = EmailMessage("Test", "Hello", "noreply@localhost", ["user@example.com"])
    assert backend.send_messages([message]) == 1
    assert stream.getvalue() == (
        f"{RULE}\nEMAIL: Test\nFrom: noreply@localhost\nTo: user@example.com\n"
        f"{RULE}\nHello\n{RULE}\n"
    )
    assert RULE == "=" * 60


def test_console_prints_the_html_part_separately():
    backend, stream = console()
    message = EmailMultiAlternatives(
        "Hi", "Text part", "f@example.com", ["t@example.com"]
    )
    message.attach_alternative("<h1>HTML part</h1>", "text/html")
    backend.send_messages([message])
    assert stream.getvalue().endswith(
        f"{RULE}\nText part\n{RULE}\nHTML:\n<h1>HTML part</h1>\n{RULE}\n"
    )


def test_console_prints_an_html_only_message_once():
    backend, stream = console()
    message = EmailMessage("Hi", "<p>Only HTML</p>", "f@example.com", ["t@example.com"])
    message.content_subtype = "html"
    backend.send_messages([message])
    assert stream.getvalue().endswith(f"{RULE}\nHTML:\n<p>Only HTML</p>\n{RULE}\n")
    assert stream.getvalue().count("Only HTML") == 1


def test_console_lists_copies_replies_attachments_and_images():
    backend, stream = console()
    backend.send_messages([rich_message()])
    header = stream.getvalue().split(RULE)[1].splitlines()
    assert header == [
        "",
        "EMAIL: Your receipt",
        "From: Shop <shop@example.com>",
        "To: alice@example.com",
        "Cc: bob@example.com",
        "Bcc: archive@example.com",
        "Reply-To: help@example.com",
        "Attachments: receipt.csv (text/csv, 21 bytes)",
        f"Inline images: cid:logo logo.png (image/png, {len(PNG)} bytes)",
    ]


def test_console_shows_the_inlined_html_that_would_be_sent():
    backend, stream = console(css_inline=True)
    message = EmailMultiAlternatives("Hi", "t", "f@example.com", ["t@example.com"])
    message.attach_alternative(
        "<style>p { color: #1a2b3c }</style><p>x</p>", "text/html"
    )
    backend.send_messages([message])
    assert '<p style="color: #1a2b3c' in stream.getvalue()


def test_console_show_source_prints_envelope_and_exact_message():
    backend, stream = console(show_source=True)
    message = rich_message()
    backend.send_messages([message])
    text = stream.getvalue()
    assert "Envelope-From: shop@example.com\n" in text
    assert (
        "Envelope-To: alice@example.com, bob@example.com, archive@example.com\n" in text
    )
    source = text.split(RULE)[2].strip("\n")
    assert f"Message-ID: {message.hypermail_status.message_id}" in source
    assert "Content-Type: multipart/mixed" in source
    assert "Order #1042" not in text.split(RULE)[1]  # the body is in the source


def test_console_writes_to_stdout_at_write_time(capsys):
    ConsoleBackend().send_messages(
        [EmailMessage("Printed", "Body", "f@example.com", ["t@example.com"])]
    )
    assert "EMAIL: Printed" in capsys.readouterr().out


def test_console_fail_silently_on_a_broken_stream():
    broken = io.StringIO()
    broken.close()
    message = EmailMessage("S", "B", "f@example.com", ["t@example.com"])
    with pytest.raises(ValueError):
        ConsoleBackend(stream=broken).send_messages([message])
    assert (
        ConsoleBackend(stream=broken, fail_silently=True).send_messages([message]) == 0
    )


# -- shared: status, signals, options ------------------------------------------


@pytest.mark.parametrize("backend_class", [MemoryBackend, ConsoleBackend])
def test_status_is_sent_for_every_envelope_recipient(backend_class):
    seen = []

    def receiver(sender, message, status, backend, **kwargs):
        seen.append((sender, message, status, backend))

    signals.post_send.connect(receiver)
    try:
        backend = (
            backend_class(stream=io.StringIO())
            if backend_class is ConsoleBackend
            else backend_class()
        )
        message = EmailMessage(
            "S", "B", "f@example.com", ["a@example.com"], bcc=["b@example.com"]
        )
        backend.send_messages([message])
    finally:
        signals.post_send.disconnect(receiver)
    status = message.hypermail_status
    assert status.status == "sent"
    assert status.attempts == 1
    assert status.sent == ["a@example.com", "b@example.com"]
    assert {rs.code for rs in status.recipients.values()} == {250}
    assert seen == [(backend_class, message, status, backend)]


@pytest.mark.parametrize("backend_class", [MemoryBackend, ConsoleBackend])
def test_smtp_options_are_accepted_and_ignored(backend_class):
    backend = backend_class(
        host="smtp.example.com",
        port=587,
        use_tls=True,
        password="s3cret",
        max_retries=3,
    )
    assert not hasattr(backend, "host")
    assert "s3cret" not in repr(backend)


@pytest.mark.parametrize("backend_class", [MemoryBackend, ConsoleBackend])
def test_unknown_options_are_configuration_errors(backend_class):
    with pytest.raises(ConfigurationError) as caught:
        backend_class(css_inlines=True)
    message = str(caught.value)
    assert backend_class.__name__ in message
    assert "did you mean 'css_inline'" in message


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"css_inline": "yes"}, "css_inline"),
        ({"css_inliner": "nope"}, "Unknown CSS inliner 'nope'"),
    ],
)
def test_option_values_are_checked(options, says):
    with pytest.raises(ConfigurationError, match=says):
        MemoryBackend(**options)


def test_legacy_settings_configure_them():
    if mailers_configured():
        pytest.skip("the project uses MAILERS")
    with legacy_settings(
        EMAIL_FLUXMAIL_CSS_INLINE=True, EMAIL_FLUXMAIL_CSS_INLINER="premailer"
    ):
        backend = MemoryBackend()
    assert (backend.css_inline, backend.css_inliner) == (True, "premailer")
    assert (MemoryBackend().css_inline, MemoryBackend().css_inliner) == (
        False,
        "css_inline",
    )


@requires_mailers
def test_mailers_options_and_alias():
    from django.core.mail import mailers as django_mailers

    config = {
        "BACKEND": CONSOLE,
        "OPTIONS": {"css_inline": True, "stream": io.StringIO(), "show_source": True},
    }
    with override_settings(MAILERS={"default": {"BACKEND": MEMORY}, "debug": config}):
        backend = django_mailers["debug"]
        assert isinstance(backend, ConsoleBackend)
        assert (backend.alias, backend.css_inline, backend.show_source) == (
            "debug",
            True,
            True,
        )
        assert repr(backend) == "<ConsoleBackend 'debug'>"


@requires_mailers
def test_mailers_unknown_option_names_the_setting():
    from django.core.mail import mailers as django_mailers

    mailers = {"default": {"BACKEND": MEMORY, "OPTIONS": {"css_inlne": True}}}
    with (
        override_settings(MAILERS=mailers),
        pytest.raises(ConfigurationError) as caught,
    ):
        django_mailers["default"]
    assert str(caught.value).startswith(
        "MAILERS['default']: Unknown options 'css_inlne'."
    )
    assert isinstance(caught.value, mail.InvalidMailer)


@pytest.mark.skipif(MAILERS_SUPPORTED, reason="get_connection() is deprecated on 6.1")
@pytest.mark.parametrize("path", [MEMORY, CONSOLE])
def test_get_connection_keyword_arguments(path):
    backend = mail.get_connection(path, fail_silently=True, css_inline=True)
    assert (backend.fail_silently, backend.css_inline) == (True, True)
    with pytest.raises(ConfigurationError, match="css_inlne"):
        mail.get_connection(path, css_inlne=True)
