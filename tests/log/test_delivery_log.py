"""The delivery log records every message, from every sending path.

Each test sends through a real in-process SMTP server (``SMTPTestServer``,
faults injected on the server side) and reads the records back from the test
database (SQLite here; ``test_delivery_log_postgres.py`` runs the same module
on PostgreSQL).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import zlib
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.mail import EmailMessage, send_mail
from django.db import OperationalError, connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from hypermail_django import asend_mail, send_bulk
from hypermail_django.bulk.async_bulk_sender import asend_bulk
from hypermail_django.conf.delivery_log import get_settings, parse_duration
from hypermail_django.exceptions import ConfigurationError, RecipientsRefused, SendError
from hypermail_django.log.models import Delivery
from hypermail_django.log.recording import recording_errors
from hypermail_django.testing import SMTPTestServer

from ..log_helpers import outcomes
from ..paths import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def _message(*to: str, subject: str = "Your order", **kwargs: Any) -> EmailMessage:
    return EmailMessage(subject, "It shipped.", "shop@example.com", list(to), **kwargs)


def test_send_mail_is_recorded_with_each_recipient(use_server, log_on):
    message = _message(
        "alice@example.com", cc=["Bob <Bob@Example.com>"], bcc=["carol@example.com"]
    )
    assert message.send() == 1

    (delivery,) = Delivery.objects.all()
    status = message.hypermail_status
    assert delivery.message_id == status.message_id
    assert delivery.subject == "Your order"
    assert delivery.from_email == "shop@example.com"
    assert delivery.status == "sent"
    assert delivery.attempts == 1
    assert delivery.via == "send"
    # The size the client announced (the wire bytes less the final CRLF).
    assert f"SIZE={delivery.size}" in use_server.messages[0].mail_options
    assert outcomes(delivery) == {
        "alice@example.com": ("to", "sent", 250),
        "bob@example.com": ("cc", "sent", 250),
        "carol@example.com": ("bcc", "sent", 250),
    }
    assert "Subject: Your order" in delivery.headers
    assert "Bcc" not in delivery.headers
    assert delivery.raw is None  # HYPERMAIL_LOG_KEEP defaults to "headers"
    assert delivery.message_bytes() is None


def test_keep_full_stores_the_exact_bytes_compressed(use_server, keep_full):
    send_mail("Hi", "Body text " * 200, "shop@example.com", ["alice@example.com"])
    (delivery,) = Delivery.objects.all()
    (received,) = use_server.messages
    kept = delivery.message_bytes()
    assert kept is not None
    assert kept.rstrip(b"\r\n") == received.data.rstrip(b"\r\n")
    assert len(bytes(delivery.raw)) < len(kept)  # compressed
    assert zlib.decompress(bytes(delivery.raw)) == kept


def test_a_refused_recipient_is_recorded_with_the_reply(use_server, log_on):
    use_server.fail("RCPT", "550 5.1.1 No such user", match="ghost@")
    _message("alice@example.com", "ghost@example.com").send()
    (delivery,) = Delivery.objects.all()
    assert delivery.status == "partial"
    assert outcomes(delivery) == {
        "alice@example.com": ("to", "sent", 250),
        "ghost@example.com": ("to", "refused", 550),
    }
    assert "No such user" in delivery.recipients.get(status="refused").reply


def test_a_failed_send_is_recorded_then_raised(use_server, log_on):
    use_server.fail("RCPT", "550 5.1.1 No such user")
    with pytest.raises(RecipientsRefused):
        _message("ghost@example.com").send()
    (delivery,) = Delivery.objects.all()
    assert delivery.status == "failed"
    assert delivery.error_code == "recipients_refused"
    assert "No such user" in delivery.error
    assert outcomes(delivery) == {"ghost@example.com": ("to", "refused", 550)}


def test_an_unreachable_server_is_recorded_for_every_recipient(log_on):
    from ..conftest import mailer_for

    with SMTPTestServer() as gone:
        host, port = gone.host, gone.port
    with mailer_for(host=host, port=port), pytest.raises(SendError) as raised:
        send_mail("Hi", "x", "shop@example.com", ["a@example.com"])
    (delivery,) = Delivery.objects.all()
    assert delivery.status == "failed"
    assert delivery.error_code == raised.value.code == "connection_failed"
    assert delivery.error
    assert {r.status for r in delivery.recipients.all()} <= {"deferred", "refused"}
    assert [r.address for r in delivery.recipients.all()] == ["a@example.com"]


@pytest.mark.asyncio
async def test_asend_mail_is_recorded(use_server, log_on, close_async_pools):
    assert await asend_mail("Async", "x", "shop@example.com", ["a@example.com"]) == 1
    from asgiref.sync import sync_to_async

    deliveries = await sync_to_async(list)(Delivery.objects.all())
    assert [(d.subject, d.status) for d in deliveries] == [("Async", "sent")]
    # The signal carried the envelope: the header block as sent.
    assert "Subject: Async" in deliveries[0].headers
    assert deliveries[0].size > 0
    await _close_sync_thread_connection()


async def _close_sync_thread_connection() -> None:
    """Close the connection Django opened in asgiref's sync thread (where
    the log wrote), so the test database can be dropped (PostgreSQL)."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


