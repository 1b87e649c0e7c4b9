"""Record every outcome the package signals, without ever failing a send.

Receivers of ``post_send``/``send_failed`` (every sync, async and bulk path)
and ``background_sent``/``background_send_failed`` (task workers) turn each
outcome into an :class:`~.entries.Entry` and write it (:mod:`.storage`).
Inside a bulk run (:func:`hypermail_django.batching.outcome_batch`) entries
are buffered and written ``HYPERMAIL_LOG_BATCH_SIZE`` at a time. A database
error is logged and counted (:func:`recording_errors`); the message has gone
anyway.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from .. import signals
from ..batching import current_batch
from ..conf.delivery_log import get_settings
from ..transport import DeliveryStatus, Envelope
from .entries import Entry, RecipientEntry, entry_for_envelope, entry_for_message
from .storage import update_or_write, write_entries

__all__ = [
    "Entry",
    "RecipientEntry",
    "connect",
    "recording_errors",
    "update_or_write",
    "write_entries",
]

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
