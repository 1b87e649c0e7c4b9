"""DKIM signatures verified by a real MTA: Postfix with an OpenDKIM milter.

Our mail goes to Debian's Postfix on loopback, whose smtpd hands it to
OpenDKIM (verify mode; the public keys as DNS would publish them, from a
``TestPublicKeys`` file); Postfix then relays it to an in-process SMTP server,
where the test reads OpenDKIM's verdict in ``Authentication-Results``. See
``tests/dkim_fixtures/mta.py`` for how the pair is started and stopped.
"""

from __future__ import annotations

import os
import re
import smtplib
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import mail
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.test import override_settings

import hypermail_django
from hypermail_django.backends import FluxMailBackend
from hypermail_django.background import enqueue_messages
from hypermail_django.background.framework import MODULE
from hypermail_django.bulk import send_bulk
from hypermail_django.testing import SMTPTestServer

from ..conftest import mailer_for
from ..dkim_fixtures.keys import DOMAIN, ED25519, RSA, records
from ..dkim_fixtures.mta import MTA, available, running_mta

BOTH = [RSA.option, ED25519.option]


@pytest.fixture(scope="session")
def mta_and_sink() -> Iterator[tuple[MTA, SMTPTestServer]]:
    problem = available()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the MTA tests: {problem}")
        pytest.skip(problem)
    with SMTPTestServer() as sink, running_mta(sink.port, records()) as mta:
        yield mta, sink


@pytest.fixture
def mta(mta_and_sink: tuple[MTA, SMTPTestServer]) -> MTA:
    mta_and_sink[1].reset()
    return mta_and_sink[0]


@pytest.fixture
def sink(mta_and_sink: tuple[MTA, SMTPTestServer]) -> SMTPTestServer:
    return mta_and_sink[1]


def verdicts(sink: SMTPTestServer, mta: MTA, n: int = 1) -> list[list[str]]:
    """OpenDKIM's dkim= results for each of the first ``n`` relayed messages,
    in the order the signatures were checked."""
    try:
        received = sink.wait_for_messages(n, timeout=30)
    except AssertionError as error:
        raise AssertionError(f"{error}\nPostfix log:\n{mta.log()}") from None
    results = []
    for message in received[:n]:
        header = str(message.message()["Authentication-Results"])
        assert header.startswith("mta.hypermail.test"), header
        results.append(re.findall(r"dkim=(\w+)", header))
    return results


def _backend(mta: MTA, **options: Any) -> FluxMailBackend:
    return FluxMailBackend(host=mta.host, port=mta.port, dkim=BOTH, **options)


def _message(**kwargs: Any) -> EmailMessage:
    fields = {
        "subject": "Your receipt",
        "body": "Thank you.\n.\nA dot line, dot-stuffed on the wire.\n",
        "from_email": f"Shop <shop@{DOMAIN}>",
        "to": ["alice@customer.test"],
        **kwargs,
    }
    return EmailMessage(**fields)


def test_plain_text(mta, sink):
    _backend(mta).send_messages([_message()])
    assert verdicts(sink, mta) == [["pass", "pass"]]


def test_html_attachments_and_non_ascii_headers(mta, sink):
    message = EmailMultiAlternatives(
        "Reçu n° 42 — merci",
        "Merci !",
        f"Boutique Été <shop@{DOMAIN}>",
        ["Zoë Müller <zoe@customer.test>"],
        cc=["compta@customer.test"],
        headers={"X-Campaign": "Été ☀"},
    )
    message.attach_alternative("<p>Merci <b>beaucoup</b> !</p>" * 200, "text/html")
    message.attach("receipt.pdf", b"%PDF-1.4 " + bytes(range(256)) * 64)
    message.attach("notes.txt", "Ligne 1\nLigne 2 — fin\n")
    _backend(mta).send_messages([message])
    assert verdicts(sink, mta) == [["pass", "pass"]]


def test_smtputf8(mta, sink):
    _backend(mta).send_messages([_message(to=["josé@customer.test"], subject="Olá")])
    assert verdicts(sink, mta) == [["pass", "pass"]]
    assert sink.messages[0].smtputf8


def test_a_tampered_body_fails(mta, sink):
    envelope = _backend(mta).prepare(_message())
    assert envelope is not None
    tampered = envelope.data.replace(b"Thank you.", b"Thank you!")
    with smtplib.SMTP(mta.host, mta.port) as client:
        client.sendmail(envelope.mail_from, list(envelope.recipients), tampered)
    assert verdicts(sink, mta) == [["fail", "fail"]]


def test_send_mail(mta, sink):
    with mailer_for(mta, dkim=BOTH):
        mail.send_mail("Hi", "Body", f"shop@{DOMAIN}", ["a@customer.test"])
    assert verdicts(sink, mta) == [["pass", "pass"]]


@pytest.mark.asyncio
async def test_async_path(mta, sink, close_async_pools):
    with mailer_for(mta, dkim=BOTH):
        await hypermail_django.asend_mail(
            "Hi", "Body", f"shop@{DOMAIN}", ["a@customer.test"]
        )
    assert verdicts(sink, mta) == [["pass", "pass"]]


@pytest.fixture
def workers(monkeypatch):
    from hypermail_django.bulk import preparation

    monkeypatch.setattr(preparation, "_settings_module", lambda: "tests.settings")


def test_bulk_path_with_worker_processes(mta, sink, workers):
    messages = [_message(subject=f"Digest {n}") for n in range(6)]
    with mailer_for(mta, dkim=BOTH):
        result = send_bulk(messages, processes=2, progress=False)
    assert result["sent"] == 6
    assert verdicts(sink, mta, 6) == [["pass", "pass"]] * 6


def test_background_path(mta, sink):
    immediate = f"{MODULE}.backends.immediate.ImmediateBackend"
    with (
        override_settings(TASKS={"default": {"BACKEND": immediate}}, ADMINS=[]),
        mailer_for(mta, dkim=BOTH),
    ):
        (result,) = enqueue_messages([_message()])
    assert result.status == "SUCCESSFUL", result.errors
    assert verdicts(sink, mta) == [["pass", "pass"]]
