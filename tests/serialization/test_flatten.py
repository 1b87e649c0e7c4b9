"""What we serialize is byte for byte what Django's own backend would send."""

from __future__ import annotations

import email.generator
import random
import re
from email.header import decode_header

import pytest
from django.core.mail import EmailMultiAlternatives

from hypermail_django.compat import MODERN_EMAIL_API, serialize
from hypermail_django.serialization.flatten import BytesGenerator

from ..conftest import djangos_bytes
from .test_policies import FIXED, corpus


@pytest.mark.parametrize("smtputf8", [False, True], ids=["ascii", "smtputf8"])
def test_serialize_writes_what_django_writes(smtputf8):
    """Policies, reused headers and the boundary check together, over a batch."""
    for _ in range(3):
        for message in corpus():
            message.extra_headers.update(FIXED)
            random.seed(2026)  # MIME boundaries are random: make them the same
            expected = djangos_bytes(message, smtputf8)
            random.seed(2026)
            data, message_id = serialize(message, smtputf8=smtputf8)
            if smtputf8 and not MODERN_EMAIL_API:
                expected = _utf8_local_parts(expected)
            assert data == expected
            assert message_id == FIXED["Message-ID"]


def _utf8_local_parts(django_bytes: bytes) -> bytes:
    """Django 5.2's bytes with its one deliberate difference undone: an
    encoded word used as a local part (RFC 2047 section 5 forbids it) becomes
    the UTF-8 local part, as Django 6.x writes it (test_first_day.py)."""

    def decoded(match: re.Match[bytes]) -> bytes:
        ((data, charset),) = decode_header(match.group(0).decode("ascii"))
        assert isinstance(data, bytes)
        return data.decode(charset).encode("utf-8")

    head, sep, body = django_bytes.partition(b"\r\n\r\n")
    return (
        re.sub(rb"=\?utf-8\?[bq]\?[^?]*\?=(?=@)", decoded, head, flags=re.I)
        + sep
        + body
    )


def test_a_boundary_found_in_the_text_is_replaced_as_the_standard_one_is():
    random.seed(7)
    drawn = email.generator.BytesGenerator._make_boundary()
    text = f"intro\n--{drawn}\nmore\n--{drawn}.0--\nend".encode("ascii")
    random.seed(7)
    expected = email.generator.BytesGenerator._make_boundary(text)
    random.seed(7)
    assert BytesGenerator._make_boundary(text) == expected == drawn + ".1"


def test_a_boundary_only_inside_a_line_is_kept():
    random.seed(7)
    drawn = email.generator.BytesGenerator._make_boundary()
    text = f"this line mentions --{drawn} in passing\n".encode("ascii")
    random.seed(7)
    assert BytesGenerator._make_boundary(text) == drawn


def _random_text(rng: random.Random) -> str:
    """Text made of what matters to line splitting: every line end (CRLF, CR,
    LF, and CR LF pairs split across choices), blank lines, a trailing or no
    trailing end, surrogate-escaped bytes, and non-ASCII text (which both
    refuse)."""
    pieces = ["\r\n", "\r", "\n", "\n\r", "a", "b c", " ", "\udcff", "=\n", ".", ""]
    if rng.random() < 0.5:  # Only LF ends, as Django's builder writes them.
        pieces = [piece for piece in pieces if "\r" not in piece]
    if rng.random() < 0.1:
        pieces.append("é")
    return "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 40)))


@pytest.mark.parametrize("linesep", ["\r\n", "\n"])
def test_body_lines_are_written_as_the_standard_generator_writes_them(linesep):
    """Our one-pass ``_write_lines`` against the standard line-by-line one,
    over 20,000 generated texts."""
    from io import BytesIO

    rng = random.Random(16)
    refused = lf_only = 0
    for _ in range(20_000):
        text = _random_text(rng)
        written = []
        for generator_class in (email.generator.BytesGenerator, BytesGenerator):
            buffer = BytesIO()
            generator = generator_class(buffer)
            generator._NL = linesep
            try:
                generator._write_lines(text)
            except UnicodeEncodeError:
                written.append(None)  # Nothing of it reaches the wire.
            else:
                written.append(buffer.getvalue())
        assert written[0] == written[1], text
        refused += written[0] is None
        lf_only += "\r" not in text and "\n" in text
    assert 0 < refused < 5_000  # Every kind of text was generated.
    assert 5_000 < lf_only < 15_000


def test_every_part_is_written_with_the_one_policy_of_the_message():
    """No copy of the policy per part: what a policy folded before (a part's
    ``Content-Type: text/plain; charset="utf-8"``...) is reused by every part."""
    from email._policybase import Compat32

    from hypermail_django.serialization.flatten import flatten

    class Recording(Compat32):
        def fold_binary(self, name, value):
            used.append(self)
            return super().fold_binary(name, value)

    used: list[Compat32] = []
    message = EmailMultiAlternatives("Hi", "text", "a@example.com", ["b@example.com"])
    message.attach_alternative("<p>html</p>", "text/html")
    mime = message.message()
    mime.policy = Recording(linesep="\r\n")
    data = flatten(mime, linesep="\r\n")
    assert len(used) >= 9 and all(policy is used[0] for policy in used)
    assert data.count(b'Content-Type: text/plain; charset="utf-8"\r\n') == 1
