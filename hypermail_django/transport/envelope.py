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

    ``data`` always has CRLF line ends and ends with one, as smtplib's and
    aiosmtplib's ``data()`` would send it (lone CR and LF become CRLF): made
    so here, once, where the envelope is built (in a bulk worker process, for
    bulk sending), so the send path never scans the message for it.
    """

    mail_from: str
    recipients: tuple[str, ...]
    data: bytes
    smtputf8: bool = False
    message_id: str | None = None
    suppressed: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", crlf_lines(self.data))


def crlf_lines(data: bytes) -> bytes:
    """``data`` with CRLF line ends and a final CRLF."""
    crlf = data.count(b"\r\n")  # Counting copies nothing: the usual case is free.
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        data = data.replace(b"\n", b"\r\n")
    return data if data.endswith(b"\r\n") else data + b"\r\n"
