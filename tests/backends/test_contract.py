"""One contract, three backends: FluxMailBackend (over a real SMTP server),
MemoryBackend and ConsoleBackend send the same thing for the same message.

"What was sent" is read where each backend puts it: the SMTP server's records,
the memory outbox, the console's ``show_source`` output. Messages are compared
by their parsed MIME tree (boundaries aside), not as strings.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core import mail
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.test import override_settings

from hypermail_django import signals
from hypermail_django.backends import ConsoleBackend, FluxMailBackend, MemoryBackend
from hypermail_django.backends.console import RULE
from hypermail_django.compat import MAILERS_SUPPORTED, serialize
from hypermail_django.compose.message import HypermailMessage
from hypermail_django.exceptions import CancelSend, InvalidEmail
from hypermail_django.testing.outbox import clear_outbox, get_outbox

from ..conftest import legacy_settings

PNG = b"\x89PNG\r\n\x1a\ncontract-image"
FIXED = {
    "Message-ID": "<contract-1@example.com>",
    "Date": "Tue, 01 Jul 2025 10:00:00 +0000",
}
STYLED = (
    "<html><head><style>p { color: #1a2b3c; }</style></head>"
    "<body><p>Hi</p></body></html>"
)


@dataclass
class Sent:
    """One message as it left the backend: envelope and bytes."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    def message(self) -> email.message.EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed


class Harness:
    """A backend under contract: how to make one, and what it sent."""

    name: str
    backend_path: str

    def backend(self, **options: Any) -> Any:
        raise NotImplementedError

    def sent(self) -> list[Sent]:
        raise NotImplementedError

    def mailer_options(self) -> dict[str, Any]:
        return {}

    @contextlib.contextmanager
    def as_default_mailer(self) -> Iterator[None]:
        options = self.mailer_options()
        if MAILERS_SUPPORTED:
            mailers = {"default": {"BACKEND": self.backend_path, "OPTIONS": options}}
            with override_settings(MAILERS=mailers):
                yield
        else:
            from hypermail_django.conf.mailer_options import settings_for

            with legacy_settings(
                EMAIL_BACKEND=self.backend_path, **settings_for(options)
            ):
                yield


class SMTPHarness(Harness):
    name = "smtp"
    backend_path = "hypermail_django.backends.FluxMailBackend"

    def __init__(self, server: Any) -> None:
        self.server = server

    def mailer_options(self) -> dict[str, Any]:
        return {"host": self.server.host, "port": self.server.port}

    def backend(self, **options: Any) -> FluxMailBackend:
        return FluxMailBackend(**self.mailer_options(), **options)

    def sent(self) -> list[Sent]:
        return [Sent(m.mail_from, m.rcpt_tos, m.data) for m in self.server.messages]


class MemoryHarness(Harness):
    name = "memory"
    backend_path = "hypermail_django.backends.MemoryBackend"

    def backend(self, **options: Any) -> MemoryBackend:
        return MemoryBackend(**options)

    def sent(self) -> list[Sent]:
        return [Sent(e.mail_from, e.recipients, e.data) for e in get_outbox()]


class ConsoleHarness(Harness):
    name = "console"
    backend_path = "hypermail_django.backends.ConsoleBackend"

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def mailer_options(self) -> dict[str, Any]:
        if MAILERS_SUPPORTED:
            return {"stream": self.stream, "show_source": True}
        return {}  # EMAIL_BACKEND cannot pass a stream: sent() reads stdout

    def backend(self, **options: Any) -> ConsoleBackend:
        return ConsoleBackend(stream=self.stream, show_source=True, **options)

    def sent(self) -> list[Sent]:
        segments = self.stream.getvalue().split(f"{RULE}\n")
        sent = []
        for header, source in zip(segments[1::3], segments[2::3], strict=True):
            fields = dict(line.split(": ", 1) for line in header.splitlines() if line)
            sent.append(
                Sent(
                    fields["Envelope-From"],
                    fields["Envelope-To"].split(", "),
                    source.replace("\n", "\r\n").encode(),
                )
            )
        return sent


