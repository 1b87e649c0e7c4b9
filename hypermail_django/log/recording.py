"""Record every outcome the package signals, without ever failing a send.

Receivers of ``post_send``/``send_failed`` (every sync, async and bulk path)
and ``background_sent``/``background_send_failed`` (task workers) turn each
outcome into an :class:`Entry` -- cheap: no parsing beyond the header block --
and write it. Inside a bulk run (:func:`hypermail_django.batching.outcome_batch`)
entries are buffered and written ``HYPERMAIL_LOG_BATCH_SIZE`` at a time with
``bulk_create``. A database error is logged and counted
(:func:`recording_errors`); the message has gone anyway.
"""

from __future__ import annotations

import email.parser
import email.policy
import logging
import threading
import zlib
from dataclasses import dataclass, field
from email.utils import getaddresses
from typing import Any

from django.db import transaction
from django.utils import timezone

from .. import signals
from ..batching import current_batch
from ..transport import DeliveryStatus, Envelope
from .conf import LogSettings, get_settings
from .writer import db_value, insert_rows

logger = logging.getLogger("hypermail_django.log")

_errors_lock = threading.Lock()
_errors = 0
_DISPATCH_PREFIX = "hypermail_django.log."


def recording_errors() -> int:
    """How many outcomes this process failed to record (since it started)."""
    return _errors


def _count_error() -> None:
    global _errors
    with _errors_lock:
        _errors += 1


@dataclass
class RecipientEntry:
    address: str
    kind: str
    status: str
    code: int | None
    reply: str


@dataclass
class Entry:
    """One outcome, ready to be written: the fields of a ``Delivery`` and its
    recipients."""

    message_id: str
    mailer: str
    via: str
    subject: str
    from_email: str
    size: int
    attempts: int
    status: str
    error_code: str
    error: str
    headers: str
    raw: bytes | None
    recipients: list[RecipientEntry] = field(default_factory=list)
    resent_from_id: int | None = None


# -- building entries -------------------------------------------------------------


def _header_block(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    return data if end < 0 else data[:end]


def _parse_headers(block: bytes) -> Any:
    return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(
        block + b"\r\n\r\n"
    )


def _specs(values: Any) -> set[str]:
    """Lower-cased addr-specs of ``values`` (display names dropped)."""
    return {spec.lower() for _name, spec in getaddresses(list(values)) if spec}


def _recipients(
    status: DeliveryStatus | None,
    addresses: list[str],
    kinds: dict[str, str],
    error: Any,
) -> list[RecipientEntry]:
    if status is not None and status.recipients:
        return [
            RecipientEntry(
                address=address.lower(),
                kind=kinds.get(address.lower(), "to"),
                status=str(rs.status),
                code=rs.code,
                reply=rs.reply[:2000],
            )
            for address, rs in status.recipients.items()
        ]
    # Nothing was said to any recipient (no connection, a crash before RCPT):
    # each gets the error.
    fate = "deferred" if getattr(error, "transient", False) else "refused"
    return [
        RecipientEntry(
            address=address.lower(),
            kind=kinds.get(address.lower(), "to"),
            status=fate,
            code=getattr(error, "smtp_code", None),
            reply=str(error)[:2000],
        )
        for address in addresses
    ]


def _text(value: Any, limit: int) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.split())[:limit]


def entry_for_message(
    message: Any,
    status: DeliveryStatus | None,
    backend: Any,
    envelope: Envelope | None,
    error: Any,
    conf: LogSettings,
    via: str,
) -> Entry:
    """An entry from a Django message's outcome (``post_send``, ``send_failed``)."""
    data = envelope.data if envelope is not None else b""
    headers = _header_block(data)
    bcc = _specs(getattr(message, "bcc", ()) or ())
    cc = _specs(getattr(message, "cc", ()) or ())
    kinds = dict.fromkeys(cc, "cc") | dict.fromkeys(bcc, "bcc")
    message_id = (status.message_id if status else None) or (
        envelope.message_id if envelope else None
    )
    if not message_id:
        extra = getattr(message, "extra_headers", {}) or {}
        message_id = next(
            (v for k, v in extra.items() if k.lower() == "message-id"), ""
        )
    addresses = list(envelope.recipients) if envelope else list(message.recipients())
    return Entry(
        message_id=str(message_id)[:255],
        mailer=str(
            getattr(status, "mailer", None) or getattr(backend, "alias", None) or ""
        )[:100],
        via=via,
        subject=_text(getattr(message, "subject", ""), 255),
        from_email=str(
            (envelope.mail_from if envelope else None)
            or getattr(message, "from_email", "")
            or ""
        )[:320],
        size=len(data),
        attempts=status.attempts if status else 0,
        status=status.status if status and error is None else "failed",
        error_code=str(getattr(error, "code", "") or "")[:64] if error else "",
        error=str(error)[:4000] if error else "",
        headers=headers.decode("utf-8", "replace"),
        raw=zlib.compress(data) if conf.keep == "full" and data else None,
        recipients=_recipients(status, addresses, kinds, error),
    )


