"""Write entries to the database: new records in bulk, background outcomes
merged into the record of the same message."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from .entries import Entry
from .writer import db_value, insert_rows

#: The columns written for each delivery and recipient (in ``Entry`` order).
_DELIVERY_FIELDS = (
    "message_id", "mailer", "via", "subject", "from_email", "size", "attempts",
    "status", "error_code", "error", "headers", "raw", "resent_from_id",
    "created_at",
)  # fmt: skip
_RECIPIENT_FIELDS = ("delivery_id", "address", "kind", "status", "code", "reply", "at")


def write_entries(entries: list[Entry]) -> None:
    """Write ``entries``: one INSERT per table (per database batch), in one
    transaction -- a savepoint inside the caller's, so that a failure leaves
    the caller's transaction usable."""
    from .models import Delivery, Recipient

    now = timezone.now()
    at = db_value(Delivery, "created_at", now)
    with transaction.atomic():
        keys = insert_rows(
            Delivery,
            _DELIVERY_FIELDS,
            [
                (e.message_id, e.mailer, e.via, e.subject, e.from_email, e.size,
                 e.attempts, e.status, e.error_code, e.error, e.headers, e.raw,
                 e.resent_from_id, at)
                for e in entries
            ],
            returning=True,
        )  # fmt: skip
        if keys is None:
            # A database that cannot say the keys of rows inserted together
            # (MySQL, Oracle): one INSERT per delivery, as bulk_create would
            # leave their keys unset.
            keys = []
            for entry in entries:
                delivery = _delivery(Delivery, entry, now)
                delivery.save(force_insert=True)
                keys.append(delivery.pk)
        rows = [
            (key, r.address, r.kind, r.status, r.code, r.reply, at)
            for key, entry in zip(keys, entries, strict=True)
            for r in entry.recipients
        ]
        if rows:
            insert_rows(Recipient, _RECIPIENT_FIELDS, rows, returning=False)


def _delivery(model: Any, entry: Entry, now: Any) -> Any:
    fields = {k: v for k, v in vars(entry).items() if k != "recipients"}
    return model(created_at=now, **fields)


def update_or_write(entry: Entry) -> None:
    """Write a background outcome, merged into the record of the same message
    (same Message-ID and mailer) if there is one: a resend queued from the
    admin, the memory backend's own record, or an earlier attempt whose
    deferred recipients were re-enqueued."""
    from .models import Delivery, Recipient

    now = timezone.now()
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update()
            .filter(message_id=entry.message_id, mailer=entry.mailer)
            .order_by("-pk")
            .first()
        )
        if delivery is None:
            write_entries([entry])
            return
        addresses = [r.address for r in entry.recipients]
        delivery.recipients.filter(address__in=addresses).delete()
        Recipient.objects.bulk_create(
            [Recipient(delivery=delivery, at=now, **vars(r)) for r in entry.recipients]
        )
        states = list(delivery.recipients.values_list("status", flat=True))
        sent = states.count("sent")
        delivery.status = (
            "failed" if not sent else "sent" if sent == len(states) else "partial"
        )
        delivery.attempts = max(delivery.attempts, entry.attempts)
        delivery.via = delivery.via or entry.via
        delivery.error_code, delivery.error = entry.error_code, entry.error
        if not delivery.headers:
            delivery.headers = entry.headers
            delivery.subject, delivery.size = entry.subject, entry.size
            delivery.from_email = entry.from_email
        if delivery.raw is None and entry.raw is not None:
            delivery.raw = entry.raw
        delivery.save()
