"""What the transport sends: envelope addresses plus the serialized message."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Envelope:
    """One message ready for SMTP.

    ``mail_from`` and ``recipients`` are bare addr-specs for ``MAIL FROM``/``RCPT
    TO`` (recipients include Bcc, which never appears in ``data``). ``smtputf8``
    marks an envelope whose addresses need the SMTPUTF8 extension.
    ``message_id`` is carried for logs and status only. ``suppressed`` names
    the recipients a staging policy kept back: never sent to, reported as
    ``suppressed`` in the status.
    """

    mail_from: str
    recipients: tuple[str, ...]
    data: bytes
    smtputf8: bool = False
    message_id: str | None = None
    suppressed: tuple[str, ...] = ()
