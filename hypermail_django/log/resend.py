"""Resend a recorded message through background delivery, and export it.

A resend is a new message: the stored bytes rebuilt into a Django message (the
same subject, bodies, attachments and recipients, Bcc included), with a new
Message-ID, a new Date and ``References`` pointing at the original, so mail
clients thread it with the first one. It is recorded at once, ``queued`` and
linked to the original; the worker's outcome completes that record.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from email.utils import make_msgid

from django.core.mail.utils import DNS_NAME
from django.db import transaction

from ..background import enqueue_messages
from ..background.rebuild import message_from_envelope
from ..exceptions import FluxMailException
from ..transport import Envelope
from .models import Delivery


class NotKept(FluxMailException):
    """The log kept only the headers of this message (``HYPERMAIL_LOG_KEEP``)."""

    default_code = "log_not_kept"


def _raw_of(delivery: Delivery) -> bytes:
    raw = delivery.message_bytes()
    if raw is None:
        raise NotKept(
            f"Delivery {delivery.pk} ({delivery.message_id}) kept only its headers; "
            "set HYPERMAIL_LOG_KEEP = 'full' to keep whole messages (for those "
            "sent from then on) so they can be exported and resent."
        )
    return raw


def resend(delivery: Delivery) -> Delivery:
    """Enqueue ``delivery`` again for every one of its recipients; return the
    new, linked record (status ``queued`` until a worker sends it)."""
    raw = _raw_of(delivery)
    recipients = tuple(delivery.recipients.values_list("address", flat=True))
    message = message_from_envelope(
        Envelope(mail_from=delivery.from_email, recipients=recipients, data=raw)
    )
    headers = {
        name: value
        for name, value in message.extra_headers.items()
        if name.lower() not in {"message-id", "date", "references"}
    }
    old_references = next(
        (v for k, v in message.extra_headers.items() if k.lower() == "references"),
        "",
    )
    new_id = make_msgid(domain=DNS_NAME.get_fqdn())
    headers["Message-ID"] = new_id
    headers["References"] = " ".join(
        part for part in (old_references, delivery.message_id) if part
    )
    message.extra_headers = headers
    with transaction.atomic():
        copy = Delivery.objects.create(
            message_id=new_id,
            mailer=delivery.mailer,
            via="background",
            subject=delivery.subject,
            from_email=delivery.from_email,
            status="queued",
            resent_from=delivery,
        )
        # Enqueued when this transaction commits: the record is there first.
        enqueue_messages([message], using=delivery.mailer or None)
    return copy


def resend_all(deliveries: Iterable[Delivery]) -> list[Delivery]:
    """Resend each of ``deliveries`` (all must have been kept whole)."""
    chosen = list(deliveries)
    for delivery in chosen:
        _raw_of(delivery)  # Check them all before enqueueing any.
    return [resend(delivery) for delivery in chosen]


def eml_name(delivery: Delivery) -> str:
    ident = delivery.message_id.strip("<>").split("@")[0] or str(delivery.pk)
    return f"delivery-{delivery.pk}-{ident}.eml"


def export_eml(delivery: Delivery) -> bytes:
    """The message exactly as it was sent (RFC 5322, ``message/rfc822``)."""
    return _raw_of(delivery)


def export_zip(deliveries: Iterable[Delivery]) -> bytes:
    """A zip of one ``.eml`` per delivery (those kept whole)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for delivery in deliveries:
            raw = delivery.message_bytes()
            if raw is not None:
                archive.writestr(eml_name(delivery), raw)
    return buffer.getvalue()