@pytest.fixture(params=["smtp", "memory", "console"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    clear_outbox()
    if request.param == "smtp":
        yield SMTPHarness(request.getfixturevalue("server"))
    elif request.param == "memory":
        yield MemoryHarness()
    else:
        yield ConsoleHarness()
    clear_outbox()


def describe(part: Any) -> Any:
    """A part as comparable data: type, parameters (not the boundary), headers
    (not Content-Type), and the decoded content or the children."""
    params = {k: v for k, v in part.get_params()[1:] if k != "boundary"}
    headers = [
        (k.lower(), str(v)) for k, v in part.items() if k.lower() != "content-type"
    ]
    if part.is_multipart():
        return (
            part.get_content_type(),
            params,
            headers,
            [describe(p) for p in part.iter_parts()],
        )
    content = part.get_content()
    if isinstance(content, str):
        content = content.replace("\r\n", "\n")
    return (part.get_content_type(), params, headers, content)


def built(message: Any) -> Any:
    """What Django builds for ``message`` (after the backend prepared it)."""
    data, _ = serialize(message, smtputf8=False)
    return describe(email.message_from_bytes(data, policy=email.policy.default))


def plain(subject: str = "Subject", *to: str, **kwargs: Any) -> EmailMessage:
    return EmailMessage(
        subject, "Body", "from@example.com", list(to or ["to@example.com"]), **kwargs
    )


# -- the contract ----------------------------------------------------------------


def test_bcc_is_delivered_and_never_a_header(harness):
    message = EmailMessage(
        "Subject",
        "Body",
        "from@example.com",
        to=["to@example.com"],
        cc=["cc@example.com"],
        bcc=["hidden@example.com"],
    )
    assert harness.backend().send_messages([message]) == 1
    (sent,) = harness.sent()
    assert sent.rcpt_tos == ["to@example.com", "cc@example.com", "hidden@example.com"]
    assert "Bcc" not in sent.message()
    assert b"hidden@example.com" not in sent.data


def test_envelope_sender_is_from_email_not_the_from_header(harness):
    message = plain(headers={"From": "Support <support@example.com>"})
    message.from_email = "bounces@example.com"
    harness.backend().send_messages([message])
    (sent,) = harness.sent()
    assert sent.mail_from == "bounces@example.com"
    assert sent.message()["From"] == "Support <support@example.com>"


def test_what_is_sent_is_what_django_builds(harness):
    message = HypermailMessage(
        "Ünïcode receipt ✓",
        from_email="Shop <shop@example.com>",
        to=["alice@example.com"],
        reply_to="help@example.com",
        html='<p>Order <b>#1042</b> <img src="cid:logo"></p>',
        attachments=[("receipt.csv", "item,price\nmug,19.95\n", "text/csv")],
        inline_images={"logo": ("logo.png", PNG, "image/png")},
        headers={**FIXED, "X-Campaign": "receipts"},
        priority="high",
        in_reply_to="<order-1042@example.com>",
        unsubscribe_url="https://example.com/unsub/1",
    )
    harness.backend().send_messages([message])
    (sent,) = harness.sent()
    assert describe(sent.message()) == built(message)
    parsed = sent.message()
    assert parsed["X-Campaign"] == "receipts"
    assert parsed["X-Priority"] == "1 (Highest)"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    related = parsed.get_payload()[0].get_payload()[1]
    assert related.get_content_type() == "multipart/related"
    assert related.get_payload()[1].get_content() == PNG


def test_the_same_message_gives_the_same_result_everywhere(server):
    """The three harnesses side by side, on one message."""
    harnesses = [SMTPHarness(server), MemoryHarness(), ConsoleHarness()]
    clear_outbox()
    results = []
    for each in harnesses:
        message = HypermailMessage(
            "Same",
            to=["a@example.com"],
            bcc=["b@example.com"],
            html=STYLED,
            headers=FIXED,
        )
        each.backend(css_inline=True).send_messages([message])
        (sent,) = each.sent()
        results.append((sent.mail_from, sent.rcpt_tos, describe(sent.message())))
    clear_outbox()
    assert results[0] == results[1] == results[2]


def test_idna_domains(harness):
    message = EmailMessage(
        "IDNA", "Body", "sender@exämple.com", ["user@bücher.example"]
    )
    harness.backend().send_messages([message])
    (sent,) = harness.sent()
    assert sent.mail_from == "sender@xn--exmple-cua.com"
    assert sent.rcpt_tos == ["user@xn--bcher-kva.example"]
    assert sent.message()["To"] == "user@xn--bcher-kva.example"
    assert sent.data.isascii()


def test_non_ascii_local_part_keeps_its_unicode(harness):
    message = plain("UTF8", "jörg@example.com")
    harness.backend().send_messages([message])
    (sent,) = harness.sent()
    assert sent.rcpt_tos == ["jörg@example.com"]
    assert sent.message()["To"] == "jörg@example.com"


def test_messages_without_recipients_are_skipped_and_not_counted(harness):
    backend = harness.backend()
    empty = EmailMessage("Nobody", "Body", "from@example.com", [])
    assert backend.send_messages([empty]) == 0
    assert backend.send_messages([]) == 0
    assert backend.send_messages([empty, plain("Somebody")]) == 1
    assert [s.message()["Subject"] for s in harness.sent()] == ["Somebody"]
    assert not hasattr(empty, "hypermail_status")


@pytest.mark.parametrize(
    "bad", ["not an address", "a@b@example.com", "to@example.com\nBcc: x@example.com"]
)
def test_invalid_address_sends_nothing_of_the_batch(harness, bad):
    first = plain("Valid first")
    with pytest.raises(InvalidEmail) as caught:
        harness.backend().send_messages([first, plain("Invalid", bad)])
    assert caught.value.code == "invalid_email"
    assert harness.sent() == []
    assert not hasattr(first, "hypermail_status")


def test_invalid_header_sends_nothing(harness):
    with pytest.raises(ValueError):
        harness.backend().send_messages([plain("Line\nbreak")])
    assert harness.sent() == []


def test_pre_send_can_cancel_or_change_a_message(harness):
    def receiver(sender, message, backend, **kwargs):
        if message.subject == "Skip me":
            raise CancelSend
        message.extra_headers["X-Seen-By"] = type(backend).__name__

    skipped, kept = plain("Skip me"), plain("Keep me")
    signals.pre_send.connect(receiver)
    try:
        assert harness.backend().send_messages([skipped, kept]) == 1
    finally:
        signals.pre_send.disconnect(receiver)
    assert skipped.hypermail_status.status == "cancelled"
    (sent,) = harness.sent()
    assert sent.message()["Subject"] == "Keep me"
    assert sent.message()["X-Seen-By"] in {
        "FluxMailBackend",
        "MemoryBackend",
        "ConsoleBackend",
    }


def _styles(sent: Sent) -> tuple[str | None, str]:
    """The style attribute of the HTML's <p>, and the HTML."""
    html = sent.message().get_body(("html",)).get_content()
    start = html.find("<p")
    tag = html[start : html.find(">", start)]
    style = tag.split('style="', 1)[1].split('"', 1)[0] if 'style="' in tag else None
    return style, html


def test_css_is_inlined_when_the_option_is_on(harness):
    message = EmailMultiAlternatives(
        "CSS", "text", "from@example.com", ["to@example.com"]
    )
    message.attach_alternative(STYLED, "text/html")
    harness.backend(css_inline=True).send_messages([message])
    style, html = _styles(harness.sent()[0])
    assert style is not None and "color: #1a2b3c" in style
    assert "<style" not in html


def test_css_is_left_alone_when_the_option_is_off(harness):
    message = EmailMultiAlternatives(
        "CSS", "text", "from@example.com", ["to@example.com"]
    )
    message.attach_alternative(STYLED, "text/html")
    harness.backend().send_messages([message])
    style, html = _styles(harness.sent()[0])
    assert style is None
    assert "<style>p { color: #1a2b3c; }</style>" in html


INLINED: list[str] = []


def counting_inliner(html: str) -> str:
    """An engine that counts its calls (used by dotted path)."""
    INLINED.append(html)
    return html.replace("<p>", '<p style="color: #1a2b3c">')


def test_css_is_never_inlined_twice(harness):
    INLINED.clear()
    engine = "tests.backends.test_contract.counting_inliner"
    backend = harness.backend(css_inline=True, css_inliner=engine)
    per_message = HypermailMessage(
        "Once",
        to=["to@example.com"],
        html="<p>x</p>",
        css_inline=True,
        css_inliner=engine,
    )
    by_backend = HypermailMessage("Twice sent", to=["to@example.com"], html="<p>y</p>")
    backend.send_messages([per_message, by_backend])
    backend.send_messages([by_backend])
    assert INLINED == ["<p>x</p>", "<p>y</p>"]
    assert [_styles(s)[0] for s in harness.sent()] == ["color: #1a2b3c"] * 3


def test_status_and_post_send(harness):
    seen = []

    def receiver(sender, message, status, backend, **kwargs):
        seen.append((message, status))

    message = plain("Status", "a@example.com", "b@example.com")
    signals.post_send.connect(receiver)
    try:
        harness.backend().send_messages([message])
    finally:
        signals.post_send.disconnect(receiver)
    status = message.hypermail_status
    (sent,) = harness.sent()
    assert status.message_id == sent.message()["Message-ID"]
    assert status.status == "sent"
    assert status.sent == ["a@example.com", "b@example.com"]
    assert {(rs.status, rs.code) for rs in status.recipients.values()} == {
        ("sent", 250)
    }
    assert seen == [(message, status)]


def test_django_send_mail_through_the_default_mailer(harness, capsys):
    with harness.as_default_mailer():
        assert mail.send_mail("Via Django", "Body", None, ["to@example.com"]) == 1
    if isinstance(harness, ConsoleHarness) and not MAILERS_SUPPORTED:
        assert "EMAIL: Via Django" in capsys.readouterr().out
        return
    if isinstance(harness, SMTPHarness):
        harness.server.wait_for_messages(1)
    (sent,) = harness.sent()
    assert sent.mail_from == "noreply@example.com"
    assert sent.message()["Subject"] == "Via Django"


def test_opened_backend_sends_a_batch(harness):
    with harness.backend() as backend:
        assert backend.send_messages([plain("One"), plain("Two")]) == 2
    assert [s.message()["Subject"] for s in harness.sent()] == ["One", "Two"]
