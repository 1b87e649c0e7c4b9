"""``manage.py hypermail_prune``: old records go, a batch at a time; new ones stay."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hypermail_django.log.models import Delivery, Recipient

pytestmark = pytest.mark.django_db


def _record(age: timedelta, n_recipients: int = 2, **fields: object) -> Delivery:
    delivery = Delivery.objects.create(
        message_id=f"<{Delivery.objects.count()}@example.com>",
        status="sent",
        created_at=timezone.now() - age,
        **fields,
    )
    Recipient.objects.bulk_create(
        Recipient(delivery=delivery, address=f"r{i}@example.com", status="sent")
        for i in range(n_recipients)
    )
    return delivery


def _prune(*args: str) -> str:
    out = io.StringIO()
    call_command("hypermail_prune", *args, stdout=out)
    return out.getvalue()


def test_older_than_deletes_old_records_in_batches():
    old = [_record(timedelta(days=40 + i)) for i in range(7)]
    fresh = _record(timedelta(days=2))
    resend = _record(timedelta(days=1), resent_from=old[0])
    with CaptureQueriesContext(connection) as queries:
        output = _prune("--older-than", "30d", "--batch-size", "3")
    assert "Deleted 7 delivery record(s) and 14 recipient record(s)" in output
    assert "in 3 batch(es)" in output
    assert set(Delivery.objects.all()) == {fresh, resend}
    assert Recipient.objects.count() == 4
    resend.refresh_from_db()
    assert resend.resent_from is None
    deletes = [q for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 6  # recipients and deliveries, per batch of 3
    reads = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")
    ]
    assert not any('"raw"' in sql for sql in reads)  # never the stored messages


def test_the_default_age_comes_from_the_setting():
    _record(timedelta(days=10))
    _record(timedelta(days=3))
    assert "Deleted 0 delivery" in _prune()  # default 30d
    with override_settings(HYPERMAIL_LOG_PRUNE_AFTER="1w"):
        assert "Deleted 1 delivery" in _prune()
    assert Delivery.objects.count() == 1


def test_a_bad_age_is_a_command_error():
    with pytest.raises(CommandError, match="--older-than must be a positive duration"):
        _prune("--older-than", "a month")
    with pytest.raises(CommandError, match="--batch-size"):
        _prune("--older-than", "1d", "--batch-size", "0")