def entry_for_envelope(
    envelope: Envelope | None,
    message_id: str | None,
    status: DeliveryStatus | None,
    alias: str | None,
    error: Any,
    conf: LogSettings,
) -> Entry:
    """An entry from a background worker's outcome (only the bytes are there)."""
    data = envelope.data if envelope is not None else b""
    block = _header_block(data)
    parsed = _parse_headers(block)
    to = _specs(parsed.get_all("To", []))
    cc = _specs(parsed.get_all("Cc", []))
    shown = dict.fromkeys(to, "to") | dict.fromkeys(cc, "cc")
    addresses = list(envelope.recipients) if envelope else []
    kinds = {
        address.lower(): shown.get(address.lower(), "bcc") for address in addresses
    }
    if status is not None:
        kinds |= {a.lower(): shown.get(a.lower(), "bcc") for a in status.recipients}
    summary = status.status if status else "failed"
    return Entry(
        message_id=str(message_id or "")[:255],
        mailer=str(getattr(status, "mailer", None) or alias or "")[:100],
        via="background",
        subject=_text(_decoded(parsed.get("Subject")), 255),
        from_email=(envelope.mail_from if envelope else "")[:320],
        size=len(data),
        attempts=status.attempts if status else 0,
        status=summary,
        error_code=str(getattr(error, "code", "") or "")[:64] if error else "",
        error=str(error)[:4000] if error else "",
        headers=block.decode("utf-8", "replace"),
        raw=zlib.compress(data) if conf.keep == "full" and data else None,
        recipients=_recipients(status, addresses, kinds, error),
    )


def _decoded(value: Any) -> str:
    if value is None:
        return ""
    from email.header import decode_header, make_header

    try:
        return str(make_header(decode_header(str(value))))
    except Exception:
        return str(value)


# -- writing ----------------------------------------------------------------------


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


def _write_safely(entries: list[Entry]) -> None:
    try:
        write_entries(entries)
    except Exception:
        for _entry in entries:
            _count_error()
        logger.exception(
            "The delivery log could not record %d message(s) (%s); they were sent "
            "regardless",
            len(entries),
            ", ".join(e.message_id for e in entries[:5]),
        )


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


def _record(entry_of: Any, merge: bool = False) -> None:
    """Build an entry and write it (or buffer it in the bulk run's batch)."""
    try:
        conf = get_settings()
        if not conf.enabled:
            return
        entry = entry_of(conf)
        batch = current_batch()
        if merge:
            update_or_write(entry)
        elif batch is not None:
            entry.via = "bulk"
            batch.add(_write_safely, entry, conf.batch_size)
            return
        else:
            write_entries([entry])
    except Exception:
        _count_error()
        logger.exception("The delivery log could not record a message; it was sent")


# -- receivers --------------------------------------------------------------------


def on_post_send(
    sender: Any,
    message: Any,
    status: DeliveryStatus,
    backend: Any = None,
    envelope: Envelope | None = None,
    **kwargs: Any,
) -> None:
    _record(
        lambda conf: entry_for_message(
            message, status, backend, envelope, None, conf, "send"
        )
    )


def on_send_failed(
    sender: Any,
    message: Any,
    error: Any,
    status: DeliveryStatus | None = None,
    backend: Any = None,
    envelope: Envelope | None = None,
    **kwargs: Any,
) -> None:
    _record(
        lambda conf: entry_for_message(
            message, status, backend, envelope, error, conf, "send"
        )
    )


def on_background(
    sender: Any,
    message_id: str | None,
    status: DeliveryStatus | None,
    alias: str | None = None,
    envelope: Envelope | None = None,
    error: Any = None,
    **kwargs: Any,
) -> None:
    _record(
        lambda conf: entry_for_envelope(
            envelope, message_id, status, alias, error, conf
        ),
        merge=True,
    )


def connect() -> None:
    """Connect the receivers (``DeliveryLogConfig.ready``); idempotent."""
    signals.post_send.connect(on_post_send, dispatch_uid=_DISPATCH_PREFIX + "post_send")
    signals.send_failed.connect(
        on_send_failed, dispatch_uid=_DISPATCH_PREFIX + "send_failed"
    )
    signals.background_sent.connect(
        on_background, dispatch_uid=_DISPATCH_PREFIX + "background_sent"
    )
    signals.background_send_failed.connect(
        on_background, dispatch_uid=_DISPATCH_PREFIX + "background_send_failed"
    )
