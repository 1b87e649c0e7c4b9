"""What the delivery log keeps: one ``Delivery`` per message, one ``Recipient``
per address.

Searches an operator makes -- by recipient address, Message-ID, subject -- and
the admin's filters (status, mailer, date) each have an index.
"""

from __future__ import annotations

import zlib

from django.db import models
from django.utils import timezone

#: The summary of a message (``DeliveryStatus.status``), plus ``queued`` for a
#: resend waiting for its background worker.
DELIVERY_STATES = [
    ("sent", "sent"),
    ("partial", "partly sent"),
    ("failed", "failed"),
    ("cancelled", "cancelled"),
    ("queued", "queued"),
]

#: Each recipient's outcome (``RecipientStatus.status``).
RECIPIENT_STATES = [
    ("sent", "sent"),
    ("refused", "refused"),
    ("deferred", "deferred"),
    ("uncertain", "uncertain"),
    ("suppressed", "suppressed"),
]

KINDS = [("to", "To"), ("cc", "Cc"), ("bcc", "Bcc")]

#: The sending paths (choices, so that the admin filters without a query).
PATHS = [("send", "send"), ("bulk", "bulk"), ("background", "background")]


class Delivery(models.Model):
    """One message, as it left (or failed to leave) through one mailer."""

    message_id = models.CharField("Message-ID", max_length=255, db_index=True)
    mailer = models.CharField(max_length=100, blank=True, db_index=True)
    via = models.CharField(
        max_length=16,
        blank=True,
        choices=PATHS,
        help_text="Sending path: send (sync, async), bulk, background.",
    )
    subject = models.CharField(max_length=255, blank=True, db_index=True)
    from_email = models.CharField("from", max_length=320, blank=True)
    created_at = models.DateTimeField("time", default=timezone.now, db_index=True)
    size = models.PositiveIntegerField(default=0, help_text="Bytes sent.")
    attempts = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=16, choices=DELIVERY_STATES, db_index=True)
    error_code = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    headers = models.TextField(blank=True)
    #: The whole message, zlib-compressed, when ``HYPERMAIL_LOG_KEEP = "full"``.
    raw = models.BinaryField(null=True, blank=True, editable=False)
    resent_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="resends",
    )

    class Meta:
        verbose_name = "delivery"
        verbose_name_plural = "deliveries"
        ordering = ["-created_at", "-pk"]
        permissions = [
            ("view_body", "Can view message bodies"),
            ("resend_delivery", "Can resend messages"),
        ]

    def __str__(self) -> str:
        return f"{self.subject or '(no subject)'} {self.message_id}"

    @property
    def kept(self) -> bool:
        """Is the whole message here (to view, export and resend)?"""
        return self.raw is not None

    def message_bytes(self) -> bytes | None:
        """The message as it was sent, or None when only headers were kept."""
        return None if self.raw is None else zlib.decompress(bytes(self.raw))


class Recipient(models.Model):
    """One address of a delivery and what its server answered."""

    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="recipients"
    )
    #: Lower-cased, so that an exact, indexed match finds it.
    address = models.CharField(max_length=320, db_index=True)
    kind = models.CharField(max_length=3, choices=KINDS, default="to")
    status = models.CharField(max_length=16, choices=RECIPIENT_STATES, db_index=True)
    code = models.PositiveSmallIntegerField("SMTP code", null=True, blank=True)
    reply = models.TextField(blank=True)
    at = models.DateTimeField("time", default=timezone.now)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.address}: {self.status}"
