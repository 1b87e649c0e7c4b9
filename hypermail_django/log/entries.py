"""Turn a signalled outcome into an :class:`Entry`: the fields of a ``Delivery``
and its recipients, built cheaply (no parsing beyond the header block) in the
thread that sent the message."""

from __future__ import annotations

import email.parser
import email.policy
import zlib
from dataclasses import dataclass, field
from email.utils import getaddresses
from typing import Any

from ..conf.delivery_log import LogSettings
from ..transport import DeliveryStatus, Envelope


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
