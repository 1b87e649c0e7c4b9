"""DKIM signing: what the SMTP server receives verifies, on every sending path.

Signatures are checked by dkimpy against the test keys' DNS records (handed to
its ``dnsfunc``); ``tests/outbound/test_dkim_mta.py`` has Postfix with OpenDKIM verify
them too. Bytes are read from a real in-process SMTP server, as received.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterator
from typing import Any

import dkim
import dns.resolver
import pytest
from django.core import mail
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.test import override_settings

import hypermail_django
from hypermail_django.background import enqueue_messages
from hypermail_django.background.framework import MODULE
from hypermail_django.bulk import send_bulk
from hypermail_django.checks import check_dkim
from hypermail_django.exceptions import ConfigurationError, DKIMDomainMismatch
from hypermail_django.outbound.dkim import (
    check_dns,
    dns_lookup,
    parse_dkim,
)

from ..conftest import mailer_for
from ..dkim_fixtures.keys import (
    DOMAIN,
    ED25519,
    RSA,
    WEAK_RSA_PEM,
    dnsfunc,
    ed25519_pem,
    records,
    rsa_pem,
)


def verified(data: bytes, index: int = 0) -> bool:
    """Whether signature ``index`` of ``data`` verifies against the test DNS."""
    try:
        return bool(dkim.DKIM(data).verify(idx=index, dnsfunc=dnsfunc))
    except dkim.DKIMException:
        return False


def signatures(data: bytes) -> list[dict[bytes, bytes]]:
    """The tags of every DKIM-Signature header, in order."""
    parsed = dkim.DKIM(data)
    parsed.verify_headerprep()
    return [
        dkim.util.parse_tag_value(value)
        for name, value in parsed.headers
        if name.lower() == b"dkim-signature"
    ]


def _message(**kwargs: Any) -> EmailMessage:
    fields = {
        "subject": "Your receipt",
        "body": "Thank you.\n.\nA line with a dot, for dot-stuffing.\n",
        "from_email": f"Shop <shop@{DOMAIN}>",
        "to": ["alice@customer.test"],
        **kwargs,
    }
    return EmailMessage(**fields)


# -- signing ----------------------------------------------------------------------


@pytest.mark.parametrize("key", [RSA, ED25519], ids=["rsa", "ed25519"])
def test_a_signed_message_verifies(make_backend, server, key):
    make_backend(dkim=key.option).send_messages([_message()])
    (received,) = server.messages
    assert verified(received.data)
    (tags,) = signatures(received.data)
    assert tags[b"d"] == DOMAIN.encode()
    assert tags[b"s"] == key.selector.encode()
    assert tags[b"a"] == key.algorithm.encode()


def test_rsa_and_ed25519_together(make_backend, server):
    make_backend(dkim=[RSA.option, ED25519.option]).send_messages([_message()])
    data = server.messages[0].data
    assert [t[b"a"] for t in signatures(data)] == [b"ed25519-sha256", b"rsa-sha256"]
    assert verified(data, 0)
    assert verified(data, 1)


def test_a_tampered_body_fails(make_backend, server):
    make_backend(dkim=RSA.option).send_messages([_message()])
    data = server.messages[0].data
    assert not verified(data.replace(b"Thank you.", b"Thank you!"))
    assert not verified(data.replace(b"Subject: Your receipt", b"Subject: Pay now"))


def test_html_attachments_and_non_ascii_headers(make_backend, server):
    message = EmailMultiAlternatives(
        "Reçu n° 42 — merci",
        "Merci !",
        f"Boutique Été <shop@{DOMAIN}>",
        ["Zoë Müller <zoe@customer.test>"],
        headers={"X-Campaign": "Été ☀"},
    )
    message.attach_alternative("<p>Merci <b>beaucoup</b> !</p>", "text/html")
    message.attach("receipt.pdf", b"%PDF-1.4 " + bytes(range(256)) * 8)
    message.attach("notes.txt", "Ligne 1\nLigne 2 — fin\n")
    make_backend(dkim=[RSA.option, ED25519.option]).send_messages([message])
    data = server.messages[0].data
    assert verified(data, 0) and verified(data, 1)


def test_smtputf8(make_backend, server):
    message = _message(to=["josé@customer.test"], subject="Olá")
    make_backend(dkim=[RSA.option, ED25519.option]).send_messages([message])
    received = server.messages[0]
    assert received.smtputf8
    assert verified(received.data, 0) and verified(received.data, 1)


def test_headers_to_sign(make_backend, server):
    option = {**RSA.option, "headers": ["From", "Subject"]}
    make_backend(dkim=option).send_messages([_message()])
    data = server.messages[0].data
    (tags,) = signatures(data)
    assert [h.strip() for h in tags[b"h"].lower().split(b":")] == [b"from", b"subject"]
    assert verified(data)
    assert verified(data.replace(b"To: alice@", b"To: mallory@"))  # To not signed


# -- the From domain ----------------------------------------------------------------


def test_a_foreign_from_domain_is_refused_and_nothing_is_sent(make_backend, server):
    backend = make_backend(dkim=RSA.option)
    good = _message()
    bad = _message(from_email="someone@elsewhere.test")
    with pytest.raises(DKIMDomainMismatch) as caught:
        backend.send_messages([good, bad])
    assert caught.value.code == "dkim_domain_mismatch"
    assert "elsewhere.test" in str(caught.value)
    assert "from_mismatch" in str(caught.value)
    assert server.commands == []  # the whole batch is checked before sending


def test_a_foreign_from_domain_is_signed_when_told_to(make_backend, server):
    backend = make_backend(dkim={**RSA.option, "from_mismatch": "sign"})
    backend.send_messages([_message(from_email="someone@elsewhere.test")])
    data = server.messages[0].data
    assert signatures(data)[0][b"d"] == DOMAIN.encode()
    assert verified(data)


def test_a_subdomain_is_aligned(make_backend, server):
    backend = make_backend(dkim=RSA.option)
    backend.send_messages([_message(from_email=f"news@mail.{DOMAIN}")])
    assert verified(server.messages[0].data)


def test_a_from_header_override_is_what_is_checked(make_backend, server):
    backend = make_backend(dkim=RSA.option)
    message = _message(headers={"From": "Impostor <x@elsewhere.test>"})
    with pytest.raises(DKIMDomainMismatch):
        backend.send_messages([message])


# -- every sending path ----------------------------------------------------------


def test_send_mail_through_the_mailers_settings(server):
    with mailer_for(server, dkim=RSA.option):
        mail.send_mail("Hi", "Body", f"shop@{DOMAIN}", ["a@customer.test"])
    assert verified(server.messages[0].data)


@pytest.mark.asyncio
async def test_async_path(server, close_async_pools):
    with mailer_for(server, dkim=[RSA.option, ED25519.option]):
        await hypermail_django.asend_messages([_message()])
        await hypermail_django.asend_mail(
            "Hi", "Body", f"shop@{DOMAIN}", ["a@customer.test"]
        )
    for received in server.messages:
        assert verified(received.data, 0) and verified(received.data, 1)


@pytest.fixture
def workers(monkeypatch):
    """Serialize in worker processes (see tests/bulk/test_bulk.py): the keys travel
    to them with each chunk, so settings overrides need not."""
    from hypermail_django.bulk import preparation

    monkeypatch.setattr(preparation, "_settings_module", lambda: "tests.settings")


@pytest.mark.parametrize("processes", [0, 2])
def test_bulk_path(server, workers, processes):
    messages = [_message(subject=f"Digest {n}") for n in range(40)]
    messages.append(_message(from_email="x@elsewhere.test"))
    with mailer_for(server, dkim=RSA.option):
        result = send_bulk(messages, processes=processes, progress=False)
    assert (result["sent"], result["failed"]) == (40, 1)
    (index, error), *_ = result["errors"]
    assert (index, error.code) == (40, "dkim_domain_mismatch")
    assert len(server.messages) == 40
    assert all(verified(received.data) for received in server.messages)


@pytest.fixture
def immediate_tasks() -> Iterator[None]:
    backend = f"{MODULE}.backends.immediate.ImmediateBackend"
    with override_settings(TASKS={"default": {"BACKEND": backend}}, ADMINS=[]):
        yield


def test_background_path_signs_in_the_request(server, immediate_tasks, caplog):
    with mailer_for(server, dkim=ED25519.option):
        (result,) = enqueue_messages([_message()])
    assert result.status == "SUCCESSFUL", result.errors
    assert verified(server.messages[0].data)
    # The task payload carries the signed bytes, never the key.
    assert "PRIVATE KEY" not in str(result.args) + str(result.kwargs)


def test_memory_backend_signs_too():
    from hypermail_django.backends import MemoryBackend

    backend = MemoryBackend(dkim=RSA.option)
    message = _message()
    backend.send_messages([message])
    assert verified(hypermail_django.get_outbox()[-1].data)


# -- where the key comes from ------------------------------------------------------


def test_key_from_a_file(make_backend, server, tmp_path):
    path = tmp_path / "dkim.pem"
    path.write_text(RSA.pem)
    make_backend(dkim={**RSA.option, "private_key": str(path)}).send_messages(
        [_message()]
    )
    assert verified(server.messages[0].data)


def test_key_from_an_environment_variable(make_backend, server, monkeypatch):
    monkeypatch.setenv("TEST_DKIM_KEY", ED25519.pem)
    option = {"domain": DOMAIN, "selector": ED25519.selector}
    make_backend(dkim={**option, "private_key_env": "TEST_DKIM_KEY"}).send_messages(
        [_message()]
    )
    assert verified(server.messages[0].data)


def test_ed25519_key_in_dknewkey_format(make_backend, server):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(ED25519.pem.encode(), None)
    seed = key.private_bytes(  # type: ignore[call-arg]
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    option = {**ED25519.option, "private_key": base64.b64encode(seed).decode()}
    make_backend(dkim=option).send_messages([_message()])
    assert verified(server.messages[0].data)


def test_the_key_is_in_no_repr_error_or_log(make_backend, server, caplog):
    caplog.set_level(logging.DEBUG)
    backend = make_backend(dkim=RSA.option)
    backend.send_messages([_message()])
    with pytest.raises(DKIMDomainMismatch) as caught:
        backend.send_messages([_message(from_email="x@elsewhere.test")])
    body = RSA.pem.splitlines()[1]
    for text in (repr(backend.dkim), repr(backend), str(caught.value), caplog.text):
        assert body not in text
        assert "PRIVATE KEY" not in text


# -- bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "code", "words"),
    [
        (
            {"private_key": "/nonexistent/dkim.pem"},
            "dkim_key_unreadable",
            "cannot be read",
        ),
        (
            {
                "private_key": "-----BEGIN PRIVATE KEY-----\nnope\n"
                "-----END PRIVATE KEY-----"
            },
            "dkim_invalid_key",
            "not a valid PEM",
        ),
        ({"algorithm": "rsa-sha1"}, "invalid_dkim", "rsa-sha256, ed25519-sha256"),
        ({"algorithm": "ed25519-sha256"}, "dkim_invalid_key", "is an RSA key"),
        ({"selector": ""}, "invalid_dkim", "'selector'"),
        ({"domain": "not a domain"}, "invalid_dkim", "not a valid DNS name"),
        ({"domain": "localhost"}, "invalid_dkim", "not a valid DNS name"),
        ({"headers": ["Subject"]}, "invalid_dkim", "must include 'From'"),
        ({"from_mismatch": "ignore"}, "invalid_dkim", "'refuse' or 'sign'"),
        ({"privat_key": "x"}, "invalid_dkim", "unknown key"),
        ({"private_key_env": "X"}, "invalid_dkim", "exactly one of"),
    ],
)
def test_bad_options_fail_at_start_up(make_backend, change, code, words):
    with pytest.raises(ConfigurationError) as caught:
        make_backend(dkim={**RSA.option, **change})
    assert caught.value.code == code
    assert words in str(caught.value)
    assert "['dkim']" in str(caught.value) or "'dkim'" in str(caught.value)


def test_an_unset_environment_variable(make_backend, monkeypatch):
    monkeypatch.delenv("NO_SUCH_DKIM_KEY", raising=False)
    option = {"domain": DOMAIN, "selector": "s", "private_key_env": "NO_SUCH_DKIM_KEY"}
    with pytest.raises(ConfigurationError) as caught:
        make_backend(dkim=option)
    assert caught.value.code == "dkim_key_unreadable"
    assert "NO_SUCH_DKIM_KEY" in str(caught.value)


def test_an_encrypted_key(make_backend):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(RSA.pem.encode(), None)
    encrypted = key.private_bytes(  # type: ignore[call-arg]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ).decode()
    with pytest.raises(ConfigurationError) as caught:
        make_backend(dkim={**RSA.option, "private_key": encrypted})
    assert caught.value.code == "dkim_invalid_key"
    assert "encrypted" in str(caught.value)


def test_a_weak_key_is_refused(make_backend):
    with pytest.raises(ConfigurationError) as caught:
        make_backend(dkim={**RSA.option, "private_key": WEAK_RSA_PEM})
    assert caught.value.code == "dkim_weak_key"
    assert "512-bit" in str(caught.value)


def test_an_unreadable_key_file(make_backend, tmp_path):
    path = tmp_path / "dkim.pem"
    path.write_text(RSA.pem)
    path.chmod(0)
    if os.access(path, os.R_OK):  # root reads anything
        path.chmod(0o600)
        path.write_bytes(b"\xff\xfe not ascii")
    with pytest.raises(ConfigurationError) as caught:
        make_backend(dkim={**RSA.option, "private_key": str(path)})
    assert caught.value.code == "dkim_key_unreadable"


# -- system checks ---------------------------------------------------------------


def _check_ids(server: Any, **options: Any) -> list[str]:
    with mailer_for(server, **options):
        return [m.id for m in check_dkim(None)]


def test_system_checks(server, tmp_path):
    assert _check_ids(server, dkim=RSA.option) == []
    missing = {**RSA.option, "private_key": str(tmp_path / "missing.pem")}
    assert _check_ids(server, dkim=missing) == ["hypermail.E030"]
    weak = {**RSA.option, "private_key": WEAK_RSA_PEM}
    assert _check_ids(server, dkim=weak) == ["hypermail.E031"]
    short = {**RSA.option, "private_key": rsa_pem(1024)}
    assert _check_ids(server, dkim=short) == ["hypermail.W030"]
    assert _check_ids(server, dkim=ED25519.option) == []


# -- the DNS record --------------------------------------------------------------


def _key(option: dict[str, Any]) -> Any:
    (key,) = parse_dkim(option, "dkim") or ()
    return key


def test_dns_record_matches():
    for test_key in (RSA, ED25519):
        found = check_dns(_key(test_key.option), dnsfunc)
        assert (found.status, found.ok) == ("match", True)


def test_dns_record_of_another_key():
    other = {**RSA.option, "private_key": rsa_pem(1024)}
    found = check_dns(_key(other), dnsfunc)
    assert (found.status, found.ok) == ("mismatch", False)
    assert "does not match" in found.detail
    assert found.detail.endswith(_key(other).public_key_record())


def test_dns_record_missing_and_revoked():
    missing = check_dns(_key({**RSA.option, "selector": "nope"}), dnsfunc)
    assert missing.status == "missing"
    revoked = check_dns(_key(RSA.option), lambda name, timeout=5: b"v=DKIM1; p=")
    assert (revoked.status, revoked.ok) == ("mismatch", False)


def test_dns_not_reachable_is_said_so():
    nowhere = dns.resolver.Resolver(configure=False)
    nowhere.nameservers = ["127.0.0.1"]
    nowhere.port = _closed_port()
    found = check_dns(_key(RSA.option), dns_lookup(nowhere), timeout=1)
    assert (found.status, found.ok) == ("unreachable", True)
    assert "DNS could not be asked" in found.detail


def _closed_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_records_are_those_the_keys_publish():
    assert set(records()) == {
        f"rsa2026._domainkey.{DOMAIN}",
        f"ed2026._domainkey.{DOMAIN}",
    }
    assert (
        _key(RSA.option).public_key_record().encode()
        == records()[f"rsa2026._domainkey.{DOMAIN}"]
    )
    assert ed25519_pem() == ED25519.pem  # one key per session


# -- manage.py mailcheck -----------------------------------------------------------


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, bytes]]:
    """An in-process DNS server publishing the test keys, used as the system
    resolver; tests may change what it publishes."""
    from ..dkim_fixtures.dns_server import dns_server

    zone = dict(records())
    with dns_server(zone) as resolver:
        monkeypatch.setattr(dns.resolver, "default_resolver", resolver)
        yield zone


def _mailcheck(*args: str) -> tuple[int, str]:
    import io

    from django.core.management import CommandError, call_command

    out = io.StringIO()
    try:
        call_command("mailcheck", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


def test_mailcheck_says_the_published_keys_match(server, published):
    with mailer_for(server, dkim=[RSA.option, ED25519.option]):
        code, out = _mailcheck()
    assert code == 0, out
    assert f"dkim rsa2026._domainkey.{DOMAIN}: match" in out
    assert f"dkim ed2026._domainkey.{DOMAIN}: match" in out


def test_mailcheck_fails_on_a_wrong_or_missing_key(server, published):
    published[f"rsa2026._domainkey.{DOMAIN}"] = records()[f"ed2026._domainkey.{DOMAIN}"]
    del published[f"ed2026._domainkey.{DOMAIN}"]
    with mailer_for(server, dkim=[RSA.option, ED25519.option]):
        code, out = _mailcheck("--json")
    assert code == 1
    import json

    (report,) = [json.loads(line) for line in out.splitlines()]
    assert [c["status"] for c in report["dkim"]] == ["mismatch", "missing"]
    assert report["ok"] is True  # the SMTP server itself is fine
    assert report["status"] == "unhealthy"
    expected = parse_dkim(RSA.option, "dkim")[0].public_key_record()  # type: ignore[index]
    assert expected in report["dkim"][0]["detail"]


def test_mailcheck_says_when_dns_cannot_be_asked(server, monkeypatch):
    nowhere = dns.resolver.Resolver(configure=False)
    nowhere.nameservers = ["127.0.0.1"]
    nowhere.port = _closed_port()
    monkeypatch.setattr(dns.resolver, "default_resolver", nowhere)
    with mailer_for(server, dkim=RSA.option):
        code, out = _mailcheck("--timeout", "1")
    assert code == 0, out  # DNS down is no reason to take the mailer out
    assert f"dkim rsa2026._domainkey.{DOMAIN}: unreachable" in out
    assert "DNS could not be asked" in out


def test_the_example_runs():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "examples/outbound_policies.py"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0].startswith(
        "publish rsa2026._domainkey.example.com: v=DKIM1; k=rsa;"
    )
    assert lines[2:] == [
        "production: RCPT TO alice@customer.test, qa@example.com, audit@customer.test",
        "  signatures verify: [True, True]",
        "  suppressed: []",
        "staging: RCPT TO qa@example.com, staging-inbox@example.com",
        "  signatures verify: [True, True]",
        "  suppressed: ['alice@customer.test', 'audit@customer.test']",
        "  To: qa@example.com, staging-inbox@example.com"
        "  (X-Original-To: alice@customer.test, qa@example.com)",
    ]


def test_a_key_given_in_the_wrong_place_is_not_echoed(make_backend):
    with pytest.raises(ConfigurationError) as caught:
        make_backend(dkim=RSA.pem)
    assert caught.value.code == "invalid_dkim"
    assert "PRIVATE KEY" not in str(caught.value)
    assert "got a str" in str(caught.value)
