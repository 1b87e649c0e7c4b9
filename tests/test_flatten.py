"""What we serialize is byte for byte what Django's own backend would send."""

from __future__ import annotations

import email.generator
import random

import pytest

from hypermail_django.compat import serialize
from hypermail_django.flatten import BytesGenerator

from .conftest import djangos_bytes
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
            assert data == expected
            assert message_id == FIXED["Message-ID"]


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
