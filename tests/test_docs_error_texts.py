"""Every error text quoted in the docs is what the code says: the messages of
configuration.md's Validation section are produced here by the real code for
the cases they describe, and the words quoted from Django and smtplib are the
ones our errors begin with (and Django's own backend uses)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import pytest

from hypermail_django import options_from_env
from hypermail_django.backends import FluxMailBackend
from hypermail_django.compat import MAILERS_SUPPORTED
from hypermail_django.conf import TLS_AND_SSL, TLS_AND_SSL_MAILER, resolve_options
from hypermail_django.exceptions import ConfigurationError
from hypermail_django.transport import failures

from .conftest import legacy_settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _error(build: Any) -> str:
    with pytest.raises(ConfigurationError) as caught:
        build()
    return str(caught.value)


def _legacy(**settings: Any) -> str:
    with legacy_settings(**settings):
        return _error(FluxMailBackend)


def _mailer(**options: Any) -> str:
    return _error(lambda: resolve_options(options, alias="transactional"))


def _unknown_keyword() -> str:
    if MAILERS_SUPPORTED:  # Django's own warning there; ours is the 5.2/6.0 one
        pytest.skip("the UserWarning text is Django 5.2/6.0's")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FluxMailBackend(host="h", max_retry=3)
    return str(caught[0].message)


def _env(**variables: str) -> str:
    def build() -> None:
        FluxMailBackend(host="h", **options_from_env(variables))

    return _error(build)


def produced() -> set[str]:
    """What the code says for each case the Validation section quotes."""
    return {
        _legacy(EMAIL_USE_TLS=True, EMAIL_USE_SSL=True),
        _legacy(EMAIL_FLUXMAIL_MAX_RETRIES=-1),
        _legacy(EMAIL_FLUXMAIL_MAX_RETRIES=1.5),
        _legacy(EMAIL_FLUXMAIL_RETRY_DELAY="soon"),
        _legacy(EMAIL_PORT=70000),
        _legacy(EMAIL_USE_TLS="False"),
        _legacy(EMAIL_TIMEOUT=0),
        _legacy(EMAIL_HOST=""),
        _mailer(host="h", max_retries=-1),
        _mailer(host="h", port="x"),
        _mailer(host="h", use_tls=True, use_ssl=True),
        _mailer(),
        _mailer(host="h", retry_dely=1),
        _unknown_keyword(),
        _error(lambda: FluxMailBackend(host="h", max_retries=-2)),
        _env(FLUXMAIL_TLS="maybe"),
        _env(FLUXMAIL_PORT="smtp"),
        _env(FLUXMAIL_RETRY_DELAY="later"),
        _env(FLUXMAIL_MAX_RETRIES="-1"),
        _env(FLUXMAIL_TIMEOUT="0"),
    }


def quoted_in_validation() -> list[str]:
    text = (DOCS / "configuration.md").read_text()
    section = text.split("## Validation", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```text\n(.*?)```", section, re.S)
    return [line for block in blocks for line in block.splitlines() if line]


def test_every_message_of_the_validation_section_is_the_codes() -> None:
    quoted = quoted_in_validation()
    assert len(quoted) >= 15  # the section was found and read
    assert sorted(set(quoted) - produced()) == []


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


def test_the_timeout_texts_quoted_in_errors_md_are_the_codes() -> None:
    text = (DOCS / "errors.md").read_text()
    where = "host:port"
    for error in (
        failures.setup_timeout(where, 10, "the greeting"),
        failures.setup_timeout(where, 10, "the greeting", connecting=True),
        failures.setup_timeout(where, 30, "EHLO"),
        failures.reply_timeout(where, 30, "MAIL FROM"),
    ):
        quoted = str(error).removeprefix(f"{where} ")
        assert quoted in text, quoted
