"""Delete old delivery records in small batches.

One ``DELETE`` of a month of records would hold its locks (and, on SQLite,
the whole database) for as long as it runs. Instead the oldest records go a
batch at a time, by primary-key range, each batch in its own short
transaction: senders writing new records wait at most one batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from .models import Delivery, Recipient


@dataclass(frozen=True)
class Pruned:
    deliveries: int
    recipients: int
    batches: int


def prune(older_than: timedelta, *, batch_size: int = 1000) -> Pruned:
    """Delete every delivery (and its recipients) recorded before
    ``now - older_than``."""
    cutoff: datetime = timezone.now() - older_than
    old = Delivery.objects.filter(created_at__lt=cutoff)
    deliveries = recipients = batches = 0
    while True:
        pks = list(old.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not pks:
            return Pruned(deliveries, recipients, batches)
        low, high = pks[0], pks[-1]
        with transaction.atomic():
            # Only the keys are read (not the stored messages); the recipients
            # go with one DELETE, links to these records are set to NULL.
            _total, counts = old.filter(pk__gte=low, pk__lte=high).only("pk").delete()
        deliveries += counts.get(Delivery._meta.label, 0)
        recipients += counts.get(Recipient._meta.label, 0)
        batches += 1
