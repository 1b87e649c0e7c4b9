"""The memory backend's outbox: every message it kept, as it would have been sent.

One process-wide list behind a lock, so tests that send from threads (a thread
pool, a background worker in-process) see every message. Each entry carries the
readable parts of the message *after* the backend prepared it (CSS inlined,
headers added) and the exact bytes that would have gone on the wire.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from django.core.mail import EmailMessage
from django.core.mail.message import EmailAttachment

__all__ = ["Outbox", "OutboxEntry", "clear_outbox", "get_outbox"]

_lock = threading.Lock()
_entries: list[OutboxEntry] = []


@dataclass(frozen=True)
class OutboxEntry:
    """One message kept by :class:`~hypermail_django.backends.MemoryBackend`.

    ``to``, ``cc``, ``bcc``, ``reply_to`` and ``from_email`` are the message's
    own lists and address, as the code under test set them. ``recipients`` and
    ``mail_from`` are the SMTP envelope (``RCPT TO``, Bcc included, IDNA
    applied; ``MAIL FROM``). ``headers``, ``attachments`` and
    ``inline_images`` are read back from ``data``, the exact bytes that would
    have been sent; :meth:`message` parses them for anything else.
    """

    subject: str
    body: str
    html_body: str | None
    from_email: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    reply_to: list[str]
    recipients: list[str]
    mail_from: str
    headers: dict[str, str]
    attachments: list[EmailAttachment]
    inline_images: dict[str, EmailAttachment]
    data: bytes = field(repr=False)
    message_id: str | None
    smtputf8: bool
    alias: str | None
    django_message: EmailMessage = field(repr=False, compare=False)

    def message(self) -> email.message.EmailMessage:
        """Parse :attr:`data` with the modern email API, for MIME assertions."""
        return parse(self.data)

    @property
    def alternatives(self) -> list[Any]:
        """The Django message's alternatives (``(content, mimetype)`` pairs)."""
        return list(getattr(self.django_message, "alternatives", []))


def parse(data: bytes) -> email.message.EmailMessage:
    """Parse message bytes into an ``email.message.EmailMessage``."""
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def html_body_of(message: EmailMessage) -> str | None:
    """The HTML body of a Django message: its first ``text/html`` alternative,
    or its body when ``content_subtype`` is ``"html"``."""
    for content, mimetype in getattr(message, "alternatives", None) or []:
        if mimetype == "text/html":
            return content if isinstance(content, str) else content.decode()
    if getattr(message, "content_subtype", None) == "html":
        return str(message.body)
    return None


def files_of(
    parsed: email.message.EmailMessage,
) -> tuple[list[EmailAttachment], dict[str, EmailAttachment]]:
    """Attachments and inline images (by Content-ID, without ``<>``) of a
    parsed message, in order; text content with ``\n`` line endings."""
    attachments: list[EmailAttachment] = []
    inline: dict[str, EmailAttachment] = {}
    for part in parsed.walk():
        if part.is_multipart():
            continue
        disposition = part.get_content_disposition()
        content_id = part.get("Content-ID")
        content = part.get_content()
        if isinstance(content, str):
            # Text as Django took it: SMTP's CRLF line endings undone.
            content = content.replace("\r\n", "\n")
        item = EmailAttachment(part.get_filename(), content, part.get_content_type())
        if disposition == "attachment":
            attachments.append(item)
        elif content_id:
            inline[str(content_id).strip().strip("<>")] = item
    return attachments, inline


def add(entry: OutboxEntry) -> None:
    """Append ``entry`` (and its Django message to ``django.core.mail.outbox``)."""
    from django.core import mail

    with _lock:
        _entries.append(entry)
        if not hasattr(mail, "outbox"):
            mail.outbox = []
        mail.outbox.append(entry.django_message)


def get_outbox() -> list[OutboxEntry]:
    """A snapshot of every message the memory backend kept, oldest first."""
    with _lock:
        return list(_entries)


def clear_outbox() -> None:
    """Forget every kept message (``django.core.mail.outbox`` is left alone)."""
    with _lock:
        _entries.clear()


class Outbox(Sequence[OutboxEntry]):
    """A live, read-only view of the outbox with assertion helpers.

    What the ``mail_outbox`` pytest fixture returns: ``len(outbox)``,
    ``outbox[0]`` and iteration always reflect the messages kept so far.
    """

    def __len__(self) -> int:
        with _lock:
            return len(_entries)

    @overload
    def __getitem__(self, index: int) -> OutboxEntry: ...

    @overload
    def __getitem__(self, index: slice) -> list[OutboxEntry]: ...

    def __getitem__(self, index: int | slice) -> OutboxEntry | list[OutboxEntry]:
        with _lock:
            return _entries[index]

    def __iter__(self) -> Iterator[OutboxEntry]:
        return iter(get_outbox())

    def __repr__(self) -> str:
        return f"<Outbox {get_outbox()!r}>"

    def clear(self) -> None:
        clear_outbox()

    def assert_sent(self, **criteria: Any) -> OutboxEntry:
        """Exactly one kept message matches ``criteria``; return it.

        See :func:`hypermail_django.testing.assertions.assert_sent`.
        """
        from .assertions import assert_sent

        entry: OutboxEntry = assert_sent(get_outbox(), **criteria)
        return entry

    def assert_sent_count(self, count: int, **criteria: Any) -> list[OutboxEntry]:
        """Exactly ``count`` kept messages match ``criteria``; return them."""
        from .assertions import assert_sent_count

        return assert_sent_count(get_outbox(), count, **criteria)

    def assert_not_sent(self, **criteria: Any) -> None:
        """No kept message matches ``criteria``."""
        from .assertions import assert_not_sent

        assert_not_sent(get_outbox(), **criteria)
