"""Read a serialized message back into what a person looks at.

The delivery log's detail page and the mail previews show the same things:
the headers, the text part, the HTML part (its ``cid:`` images inlined as
``data:`` URLs, so the sandboxed frame needs no other request), and the
attachments. Both start from the exact bytes that were (or would be) sent.
"""

from __future__ import annotations

import base64
import email
import email.message
import email.policy
import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Part:
    """An attachment or inline image of a message."""

    index: int
    filename: str
    content_type: str
    size: int
    content_id: str | None
    inline: bool


@dataclass
class MailView:
    """The readable parts of one message."""

    raw: bytes
    headers: list[tuple[str, str]]
    text: str | None
    html: str | None
    parts: list[Part] = field(default_factory=list)
    _payloads: list[bytes] = field(default_factory=list, repr=False)

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name.lower()), "")

    def part_content(self, index: int) -> bytes:
        return self._payloads[index]

    def html_for_frame(self) -> str | None:
        """The HTML with each ``cid:`` reference replaced by a ``data:`` URL."""
        if self.html is None:
            return None
        by_cid = {
            part.content_id: part for part in self.parts if part.content_id is not None
        }

        def inline(match: re.Match[str]) -> str:
            part = by_cid.get(match.group(2))
            if part is None:
                return match.group(0)
            data = base64.b64encode(self._payloads[part.index]).decode("ascii")
            return f"{match.group(1)}data:{part.content_type};base64,{data}"

        return _CID.sub(inline, self.html)


_CID = re.compile(r"""(=\s*["']?)cid:([^"'\s>)]+)""", re.IGNORECASE)


def _decode(part: email.message.MIMEPart) -> str:
    try:
        return str(part.get_content())
    except (LookupError, ValueError):
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def view_of(raw: bytes) -> MailView:
    """Parse ``raw`` (RFC 5322 bytes) for display."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    headers = [(name, str(value)) for name, value in parsed.items()]
    text_part = parsed.get_body(preferencelist=("plain",))
    html_part = parsed.get_body(preferencelist=("html",))
    view = MailView(
        raw=raw,
        headers=headers,
        text=_decode(text_part) if text_part is not None else None,
        html=_decode(html_part) if html_part is not None else None,
    )
    for part in parsed.walk():
        if part.is_multipart() or part is text_part or part is html_part:
            continue
        assert isinstance(part, email.message.EmailMessage)
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        content_id = part.get("Content-ID")
        view.parts.append(
            Part(
                index=len(view._payloads),
                filename=part.get_filename() or f"part-{len(view._payloads) + 1}",
                content_type=part.get_content_type(),
                size=len(content),
                content_id=str(content_id).strip().strip("<>") if content_id else None,
                inline=part.get_content_disposition() != "attachment",
            )
        )
        view._payloads.append(content)
    return view
