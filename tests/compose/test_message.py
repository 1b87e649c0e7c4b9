"""HypermailMessage: FluxMail's create() options on a Django EmailMultiAlternatives.

MIME output is checked by parsing it (content types, the tree, headers,
decoded payloads), never by comparing strings.
"""

from __future__ import annotations

import email
import email.policy
from typing import Any

import pytest
from django.core.mail import EmailMultiAlternatives

from hypermail_django.backends import MemoryBackend
from hypermail_django.compat import serialize
from hypermail_django.compose.css import INLINED_MARK
from hypermail_django.compose.message import HypermailMessage
from hypermail_django.exceptions import (
    AttachmentNotFound,
    AttachmentReadError,
    FluxMailException,
    InvalidEmail,
    InvalidMessage,
    InvalidPriority,
)
from hypermail_django.testing.outbox import clear_outbox, get_outbox

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(40))
HTML = '<style>p { color: #1a2b3c; }</style><p>Hi <img src="cid:logo"></p>'


def parse(message: Any) -> email.message.EmailMessage:
    data, _ = serialize(message, smtputf8=False)
    return email.message_from_bytes(data, policy=email.policy.default)


def content(part: Any) -> Any:
    """A part's decoded content, with line endings made ``\n`` (Django 5.2
    serializes text with CRLF inside the part too)."""
    value = part.get_content()
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


def tree(part: Any) -> Any:
    """The MIME tree as nested (content type, [children]) / content type."""
    if part.is_multipart():
        return (part.get_content_type(), [tree(p) for p in part.iter_parts()])
    return part.get_content_type()


def message(**options: Any) -> HypermailMessage:
    return HypermailMessage(
        "Subject", from_email="from@example.com", to=["to@example.com"], **options
    )


@pytest.fixture
def files(tmp_path):
    (tmp_path / "logo.png").write_bytes(PNG)
    (tmp_path / "report.csv").write_text("item,price\nmug,19.95\n")
    (tmp_path / "data.bin").write_bytes(b"\x00\x01\x02")
    return tmp_path


def test_is_a_django_email_multi_alternatives():
    assert isinstance(message(html="<p>x</p>"), EmailMultiAlternatives)


def test_html_gets_a_generated_readable_text_part():
    msg = message(
        html='<h1>Hello</h1><p>See <a href="https://x.example/a">this</a></p>'
    )
    assert msg.body == "Hello\n\nSee this (https://x.example/a)"
    parsed = parse(msg)
    assert tree(parsed) == ("multipart/alternative", ["text/plain", "text/html"])
    assert content(parsed.get_body(("plain",))).strip() == msg.body
    assert "<h1>Hello</h1>" in parsed.get_body(("html",)).get_content()


def test_a_given_text_part_is_kept():
    msg = message(body="My own text", html="<p>HTML</p>")
    assert msg.body == "My own text"
    assert msg.html == "<p>HTML</p>"


def test_text_only_message_is_a_single_part():
    assert tree(parse(message(body="Just text"))) == "text/plain"


def test_attachments_by_path_next_to_django_triples(files):
    msg = message(
        body="See attached",
        attachments=[
            str(files / "report.csv"),
            files / "data.bin",
            ("inline.txt", "made in code\n", "text/plain"),
        ],
    )
    parsed = parse(msg)
    assert tree(parsed) == (
        "multipart/mixed",
        ["text/plain", "text/plain", "text/csv", "application/octet-stream"],
    )
    attached = {
        part.get_filename(): (part.get_content_type(), content(part))
        for part in parsed.iter_attachments()
    }
    assert attached == {
        "inline.txt": ("text/plain", "made in code\n"),
        "report.csv": ("text/csv", "item,price\nmug,19.95\n"),
        "data.bin": ("application/octet-stream", b"\x00\x01\x02"),
    }


def test_missing_attachment_has_code_attachment_not_found(files):
    with pytest.raises(AttachmentNotFound) as caught:
        message(body="x", attachments=[str(files / "nope.pdf")])
    assert caught.value.code == "attachment_not_found"
    assert "nope.pdf" in str(caught.value)
    assert isinstance(caught.value, FileNotFoundError)


def test_unreadable_attachment_has_code_read_error(files):
    with pytest.raises(AttachmentReadError) as caught:
        message(body="x", attachments=[str(files)])  # a directory
    assert caught.value.code == "read_error"


def test_attach_file_has_the_same_codes(files):
    msg = message(body="x")
    with pytest.raises(AttachmentNotFound):
        msg.attach_file(files / "missing.txt")
    msg.attach_file(files / "report.csv")
    assert msg.attachments[0].filename == "report.csv"


