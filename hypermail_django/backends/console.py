"""``ConsoleBackend``: print every message to a stream instead of sending it.

For development. The output follows the framework mail module's format -- a
rule, ``EMAIL: <subject>``, ``From:``, ``To:``, a rule, the text body, a rule --
with the HTML body printed separately after it. Messages go through the same
preparation as ``FluxMailBackend``, so the HTML shown is the HTML that would be
sent (CSS inlined when the ``css_inline`` option is on).

Options besides the shared ones: ``stream`` (default ``sys.stdout``, looked up
at write time so captured output works) and ``show_source=True``, which prints
the SMTP envelope and the exact message source instead of the bodies.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from django.core.mail import EmailMessage

from ..testing import outbox
from ..transport import Envelope
from .base import LocalBackend

RULE = "=" * 60


class ConsoleBackend(LocalBackend):
    """Write messages to ``stream`` (``sys.stdout`` unless given)."""

    accepted_reply = "2.0.0 Written to the console"

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        stream: TextIO | None = None,
        show_source: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(fail_silently, **options)
        self.stream = stream
        self.show_source = bool(show_source)

    def record(self, message: EmailMessage, envelope: Envelope) -> None:
        stream = self.stream or sys.stdout
        stream.write(self.format(message, envelope))
        stream.flush()

    def format(self, message: EmailMessage, envelope: Envelope) -> str:
        """The text written for one message."""
        lines = [RULE, f"EMAIL: {message.subject}", f"From: {message.from_email}"]
        lines.append(f"To: {', '.join(str(a) for a in message.to)}")
        for label, values in (
            ("Cc", message.cc),
            ("Bcc", message.bcc),
            ("Reply-To", message.reply_to),
        ):
            if values:
                lines.append(f"{label}: {', '.join(str(v) for v in values)}")
        parsed = outbox.parse(envelope.data)
        attachments, inline_images = outbox.files_of(parsed)
        if attachments:
            lines.append("Attachments: " + ", ".join(_describe(a) for a in attachments))
        if inline_images:
            lines.append(
                "Inline images: "
                + ", ".join(
                    f"cid:{cid} {_describe(a)}" for cid, a in inline_images.items()
                )
            )
        if self.show_source:
            lines.append(f"Envelope-From: {envelope.mail_from}")
            lines.append(f"Envelope-To: {', '.join(envelope.recipients)}")
            lines += [RULE, _source(envelope), RULE]
            return "\n".join(lines) + "\n"
        html = outbox.html_body_of(message)
        if getattr(message, "content_subtype", "plain") != "html":
            lines += [RULE, str(message.body).rstrip("\n")]
        lines.append(RULE)
        if html is not None:
            lines += ["HTML:", html.rstrip("\n"), RULE]
        return "\n".join(lines) + "\n"


def _describe(attachment: Any) -> str:
    content = attachment.content
    if isinstance(content, str):
        content = content.encode()
    elif not isinstance(content, (bytes, bytearray)):
        content = content.as_bytes()  # message/rfc822
    size = len(content)
    return f"{attachment.filename or '(unnamed)'} ({attachment.mimetype}, {size} bytes)"


def _source(envelope: Envelope) -> str:
    """The message bytes as text, line endings made local."""
    return envelope.data.decode("utf-8", "replace").replace("\r\n", "\n").rstrip("\n")
