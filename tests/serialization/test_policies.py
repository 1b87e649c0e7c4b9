"""The fast SMTP policies serialize exactly what the standard library's do."""

from __future__ import annotations

import email
import email.policy
import random

import pytest
from django.core.mail import EmailMessage, EmailMultiAlternatives

from hypermail_django.compat import MODERN_EMAIL_API
from hypermail_django.compose.message import HypermailMessage
from hypermail_django.serialization import email_policies as policies

FIXED = {"Date": "Sat, 21 Nov 2026 09:00:00 +0000", "Message-ID": "<fixed@example.com>"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def corpus() -> list[EmailMessage]:
    """Messages that exercise every kind of header and part Django writes."""
    alternatives = EmailMultiAlternatives(
        "Résumé de la semaine — " + "un sujet assez long pour être replié " * 3,
        "Texte\n.ligne avec un point\n" + "x" * 1200,
        '"Équipe, Ventes" <ventes@example.com>',
        ["Zoë <zoe@example.com>", "b@example.com"],
        cc=["c@bücher.example"],
        bcc=["hidden@example.com"],
        reply_to=["Support <support@example.com>"],
        headers={"X-Campaign": "Nov", "List-Unsubscribe": "<https://e.com/u?x=1>"},
    )
    alternatives.attach_alternative("<p>Bonjour <b>Zoë</b></p>", "text/html")
    with_files = EmailMessage(
        "Files", "See attached", "a@example.com", ["b@example.com"]
    )
    with_files.attach("notes.txt", "plain text ünïcode\n", "text/plain")
    with_files.attach("данные.bin", bytes(range(256)), "application/octet-stream")
    with_files.attach("report.csv", b"a,b\r\n1,2\r\n", "text/csv")
    rich = HypermailMessage(
        "Inline",
        from_email="a@example.com",
        to=["b@example.com"],
        html='<p>Hi</p><img src="cid:logo">',
        inline_images={"logo": ("logo.png", PNG, "image/png")},
    )
    smtputf8 = EmailMessage("UTF-8", "Body", "a@example.com", ["josé@example.com"])
    many = EmailMessage(
        "Many", "Body", "a@example.com", [f"user{n}@example.com" for n in range(40)]
    )
    return [alternatives, with_files, rich, smtputf8, many]


@pytest.mark.skipif(not MODERN_EMAIL_API, reason="Django 6.0+ builds with a policy")
@pytest.mark.parametrize(
    ("stock", "fast"),
    [(email.policy.SMTP, policies.SMTP), (email.policy.SMTPUTF8, policies.SMTPUTF8)],
    ids=["SMTP", "SMTPUTF8"],
)
@pytest.mark.parametrize("index", range(len(corpus())))
def test_djangos_builder_gives_the_same_bytes(stock, fast, index):
    message = corpus()[index]
    message.extra_headers.update(FIXED)
    assert _serialized(message, fast) == _serialized(message, stock)


def _serialized(message: EmailMessage, policy: email.policy.Policy) -> bytes:
    random.seed(2026)  # MIME boundaries are random: make them the same
    return message.message(policy=policy).as_bytes()


@pytest.mark.parametrize("index", range(len(corpus())))
def test_parsing_and_writing_again_gives_the_same_bytes(index):
    """On every Django: the header classes parse and fold the same."""
    message = corpus()[index]
    message.extra_headers.update(FIXED)
    raw = message.message().as_bytes()
    for stock, fast in [
        (email.policy.SMTP, policies.SMTP),
        (email.policy.SMTPUTF8, policies.SMTPUTF8),
    ]:
        expected = email.message_from_bytes(raw, policy=stock).as_bytes()
        assert email.message_from_bytes(raw, policy=fast).as_bytes() == expected


def test_each_header_class_is_built_once():
    registry = policies.CachingHeaderRegistry()
    assert registry["Subject"] is registry["subject"]
    assert registry["To"] is not registry["Subject"]
    header = registry("Subject", "Hello")
    assert header == "Hello" and header.name == "Subject"


def test_mapping_a_new_type_takes_effect():
    registry = policies.CachingHeaderRegistry()
    before = registry["X-Custom"]
    registry.map_to_type("X-Custom", type(registry("To", "a@example.com")).__mro__[1])
    assert registry["X-Custom"] is not before
    assert registry("X-Custom", "a@example.com").addresses


def test_a_repeated_header_is_parsed_once_and_folded_per_policy():
    registry = policies.CachingHeaderRegistry()
    subject = "A subject long enough to be folded at forty characters or so"
    header = registry("Subject", subject)
    assert registry("Subject", subject) is header
    assert registry("subject", subject) is not header  # keeps the name's case
    narrow = email.policy.SMTP.clone(max_line_length=40)
    for policy in (email.policy.SMTP, narrow, email.policy.SMTP):
        stock = email.policy.SMTP.header_factory("Subject", subject)
        assert header.fold(policy=policy) == stock.fold(policy=policy)
    assert header.fold(policy=narrow).count("\r\n") > 1


@pytest.mark.skipif(not MODERN_EMAIL_API, reason="Django 6.0+ builds with a policy")
def test_a_batch_gives_the_same_bytes_with_headers_reused():
    """As in bulk: the same headers over and over, each message still exact."""
    for _ in range(3):
        for message in corpus():
            message.extra_headers.update(FIXED)
            stock = _serialized(message, email.policy.SMTP)
            assert _serialized(message, policies.SMTP) == stock


@pytest.mark.skipif(MODERN_EMAIL_API, reason="Django 5.2 builds with compat32")
def test_compat32_gives_the_same_bytes_with_headers_reused():
    """Django 5.2: what compat.serialize writes, against Django's own as_bytes."""
    for _ in range(3):
        for message in corpus():
            message.extra_headers.update(FIXED)
            random.seed(2026)
            stock = message.message().as_bytes(linesep="\r\n")
            random.seed(2026)
            reusing = message.message()
            reusing.policy = policies.COMPAT32
            assert reusing.as_bytes(linesep="\r\n") == stock


def test_compat32_caches_per_line_separator_and_length():
    policy = policies.COMPAT32
    subject = "A subject long enough to be folded at forty characters or so"
    for linesep, length in [("\r\n", 78), ("\n", 78), ("\r\n", 40), ("\r\n", 78)]:
        ours = policy.clone(linesep=linesep, max_line_length=length)
        stock = email.policy.compat32.clone(linesep=linesep, max_line_length=length)
        folded = ours.fold_binary("Subject", subject)
        assert folded == stock.fold_binary("Subject", subject)
        assert folded.endswith(linesep.encode())


def _header_values(count: int):
    draw = random.Random(1522)
    pieces = [
        "word",
        "x" * 30,
        " ",
        "  ",
        "\t",
        "=?",
        "?=",
        "é",
        "<a@b.c>",
        ",",
        ";",
        ":",
        "(",
        ")",
        '"',
        "\\",
        "~",
        "!",
        "y" * 75,
        "\r\n ",
        "\n",
    ]
    for _ in range(count):
        yield "".join(draw.choice(pieces) for _ in range(draw.randint(0, 6)))


def _folded(policy, name, value):
    try:
        return policy.fold_binary(name, value)
    except Exception as error:  # The same refusal (an embedded header...).
        return type(error)


@pytest.mark.parametrize("length", [0, 40, 78, 998])
def test_compat32_plain_headers_are_written_as_stock_compat32_writes_them(length):
    """The shortcut for one-line ASCII values against ``Header.encode``,
    around every line length."""
    policy = policies.COMPAT32.clone(linesep="\r\n", max_line_length=length)
    stock = email.policy.compat32.clone(linesep="\r\n", max_line_length=length)
    shortcut = 0
    for name in ["Subject", "To", "X-A-Rather-Long-Header-Name"]:
        for value in _header_values(3_000):
            shortcut += policy._fits_as_is(name, value)
            assert _folded(policy, name, value) == _folded(stock, name, value)
    assert shortcut > 100


def _multipart_values(count: int):
    """Content-Type values ending with a boundary as the generator draws it
    (``===============<19 digits>==``), after heads of every kind: Django's
    ``multipart/alternative; ``, generated words, separators, white space,
    non-ASCII text, the stand-in itself; and boundaries of other shapes."""
    draw = random.Random(2016)
    heads = ["multipart/alternative; ", "multipart/mixed; ", "multipart/related; "]
    for _ in range(count):
        boundary = "=" * 15 + f"{draw.randrange(10**19):019d}" + "=="
        if draw.random() < 0.05:
            boundary += ".0"  # A second draw: not the usual shape.
        if draw.random() < 0.3:
            head = "".join(draw.choice(_PIECES) for _ in range(draw.randint(0, 6)))
            head += draw.choice(["; ", ";", " ", ""])
        else:
            head = draw.choice(heads)
        yield f'{head}boundary="{boundary}"'


_PIECES = ["word", "x" * 30, " ", "\t", ";", ",", "é", "=" * 15 + "0" * 19 + "==", '"']


@pytest.mark.parametrize("length", [0, 20, 40, 78, 998])
@pytest.mark.parametrize("linesep", ["\r\n", "\n"])
def test_compat32_drawn_boundaries_fold_as_stock_compat32_folds_them(length, linesep):
    """The stand-in for each message's boundary against ``Header.encode`` of
    the real value, over 3,000 generated values per line length."""
    policy = policies.COMPAT32.clone(linesep=linesep, max_line_length=length)
    stock = email.policy.compat32.clone(linesep=linesep, max_line_length=length)
    shortcut = 0
    for value in _multipart_values(3_000):
        for name in ["Content-Type", "X-A-Rather-Long-Header-Name-Indeed"]:
            shortcut += policies._DRAWN_BOUNDARY.fullmatch(value) is not None
            assert _folded(policy, name, value) == _folded(stock, name, value)
    assert shortcut > 3_000


def _as_parsed(header):
    """What a parsed header shows: its type, text, defects, MIME parts."""
    return (
        type(header).__mro__[1 if type(header).__name__.startswith("_") else 0],
        str(header),
        header.name,
        [str(defect) for defect in header.defects],
        dict(getattr(header, "params", {})),
        getattr(header, "content_type", None),
    )


def _fold(header, policy):
    try:
        return header.fold(policy=policy)
    except Exception as error:  # The same failure (the stdlib's, at 20).
        return type(error)


@pytest.mark.parametrize("length", [0, 20, 40, 78, 998])
def test_modern_drawn_boundaries_parse_and_fold_as_the_standard_registry(length):
    """The stand-in header for each message's boundary (Django 6.x) against
    the standard ``HeaderRegistry``'s parse and fold, over 1,000 generated
    values per line length and policy."""
    for fast, stock in [
        (policies.SMTP, email.policy.SMTP),
        (policies.SMTPUTF8, email.policy.SMTPUTF8),
    ]:
        fast = fast.clone(max_line_length=length)
        stock = stock.clone(max_line_length=length)
        shortcut = 0
        for value in _multipart_values(1_000):
            for name in ["Content-Type", "X-A-Rather-Long-Header-Name-Indeed"]:
                shortcut += policies._DRAWN_BOUNDARY.fullmatch(value) is not None
                ours = fast.header_factory(name, value)
                theirs = stock.header_factory(name, value)
                assert _as_parsed(ours) == _as_parsed(theirs), value
                assert _fold(ours, fast) == _fold(theirs, stock), value
        assert shortcut > 1_000