def test_inline_images_make_a_multipart_related_html_part(files):
    msg = message(html=HTML, inline_images={"logo": str(files / "logo.png")})
    parsed = parse(msg)
    assert tree(parsed) == (
        "multipart/alternative",
        ["text/plain", ("multipart/related", ["text/html", "image/png"])],
    )
    related = parsed.get_payload()[1]
    assert related.get_param("type") == "text/html"
    html_part, image = related.get_payload()
    assert 'src="cid:logo"' in html_part.get_content()
    assert image["Content-ID"] == "<logo>"
    assert image.get_content_disposition() == "inline"
    assert image.get_filename() == "logo.png"
    assert image.get_content() == PNG
    # Clients find the HTML body through the related part:
    assert parsed.get_body(("html",)) is not None


def test_inline_images_with_attachments_nest_inside_mixed(files):
    msg = message(
        html=HTML,
        inline_images={"logo": files / "logo.png"},
        attachments=[files / "report.csv"],
    )
    parsed = parse(msg)
    assert tree(parsed) == (
        "multipart/mixed",
        [
            (
                "multipart/alternative",
                ["text/plain", ("multipart/related", ["text/html", "image/png"])],
            ),
            "text/csv",
        ],
    )
    # The image is not an attachment; the CSV is.
    assert [p.get_filename() for p in parsed.iter_attachments()] == ["report.csv"]


def test_inline_image_sources_bytes_triple_and_cid_forms():
    msg = message(html='<p>Three: <img src="cid:a"><img src="cid:b"><img src="cid:c">')
    msg.attach_inline_image("<a>", PNG, mimetype="image/png")
    msg.attach_inline_image("cid:b", ("bé.gif", b"GIF89a", "image/gif"))
    msg.attach_inline_image("c", b"<svg/>", mimetype="image/svg+xml", filename="c.svg")
    images = parse(msg).get_payload()[1].get_payload()[1:]
    assert [(i["Content-ID"], i.get_content_type()) for i in images] == [
        ("<a>", "image/png"),
        ("<b>", "image/gif"),
        ("<c>", "image/svg+xml"),
    ]
    assert images[1].get_filename() == "bé.gif"
    assert images[0].get_content() == PNG


@pytest.mark.parametrize("cid", ["", "has space", "a<b", "é"])
def test_unusable_content_ids(cid):
    with pytest.raises(InvalidMessage) as caught:
        message(html="<p>x</p>", inline_images={cid: ("x.png", PNG, "image/png")})
    assert caught.value.code == "invalid_content_id"


def test_inline_image_bytes_need_a_type():
    msg = message(html="<p>x</p>")
    with pytest.raises(InvalidMessage, match="mimetype"):
        msg.attach_inline_image("logo", PNG)


def test_inline_images_require_html(files):
    with pytest.raises(InvalidMessage) as caught:
        message(body="text only", inline_images={"logo": files / "logo.png"})
    assert caught.value.code == "html_required"


def test_missing_inline_image_file(files):
    with pytest.raises(AttachmentNotFound):
        message(html="<p>x</p>", inline_images={"logo": files / "nope.png"})


def test_reply_to_takes_a_single_address():
    msg = message(body="x", reply_to="Support <help@example.com>")
    assert msg.reply_to == ["Support <help@example.com>"]
    assert parse(msg)["Reply-To"] == "Support <help@example.com>"


@pytest.mark.parametrize(
    ("priority", "x_priority", "importance"),
    [
        ("high", "1 (Highest)", "High"),
        ("normal", "3 (Normal)", "Normal"),
        ("low", "5 (Lowest)", "Low"),
    ],
)
def test_priority_headers(priority, x_priority, importance):
    parsed = parse(message(body="x", priority=priority))
    assert parsed["X-Priority"] == x_priority
    assert parsed["Importance"] == importance
    assert parsed["X-MSMail-Priority"] == importance


@pytest.mark.parametrize("priority", ["urgent", "HIGH", "", 1])
def test_any_other_priority_is_invalid_priority(priority):
    with pytest.raises(InvalidPriority) as caught:
        message(body="x", priority=priority)
    assert caught.value.code == "invalid_priority"


def test_threading_headers():
    parsed = parse(
        message(
            body="x",
            in_reply_to="orig@example.com",
            references=["<first@example.com>", "orig@example.com"],
        )
    )
    assert parsed["In-Reply-To"] == "<orig@example.com>"
    assert parsed["References"] == "<first@example.com> <orig@example.com>"


def test_references_as_a_string():
    msg = message(body="x", references="<a@example.com> <b@example.com>")
    assert msg.extra_headers["References"] == "<a@example.com> <b@example.com>"


@pytest.mark.parametrize("bad", ["no-at-sign", "<a@b.c> <d@e.f>", "a@b\r\nBcc: x@y"])
def test_invalid_message_ids(bad):
    with pytest.raises(InvalidMessage) as caught:
        message(body="x", in_reply_to=bad)
    assert caught.value.code == "invalid_message_id"


