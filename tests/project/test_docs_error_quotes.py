"""Every error text quoted in ``docs/`` is what the code says.

The docs quote error texts one way only: in a fenced block whose language is
``error``. Each line of such a block is one quote; a line that starts with a
space or a tab continues the quote above it (a check's ``HINT:`` line, the
second line of an assertion). For every quote, :data:`QUOTES` names a case
that raises the real error; the error's text must equal the quote or begin
with it (Django's words quoted alone, a hint after them). A quote with no
case fails, so a new quote cannot go unchecked.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.mail import EmailMessage
from django.test import override_settings

from hypermail_django import options_from_env
from hypermail_django.backends import FluxMailBackend
from hypermail_django.compat import MAILERS_SUPPORTED
from hypermail_django.conf.mailer_options import resolve_options
from hypermail_django.exceptions import ConfigurationError
from hypermail_django.testing import SMTPTestServer
from hypermail_django.transport import TransportConfig, failures

from ..conftest import BACKEND, legacy_settings
from ..paths import ROOT

DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```error\n(.*?)^```", re.S | re.M)
WHERE = "host:port"  # how the docs write a server's address


def quotes() -> Iterator[tuple[str, str]]:
    """``(page, quote)`` for every quote in an ``error`` block of docs/*.md."""
    for page in sorted(DOCS.glob("*.md")):
        for block in BLOCK.findall(page.read_text()):
            current: list[str] = []
            for line in block.splitlines():
                if line[:1] in (" ", "\t") and current:
                    current.append(line)
                    continue
                if current:
                    yield page.name, "\n".join(current)
                current = [line] if line.strip() else []
            if current:
                yield page.name, "\n".join(current)


# -- cases: each raises the real error and returns its text ----------------------


def _error(build: Callable[[], Any]) -> str:
    with pytest.raises(ConfigurationError) as caught:
        build()
    return str(caught.value)


def _legacy(**settings: Any) -> str:
    with legacy_settings(**settings):
        return _error(FluxMailBackend)


def _mailer(alias: str = "transactional", **options: Any) -> str:
    return _error(lambda: resolve_options(options, alias=alias))


def _keyword(**options: Any) -> str:
    return _error(lambda: FluxMailBackend(host="h", **options))


def _env(**variables: str) -> str:
    return _error(lambda: FluxMailBackend(host="h", **options_from_env(variables)))


def _unknown_keyword() -> str:
    if MAILERS_SUPPORTED:
        pytest.skip("Django 6.1 warns in its own words; this is the 5.2/6.0 one")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FluxMailBackend(host="h", max_retry=3)
    return str(caught[0].message)


def _send(message: EmailMessage | None = None, **options: Any) -> str:
    """Send through a real test server; the error's text, its address as
    ``host:port``."""
    message = message or EmailMessage("Hello", "Hi", "a@example.com", ["b@example.com"])
    with SMTPTestServer(auth_require_tls=False) as server:
        backend = FluxMailBackend(host=server.host, port=server.port, **options)
        with pytest.raises(Exception) as caught:
            backend.send_messages([message])
        where = f"{server.host}:{server.port}"
    return str(caught.value).replace(where, WHERE)


def _defaults(build: Callable[[TransportConfig], Any]) -> str:
    """A timeout's text at the default timeouts, from the function that the
    drivers raise it with (tests/transport/test_connect_timeout.py and test_retry.py
    make the drivers raise these against servers that hang)."""
    return str(build(TransportConfig()))


def _check(check_id: str, **settings: Any) -> str:
    """The check as ``manage.py check`` prints it."""
    with override_settings(**settings):
        found = [m for m in run_checks(tags=["hypermail"]) if m.id == check_id]
    assert found, f"{check_id} did not fire"
    return str(found[0])


def _on_61(case: Callable[[], str]) -> Callable[[], str]:
    def run() -> str:
        if not MAILERS_SUPPORTED:
            pytest.skip("the quote is the MAILERS form (Django 6.1)")
        return case()

    return run


def _on_legacy(case: Callable[[], str]) -> Callable[[], str]:
    def run() -> str:
        if MAILERS_SUPPORTED:
            pytest.skip("the quote is the EMAIL_* form (Django 5.2/6.0)")
        return case()

    return run


def _mailers_check(check_id: str, **options: Any) -> str:
    mailers = {"default": {"BACKEND": BACKEND, "OPTIONS": options}}
    return _check(check_id, MAILERS=mailers)


def _routing_check() -> str:
    from hypermail_django.routing.order import reset_local_state

    mailers = {
        "default": {
            "BACKEND": "hypermail_django.backends.RoutingBackend",
            "OPTIONS": {"mailers": ["a"], "strategy": "random"},
        },
        "a": {"BACKEND": BACKEND, "OPTIONS": {"host": "127.0.0.1"}},
    }
    reset_local_state()
    try:
        return _check("hypermail.E050", MAILERS=mailers)
    finally:
        reset_local_state()


def _assertion() -> str:
    from hypermail_django.testing.assertions import assert_sent

    sent = EmailMessage("Receipt", "x", "app@example.com", ["bob@example.com"])
    with pytest.raises(AssertionError) as caught:
        assert_sent([sent], to="alice@example.com")
    return f"AssertionError: {caught.value}"


#: The start of each quote -> the case that raises its error. A quote must
#: start with exactly one key.
QUOTES: dict[str, Callable[[], str]] = {
    # Django's and smtplib's words (compatibility.md).
    "STARTTLS extension not supported by server.": lambda: _send(use_tls=True),
    "SMTP AUTH extension not supported by server.": lambda: _send(
        username="u", password="p"
    ),
    "EMAIL_USE_TLS/EMAIL_USE_SSL are mutually exclusive": lambda: _legacy(
        EMAIL_USE_TLS=True, EMAIL_USE_SSL=True
    ),
    "MAILERS['x']: OPTIONS must define 'host'.": lambda: _mailer("x"),
    "MAILERS['x']: Unknown options 'a', 'b'.": lambda: _mailer("x", host="h", a=1, b=2),
    # Validation (configuration.md).
    "EMAIL_FLUXMAIL_MAX_RETRIES must be a whole number >= 0, got -1.": lambda: _legacy(
        EMAIL_FLUXMAIL_MAX_RETRIES=-1
    ),
    "EMAIL_FLUXMAIL_MAX_RETRIES must be a whole number >= 0, got 1.5.": lambda: _legacy(
        EMAIL_FLUXMAIL_MAX_RETRIES=1.5
    ),
    "EMAIL_FLUXMAIL_RETRY_DELAY must": lambda: _legacy(
        EMAIL_FLUXMAIL_RETRY_DELAY="soon"
    ),
    "EMAIL_PORT must": lambda: _legacy(EMAIL_PORT=70000),
    "EMAIL_USE_TLS must": lambda: _legacy(EMAIL_USE_TLS="False"),
    "EMAIL_TIMEOUT must": lambda: _legacy(EMAIL_TIMEOUT=0),
    "EMAIL_HOST (or the 'host' option) is empty": lambda: _legacy(EMAIL_HOST=""),
    "MAILERS['transactional']['OPTIONS']['max_retries']": lambda: _mailer(
        host="h", max_retries=-1
    ),
    "MAILERS['transactional']['OPTIONS']['port']": lambda: _mailer(host="h", port="x"),
    "MAILERS['transactional']: The 'use_ssl' and 'use_tls'": lambda: _mailer(
        host="h", use_tls=True, use_ssl=True
    ),
    "MAILERS['transactional']: OPTIONS must define 'host'.": lambda: _mailer(),
    "MAILERS['transactional']: Unknown options 'retry_dely'.": lambda: _mailer(
        host="h", retry_dely=1
    ),
    "FluxMailBackend: Unknown options 'max_retry'.": _unknown_keyword,
    "the 'max_retries' option must": lambda: _keyword(max_retries=-2),
    "FLUXMAIL_TLS must": lambda: _env(FLUXMAIL_TLS="maybe"),
    "FLUXMAIL_PORT must": lambda: _env(FLUXMAIL_PORT="smtp"),
    "FLUXMAIL_RETRY_DELAY must": lambda: _env(FLUXMAIL_RETRY_DELAY="later"),
    "FLUXMAIL_MAX_RETRIES must": lambda: _env(FLUXMAIL_MAX_RETRIES="-1"),
    "FLUXMAIL_TIMEOUT must": lambda: _env(FLUXMAIL_TIMEOUT="0"),
    # Sending (errors.md, configuration.md#timeout).
    "Invalid address 'not-an-address'": lambda: _send(
        EmailMessage("Hello", "Hi", "a@example.com", ["not-an-address"])
    ),
    "STARTTLS extension not supported by server. host:port": lambda: _send(
        use_tls=True
    ),
    "SMTP AUTH extension not supported by server. host:port": lambda: _send(
        username="u", password="p"
    ),
    "host:port did not accept a connection": lambda: _defaults(
        lambda c: failures.setup_timeout(
            WHERE, c.greeting_timeout, "the greeting", connecting=True
        )
    ),
    "No SMTP greeting from host:port": lambda: _defaults(
        lambda c: failures.setup_timeout(WHERE, c.greeting_timeout, "the greeting")
    ),
    "host:port did not answer within 30 s (waiting for the reply to EHLO)": lambda: (
        _defaults(lambda c: failures.setup_timeout(WHERE, c.timeout, "EHLO"))
    ),
    "host:port did not answer within 30 s (waiting for the reply to MAIL FROM)": (
        lambda: _defaults(
            lambda c: failures.reply_timeout(WHERE, c.timeout, "MAIL FROM")
        )
    ),
    # The pytest plugin's assertions (pytest-plugin.md).
    "AssertionError: expected 1 message(s) matching": _assertion,
    # System checks (system-checks.md), as manage.py check prints them.
    "?: (hypermail.E001)": _on_61(
        lambda: _mailers_check("hypermail.E001", host="h", use_tls=True, use_ssl=True)
    ),
    "?: (hypermail.E003)": _on_legacy(
        lambda: _check(
            "hypermail.E003",
            EMAIL_BACKEND=BACKEND,
            EMAIL_FLUXMAIL_MAX_RETRIES=-1,
        )
    ),
    "?: (hypermail.E040)": lambda: _check("hypermail.E040", HYPERMAIL_LOG_KEEP="body"),
    "?: (hypermail.E050)": _on_61(_routing_check),
    "?: (hypermail.E060)": _on_61(
        lambda: _mailers_check(
            "hypermail.E060", host="h", ssl_certfile="/etc/ssl/absent.pem"
        )
    ),
}


def _key(quote: str) -> str:
    keys = [key for key in QUOTES if quote.startswith(key)]
    assert keys, f"no case in QUOTES for the quote {quote[:80]!r}"
    return max(keys, key=len)  # the most specific


ALL = list(quotes())


def test_the_docs_quote_errors():
    pages = {page for page, _ in ALL}
    assert {"configuration.md", "errors.md", "system-checks.md"} <= pages
    assert len(ALL) >= 35


@pytest.mark.django_db
@pytest.mark.parametrize(("page", "quote"), ALL, ids=[f"{p}:{q[:50]}" for p, q in ALL])
def test_every_quoted_error_is_what_the_code_says(page: str, quote: str) -> None:
    text = QUOTES[_key(quote)]()
    assert text == quote or text.startswith(quote), (page, text)


def test_every_case_is_quoted_somewhere():
    used = {_key(quote) for _, quote in ALL}
    assert sorted(set(QUOTES) - used) == []


def test_no_error_is_quoted_another_way():
    """An error text in a ``text`` block, a blockquote or between quotes in
    running text would escape the check: outside ``error`` blocks, the start
    of a quoted error appears only as part of a text checked above (the JSON
    output of a command, say, repeating a checked message)."""
    checked = [quote for _, quote in ALL]
    for page in sorted(DOCS.glob("*.md")):
        outside = BLOCK.sub("", page.read_text())
        for key in QUOTES:
            if len(key) < 18 or key.startswith("MAILERS['x']"):
                continue  # too short to tell a quote from prose
            for found in re.finditer(re.escape(key), outside):
                rest = outside[found.start() :]
                assert any(rest.startswith(q) for q in checked), (
                    f"{page.name} quotes an error outside an error block: {rest[:80]!r}"
                )