def test_send_bulk_records_every_message_in_batches(use_server, log_on):
    use_server.fail("RCPT", "550 5.1.1 No such user", match="ghost@")
    messages = [_message(f"user{i}@example.com", subject=f"N{i}") for i in range(20)]
    messages.append(_message("ghost@example.com", subject="to a ghost"))
    with (
        override_settings(HYPERMAIL_LOG_BATCH_SIZE=8),
        CaptureQueriesContext(connection) as queries,
    ):
        result = send_bulk(messages, processes=1, progress=False)
    assert (result["sent"], result["failed"]) == (20, 1)

    assert Delivery.objects.count() == 21
    assert set(Delivery.objects.values_list("via", flat=True)) == {"bulk"}
    assert "Subject: N7" in Delivery.objects.get(subject="N7").headers
    ghost = Delivery.objects.get(subject="to a ghost")
    assert ghost.status == "failed"
    assert outcomes(ghost) == {"ghost@example.com": ("to", "refused", 550)}
    # 21 records in batches of 8: three writes, of two INSERTs each.
    inserts = [q for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 6


@pytest.mark.asyncio
async def test_asend_bulk_records_every_message(use_server, log_on, close_async_pools):
    from asgiref.sync import sync_to_async

    messages = [_message(f"user{i}@example.com", subject=f"A{i}") for i in range(5)]
    result = await asend_bulk(messages, processes=1, progress=False)
    assert result["sent"] == 5
    subjects = await sync_to_async(
        lambda: sorted(Delivery.objects.values_list("subject", flat=True))
    )()
    assert subjects == [f"A{i}" for i in range(5)]
    await _close_sync_thread_connection()


def test_a_database_error_never_fails_a_send(use_server, log_on, caplog):
    def refuse_log_writes(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if "hypermail_log" in sql and sql.startswith("INSERT"):
            raise OperationalError("disk I/O error")
        return execute(sql, params, many, context)

    before = recording_errors()
    with (
        caplog.at_level(logging.ERROR, "hypermail_django.log"),
        connection.execute_wrapper(refuse_log_writes),
    ):
        assert send_mail("Hi", "x", "shop@example.com", ["a@example.com"]) == 1
        result = send_bulk(
            [_message("b@example.com"), _message("c@example.com")],
            processes=1,
            progress=False,
        )
    assert result["sent"] == 2
    assert len(use_server.messages) == 3
    assert recording_errors() == before + 3
    assert "could not record" in caplog.text
    assert Delivery.objects.count() == 0
    # And recording works again afterwards, on the same connection.
    send_mail("Again", "x", "shop@example.com", ["a@example.com"])
    assert Delivery.objects.get().subject == "Again"


def test_states_are_stored_as_the_transport_names_them(log_on):
    """``uncertain`` and ``suppressed`` are stored like any other state."""
    from hypermail_django import signals
    from hypermail_django.transport import DeliveryStatus, RecipientStatus

    status = DeliveryStatus(
        message_id="<x@example.com>",
        attempts=1,
        recipients={
            "a@example.com": RecipientStatus("sent", 250, "ok"),
            "b@example.com": RecipientStatus("uncertain", None, "no reply"),  # type: ignore[arg-type]
            "c@example.com": RecipientStatus("suppressed", None, "staging"),  # type: ignore[arg-type]
        },
    )
    signals.post_send.send(
        sender=None, message=_message("a@example.com"), status=status, backend=None
    )
    delivery = Delivery.objects.get(message_id="<x@example.com>")
    assert {a: s for a, (_k, s, _c) in outcomes(delivery).items()} == {
        "a@example.com": "sent",
        "b@example.com": "uncertain",
        "c@example.com": "suppressed",
    }


def test_the_log_can_be_turned_off(use_server):
    send_mail("Hi", "x", "shop@example.com", ["a@example.com"])
    assert Delivery.objects.count() == 0


def test_settings_are_checked():
    for name, bad in [("HYPERMAIL_LOG_KEEP", "body"), ("HYPERMAIL_LOG_BATCH_SIZE", 0)]:
        with (
            override_settings(**{name: bad}),
            pytest.raises(ConfigurationError, match=name),
        ):
            get_settings()
    with override_settings(HYPERMAIL_LOG_KEEP="body"):
        errors = run_checks(tags=["hypermail"])
    assert [e.id for e in errors] == ["hypermail.E040"]
    assert "HYPERMAIL_LOG_KEEP must be 'headers'" in errors[0].msg
    assert run_checks(tags=["hypermail"]) == []
    assert parse_duration("30d", "x").days == 30
    assert parse_duration("12h", "x").total_seconds() == 12 * 3600
    assert parse_duration(7, "x").days == 7
    with pytest.raises(ConfigurationError, match="--older-than"):
        parse_duration("soon", "--older-than")


@pytest.mark.django_db(transaction=False)
def test_the_example_runs():
    root = ROOT
    result = subprocess.run(
        [sys.executable, "examples/delivery_log.py"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "ghost@example.com: refused 550 5.1.1 No such user" in out
    assert "sent 50; records: 50" in out
    assert "'News' via bulk: sent (250" in out
    assert "new record: partial, resend of #1" in out
    assert "References: True" in out
    assert "Deleted 49 delivery record(s)" in out
    assert "Password reset: 'Reset your password" in out


def test_databases_without_insert_returning_use_the_orm(
    use_server, log_on, monkeypatch
):
    """MySQL and Oracle cannot say the keys of rows inserted together: the
    records are then written with ``bulk_create`` (here SQLite, told so)."""
    monkeypatch.setattr(
        type(connection.features), "can_return_rows_from_bulk_insert", False
    )
    result = send_bulk(
        [_message(f"u{i}@example.com", subject=f"O{i}") for i in range(3)],
        processes=1,
        progress=False,
    )
    assert result["sent"] == 3
    records = {d.subject: outcomes(d) for d in Delivery.objects.all()}
    assert records == {
        f"O{i}": {f"u{i}@example.com": ("to", "sent", 250)} for i in range(3)
    }


def test_the_migrations_match_the_models():
    from django.core.management import call_command

    call_command("makemigrations", "hypermail_log", "--check", "--dry-run", verbosity=0)


def test_a_large_batch_is_split_within_the_databases_limits():
    """5,000 records at once: more parameters than SQLite (999/32766) or
    PostgreSQL (65535) take in one statement."""
    from hypermail_django.log.recording import Entry, RecipientEntry, write_entries

    entries = [
        Entry(
            message_id=f"<{i}@example.com>",
            mailer="",
            via="bulk",
            subject=f"S{i}",
            from_email="shop@example.com",
            size=10,
            attempts=1,
            status="sent",
            error_code="",
            error="",
            headers="",
            raw=b"x" if i % 2 else None,
            recipients=[RecipientEntry(f"r{i}@example.com", "to", "sent", 250, "ok")],
        )
        for i in range(5000)
    ]
    write_entries(entries)
    assert Delivery.objects.count() == 5000
    last = Delivery.objects.get(message_id="<4999@example.com>")
    assert outcomes(last) == {"r4999@example.com": ("to", "sent", 250)}
    assert bytes(last.raw) == b"x"