def test_one_click_unsubscribe_rfc_8058():
    parsed = parse(
        message(
            body="x",
            unsubscribe_url="https://example.com/unsub/42",
            unsubscribe_mailto="unsub+42@example.com",
        )
    )
    # (Django 6 folds this long header after the colon: strip that space.)
    assert parsed["List-Unsubscribe"].strip() == (
        "<https://example.com/unsub/42>, <mailto:unsub+42@example.com>"
    )
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_mailto_only_unsubscribe_has_no_one_click_header():
    msg = message(body="x", unsubscribe_mailto="mailto:unsub@example.com?subject=stop")
    assert msg.extra_headers["List-Unsubscribe"] == (
        "<mailto:unsub@example.com?subject=stop>"
    )
    assert "List-Unsubscribe-Post" not in msg.extra_headers


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/u",
        "example.com/u",
        "https://example.com/a b",
        "https://x/<y>",
    ],
)
def test_unsubscribe_url_must_be_https(url):
    with pytest.raises(InvalidMessage) as caught:
        message(body="x", unsubscribe_url=url)
    assert caught.value.code == "invalid_unsubscribe_url"


def test_css_inline_on_the_message_inlines_at_once_and_marks_it():
    msg = message(html=HTML, css_inline=True)
    assert getattr(msg, INLINED_MARK) is True
    html = msg.html
    assert html is not None
    assert 'style="color: #1a2b3c;"' in html
    assert "<style" not in html
    # The text part is made from the HTML, not from its CSS.
    assert "color" not in msg.body


def test_css_inline_applies_to_html_attached_later():
    msg = message(body="x", css_inline=True)
    msg.attach_alternative(HTML, "text/html")
    assert 'style="color: #1a2b3c;"' in msg.html


def test_css_inline_uses_the_chosen_engine():
    msg = message(html=HTML, css_inline=True, css_inliner="premailer")
    assert 'style="color:#1a2b3c"' in msg.html  # premailer's compact output


def test_css_inline_false_opts_out_of_the_backend_option():
    clear_outbox()
    MemoryBackend(css_inline=True).send_messages([message(html=HTML, css_inline=False)])
    (entry,) = get_outbox()
    assert "<style>" in entry.html_body
    clear_outbox()


@pytest.mark.parametrize("field", ["to", "cc", "bcc", "reply_to", "from_email"])
def test_invalid_addresses_raise_invalid_email(field):
    options: dict[str, Any] = {"to": ["ok@example.com"], field: ["bad@@example.com"]}
    if field == "from_email":
        options[field] = "bad@@example.com"
    with pytest.raises(InvalidEmail) as caught:
        HypermailMessage("S", "x", **options)
    assert caught.value.code == "invalid_email"
    assert field in str(caught.value)


def test_header_injection_in_an_address_is_refused():
    with pytest.raises(InvalidEmail):
        message(body="x", cc=["a@example.com\nBcc: victim@example.com"])


def test_the_case_of_local_parts_is_never_changed():
    clear_outbox()
    msg = HypermailMessage(
        "Case", "x", "Sender.Name@Example.com", ["John.Doe@Example.COM"]
    )
    assert msg.to == ["John.Doe@Example.COM"]
    MemoryBackend().send_messages([msg])
    (entry,) = get_outbox()
    assert entry.recipients == ["John.Doe@Example.COM"]
    assert entry.mail_from == "Sender.Name@Example.com"
    assert entry.message()["To"] == "John.Doe@Example.COM"
    clear_outbox()


def test_every_error_is_a_fluxmail_exception_with_a_code(files):
    attempts = [
        lambda: message(body="x", priority="asap"),
        lambda: message(body="x", attachments=[files / "none"]),
        lambda: message(body="x", inline_images={"a": files / "logo.png"}),
        lambda: message(body="x", cc=["not an address"]),
    ]
    codes = []
    for attempt in attempts:
        with pytest.raises(FluxMailException) as caught:
            attempt()
        codes.append(caught.value.code)
    assert codes == [
        "invalid_priority",
        "attachment_not_found",
        "html_required",
        "invalid_email",
    ]


def test_delivered_over_smtp_with_the_tree_intact(server, make_backend, files):
    msg = message(
        html=HTML,
        inline_images={"logo": files / "logo.png"},
        attachments=[files / "report.csv"],
        priority="high",
        unsubscribe_url="https://example.com/u/1",
        bcc=["hidden@example.com"],
    )
    assert make_backend().send_messages([msg]) == 1
    (received,) = server.messages
    assert received.rcpt_tos == ["to@example.com", "hidden@example.com"]
    parsed = received.message()
    assert tree(parsed) == tree(parse(msg))
    assert "Bcc" not in parsed
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    image = parsed.get_payload()[0].get_payload()[1].get_payload()[1]
    assert image.get_content() == PNG
