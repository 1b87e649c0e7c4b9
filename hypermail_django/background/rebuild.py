"""Rebuild a Django message from serialized bytes, for mailers that want one.

``FluxMailBackend`` sends the stored bytes as they are. Other mailers --
Django's locmem backend under the test runner, the console backend, an ESP
backend -- only take ``EmailMessage`` objects, so the worker parses the bytes
back into one: subject, body, alternatives, attachments, addresses and the
other headers (Message-ID and Date included, so the message keeps its
identity). Its ``recipients()`` are the envelope's, so a message re-enqueued
for its deferred recipients only is not sent again to the others.
"""

from __future__ import annotations

import email
import email.message
import email.policy
from typing import Any

from django.core.mail import EmailMultiAlternatives

from ..transport import Envelope

#: Headers that ``EmailMessage`` writes itself from its attributes.
_BUILT_HEADERS = {
    "from",
    "to",
    "cc",
    "bcc",
    "reply-to",
    "subject",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
}


class RebuiltMessage(EmailMultiAlternatives):
    """An ``EmailMultiAlternatives`` parsed from an envelope's bytes."""

    envelope_recipients: list[str]

    def recipients(self) -> list[str]:
        return list(self.envelope_recipients)


def _addresses(parsed: email.message.EmailMessage, name: str) -> list[str]:
    header: Any = parsed.get(name)
    if header is None:
        return []
    return [str(address) for address in header.addresses]


def _addr_spec(address: str) -> str:
    parsed = email.message_from_string(
        f"To: {address}\n\n", policy=email.policy.default
    )
    header: Any = parsed["To"]
    found = header.addresses if header is not None else ()
    return found[0].addr_spec.casefold() if found else address.casefold()


def message_from_envelope(envelope: Envelope) -> RebuiltMessage:
    """Parse ``envelope.data`` into a message that sends the same thing."""
    parsed = email.message_from_bytes(envelope.data, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    from_header = str(parsed.get("From", ""))
    to = _addresses(parsed, "To")
    cc = _addresses(parsed, "Cc")
    shown = {_addr_spec(address) for address in to + cc}
    extra_headers = {
        name: str(value)
        for name, value in parsed.items()
        if name.lower() not in _BUILT_HEADERS
    }
    if from_header and _addr_spec(from_header) == envelope.mail_from.casefold():
        from_email = from_header
    else:
        # A From header that differs from the envelope sender (Django's
        # headers={"From": ...}): keep both, as the original message had them.
        from_email = envelope.mail_from
        if from_header:
            extra_headers["From"] = from_header

    body_part = parsed.get_body(preferencelist=("plain", "html"))
    message = RebuiltMessage(
        subject=str(parsed.get("Subject", "")),
        body=body_part.get_content() if body_part is not None else "",
        from_email=from_email,
        to=to,
        cc=cc,
        bcc=[r for r in envelope.recipients if r.casefold() not in shown],
        reply_to=_addresses(parsed, "Reply-To"),
        headers=extra_headers,
    )
    message.envelope_recipients = list(envelope.recipients)
    if body_part is not None and body_part.get_content_subtype() == "html":
        message.content_subtype = "html"
    for part in parsed.walk():
        if part.is_multipart() or part is body_part:
            continue
        assert isinstance(part, email.message.EmailMessage)
        if not part.is_attachment() and part.get_content_maintype() == "text":
            message.attach_alternative(part.get_content(), part.get_content_type())
        else:
            message.attach(
                part.get_filename(), part.get_content(), part.get_content_type()
            )
    return message
