"""The words quoted from Django and smtplib are the ones our errors begin with,
and Django's own backend and smtplib use them. (Every error text quoted in
docs/ is checked against the real error by test_docs_error_quotes.py.)"""

from __future__ import annotations

import re

import pytest

from hypermail_django.conf.mailer_options import TLS_AND_SSL, TLS_AND_SSL_MAILER
from hypermail_django.transport import failures

from ..paths import ROOT

DOCS = ROOT / "docs"


#: Words our errors begin with, where Django's backend (or smtplib) has them.
DJANGOS_WORDS = {
    "STARTTLS extension not supported by server.": failures.STARTTLS_UNSUPPORTED,
    "SMTP AUTH extension not supported by server.": failures.AUTH_UNSUPPORTED,
    "EMAIL_USE_TLS/EMAIL_USE_SSL are mutually exclusive, so only set one of "
    "those settings to True.": TLS_AND_SSL,
    "The 'use_ssl' and 'use_tls' OPTIONS are incompatible. Set at most one of "
    "them to True.": TLS_AND_SSL_MAILER,
}


@pytest.mark.parametrize("words", sorted(DJANGOS_WORDS))
def test_the_words_quoted_from_django_are_ours(words: str) -> None:
    assert DJANGOS_WORDS[words] == words
    quoted = " ".join(
        (DOCS / page).read_text() for page in ("compatibility.md", "errors.md")
    )
    if "OPTIONS are incompatible" not in words:
        assert " ".join(words.split()) in " ".join(quoted.split())


def test_the_words_come_from_djangos_backend_and_smtplib() -> None:
    import inspect
    import smtplib

    from django.core.mail.backends import smtp

    assert failures.STARTTLS_UNSUPPORTED in inspect.getsource(smtplib)
    assert failures.AUTH_UNSUPPORTED in inspect.getsource(smtplib)
    # Adjacent string literals joined, as Python joins them.
    django_source = re.sub(r'"\s+"', "", inspect.getsource(smtp))
    assert TLS_AND_SSL in django_source
