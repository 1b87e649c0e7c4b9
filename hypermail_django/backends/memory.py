"""``MemoryBackend``: keep every message in a thread-safe outbox, send nothing.

For tests and development. Messages go through the same preparation as
``FluxMailBackend`` (``pre_send``, CSS inlining, validation, serialization), so
the outbox holds what production would send. Read it with
``hypermail_django.get_outbox()``; Django's ``django.core.mail.outbox`` (and so
pytest-django's ``mailoutbox``) receives the messages too.
"""

from __future__ import annotations

import copy
from typing import Any

from django.core.mail import EmailMessage

from ..testing import outbox
from ..transport import Envelope
from .base import LocalBackend


class MemoryBackend(LocalBackend):
    """Keep messages in memory: ``hypermail_django.get_outbox()``."""

    accepted_reply = "2.0.0 Kept in the memory outbox"

    def record(self, message: EmailMessage, envelope: Envelope) -> None:
        parsed = outbox.parse(envelope.data)
        attachments, inline_images = outbox.files_of(parsed)
        kept = _copy_message(message)
        kept.sent_using = self.alias  # as Django 6.1's locmem backend does
        outbox.add(
            outbox.OutboxEntry(
                subject=str(message.subject),
                body=str(message.body),
                html_body=outbox.html_body_of(message),
                from_email=str(message.from_email),
                to=list(message.to),
                cc=list(message.cc),
                bcc=list(message.bcc),
                reply_to=list(message.reply_to),
                recipients=list(envelope.recipients),
                mail_from=envelope.mail_from,
                headers=_headers(parsed),
                attachments=attachments,
                inline_images=inline_images,
                data=envelope.data,
                message_id=envelope.message_id,
                smtputf8=envelope.smtputf8,
                alias=self.alias,
                django_message=kept,
            )
        )


def _headers(parsed: Any) -> dict[str, str]:
    """The top-level headers, decoded and unfolded; the first of a repeated
    name wins."""
    headers: dict[str, str] = {}
    for name, value in parsed.items():
        # Django 6 may fold a long header right after its colon; the unfolded
        # value then starts with that whitespace.
        headers.setdefault(name, str(value).strip())
    return headers


def _copy_message(message: EmailMessage) -> EmailMessage:
    """A deep copy of ``message`` that shares its connection (a backend holds
    locks and sockets, and copying a connection means nothing), like the copy
    Django's locmem backend keeps."""
    memo: dict[int, Any] = {}
    for name in ("connection", "_connection"):
        connection = vars(message).get(name)
        if connection is not None:
            memo[id(connection)] = connection
    return copy.deepcopy(message, memo)
