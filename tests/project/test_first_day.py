"""What a new user meets on the first day: numbers from the environment
accepted for every numeric option, and log lines that read well."""

from __future__ import annotations

import logging
import re

import pytest
from django.core.mail import EmailMessage

from hypermail_django.backends import FluxMailBackend
from hypermail_django.conf.mailer_options import OPTIONS, resolve_options
from hypermail_django.exceptions import ConfigurationError
from hypermail_django.testing import SMTPTestServer
from hypermail_django.transport.results import RecipientStatus

from ..conftest import MakeBackend, legacy_settings

#: Every numeric option and a value for it, written as text (os.environ).
NUMERIC = {
    "port": ("2525", 2525),
    "timeout": ("12.5", 12.5),
    "data_timeout": ("60", 60.0),
    "max_retries": ("3", 3),
    "retry_delay": ("0.5", 0.5),
    "retry_max_delay": ("10", 10.0),
    "pool_size": ("4", 4),
    "max_connection_age": ("300", 300.0),
    "max_messages_per_connection": ("100", 100),
    "token_refresh_margin": ("60", 60.0),
    "limit_wait": ("5", 5.0),
    "connect_timeout": ("5", 5.0),
}


@pytest.mark.parametrize("name", sorted(NUMERIC))
def test_numeric_strings_are_coerced_alike_for_every_numeric_option(name):
    text, number = NUMERIC[name]
    FluxMailBackend(host="h", **{name: text})  # accepted by the backend
    assert resolve_options({"host": "h", name: text})[name] == number
    with legacy_settings(**{OPTIONS[name].setting: text}):
        assert resolve_options({"host": "h"})[name] == number


def test_the_list_covers_every_numeric_option():
    numeric = {
        name
        for name, option in OPTIONS.items()
        if option.check.__name__ in {"_port", "count", "_seconds", "_timeout"}
    }
    assert numeric == set(NUMERIC)


@pytest.mark.parametrize("text", ["three", "-1", "1.5", "nan", "inf"])
def test_text_that_is_not_a_whole_number_is_still_refused(text):
    with pytest.raises(ConfigurationError, match="max_retries"):
        FluxMailBackend(host="h", max_retries=text)


@pytest.mark.parametrize(
    ("status", "summary"),
    [
        (
            RecipientStatus("refused", None, "The certificate failed"),
            "The certificate failed",
        ),
        (
            RecipientStatus("refused", 550, "550 5.1.1 No such user"),
            "550 5.1.1 No such user",
        ),
        (
            RecipientStatus("refused", 550, "5.1.1 No such user"),
            "550 5.1.1 No such user",
        ),
        (RecipientStatus("deferred", None, ""), "no reply"),
    ],
)
def test_a_status_summary_never_says_none_nor_the_code_twice(status, summary):
    assert status.summary == summary


def test_the_undelivered_log_line_reads_well(
    make_backend: MakeBackend, server: SMTPTestServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.fail("RCPT", "550 5.1.1 No such user", match="b@example.com")
    message = EmailMessage(
        "Hi", "Body", "from@example.com", ["a@example.com", "b@example.com"]
    )
    with caplog.at_level(logging.WARNING, logger="hypermail_django"):
        make_backend().send_messages([message])
    (line,) = [
        r.getMessage() for r in caplog.records if "b@example.com" in r.getMessage()
    ]
    assert "None" not in line
    # The code once, followed by its text (the Message-ID's digits may hold "550").
    assert "(550 5.1.1 No such user)" in line, line
    assert line.count("550 ") == 1, line


@pytest.mark.parametrize(
    "address",
    [
        "not-an-address",
        "to@other.com@example.com",
        "to@other.com <to@example.com>",
        "a@example.com, b@example.com",
        "@",
        "to@",
        "@example.com",
        '"evil@example.com\r\nto"@example.com',
        "to\nevil@example.com",
    ],
)
@pytest.mark.parametrize("field", ["to", "cc", "bcc"])
def test_invalid_recipients_are_refused_before_anything_is_sent(
    make_backend: MakeBackend, server: SMTPTestServer, address: str, field: str
) -> None:
    from hypermail_django.exceptions import InvalidEmail

    good = EmailMessage("First", "Body", "from@example.com", ["ok@example.com"])
    bad = EmailMessage("Second", "Body", "from@example.com", **{field: [address]})
    with pytest.raises(InvalidEmail) as caught:
        make_backend().send_messages([good, bad])
    assert caught.value.code == "invalid_email"
    assert "Invalid address" in str(caught.value)  # Django's words, a ValueError
    assert isinstance(caught.value, ValueError)
    assert server.sessions == 0  # not even the valid message went out


def test_a_local_sender_mailbox_is_still_accepted(
    make_backend: MakeBackend, server: SMTPTestServer
) -> None:
    # Django allows "From: webmaster" (#15042); only recipients need a domain.
    message = EmailMessage("Hi", "Body", "webmaster", ["to@example.com"])
    assert make_backend().send_messages([message]) == 1


@pytest.mark.parametrize("from_email", ["jörg@example.com", "Jörg <jörg@example.com>"])
def test_an_smtputf8_message_has_utf8_addresses_never_encoded_words(
    make_backend: MakeBackend, server: SMTPTestServer, from_email: str
) -> None:
    # Django 5.2 alone wrote From: =?utf-8?b?...?=@example.com (RFC 2047
    # section 5 forbids an encoded word in an address); 6.x writes UTF-8.
    message = EmailMessage(
        "UTF8", "Body", from_email, ["andré@example.com"], reply_to=["zoë@example.com"]
    )
    assert make_backend().send_messages([message]) == 1
    (received,) = server.messages
    assert received.smtputf8 is True
    headers = received.data.split(b"\r\n\r\n", 1)[0].decode("utf-8")
    lines = {line.split(":", 1)[0]: line for line in headers.split("\r\n")}
    assert "jörg@example.com" in lines["From"]
    assert lines["To"] == "To: andré@example.com"
    assert lines["Reply-To"] == "Reply-To: zoë@example.com"
    # A display name may be an encoded word (5.2); an address part never.
    assert not re.search(r"\?=@", headers)


def test_lazy_addresses_with_a_domain_are_sent(
    make_backend: MakeBackend, server: SMTPTestServer
) -> None:
    from django.utils.translation import gettext_lazy

    message = EmailMessage(
        "Lazy",
        "Body",
        gettext_lazy("from@example.com"),
        [gettext_lazy("to@example.com")],
        cc=[gettext_lazy("cc@example.com")],
    )
    assert make_backend().send_messages([message]) == 1
    (received,) = server.messages
    assert received.mail_from == "from@example.com"
    assert received.rcpt_tos == ["to@example.com", "cc@example.com"]
