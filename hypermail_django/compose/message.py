"""``HypermailMessage``: an ``EmailMultiAlternatives`` with FluxMail's options.

Everything HTML mail needs in one constructor, built only with Django's own
message API (``attach_alternative``, ``attach``, ``attach_file``), so every
backend, Django's test outbox and ``message.message()`` see an ordinary
Django message:

- ``html=``: the HTML body; the text body is generated from it when not given;
- ``attachments=``: Django's ``(filename, content, mimetype)`` triples and MIME
  parts, and also file paths;
- ``inline_images={"logo": "static/logo.png"}``: images shown in the HTML as
  ``<img src="cid:logo">``, in a ``multipart/related`` part with the HTML;
- ``priority``, ``in_reply_to``/``references`` (threading),
  ``unsubscribe_url``/``unsubscribe_mailto`` (RFC 2369 and RFC 8058 one-click),
  ``css_inline``.

Bad input raises a ``FluxMailException`` with a stable ``code`` while the
message is built, long before anything could be sent.
"""

from __future__ import annotations

import email.encoders
import email.message
import mimetypes
import os
from collections.abc import Mapping, Sequence
from email.mime.base import MIMEBase
from pathlib import Path
from typing import Any, Union

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import EmailAttachment, SafeMIMEMultipart

from ..exceptions import (
    AttachmentNotFound,
    AttachmentReadError,
    InvalidEmail,
    InvalidMessage,
    InvalidPriority,
)
from ..serialization.envelope_builder import prep_address
from .css import INLINED_MARK, Inliner, inline_css, inline_message
from .text import html_to_text

__all__ = ["PRIORITY_HEADERS", "HypermailMessage"]

#: The headers each priority sets: X-Priority (most clients), X-MSMail-Priority
#: and Importance (Outlook and Exchange).
PRIORITY_HEADERS: dict[str, dict[str, str]] = {
    "high": {
        "X-Priority": "1 (Highest)",
        "X-MSMail-Priority": "High",
        "Importance": "High",
    },
    "normal": {
        "X-Priority": "3 (Normal)",
        "X-MSMail-Priority": "Normal",
        "Importance": "Normal",
    },
    "low": {
        "X-Priority": "5 (Lowest)",
        "X-MSMail-Priority": "Low",
        "Importance": "Low",
    },
}

PathType = Union[str, "os.PathLike[str]"]
ImageSource = Union[PathType, bytes, tuple[Any, ...]]  # noqa: UP007


class HypermailMessage(EmailMultiAlternatives):
    """An HTML email with a text twin, attachments, inline images and list headers.

    The first four arguments are Django's (``subject, body, from_email, to``);
    every other one is keyword-only. ``body`` is the plain-text part: leave it
    empty with ``html=`` and it is generated from the HTML (links kept as
    ``text (url)``, no tags or CSS).

    ``css_inline=True`` inlines the HTML's CSS now (with ``css_inliner``, by
    default css-inline); ``css_inline=False`` keeps a backend whose
    ``css_inline`` option is on from inlining it; None (the default) leaves it
    to the backend.
    """

    def __init__(
        self,
        subject: str = "",
        body: str = "",
        from_email: str | None = None,
        to: Sequence[str] | None = None,
        *,
        html: str | None = None,
        cc: Sequence[str] | None = None,
        bcc: Sequence[str] | None = None,
        reply_to: str | Sequence[str] | None = None,
        attachments: Sequence[Any] | None = None,
        inline_images: Mapping[str, ImageSource] | None = None,
        headers: dict[str, Any] | None = None,
        alternatives: Sequence[Any] | None = None,
        priority: str | None = None,
        in_reply_to: str | None = None,
        references: str | Sequence[str] | None = None,
        unsubscribe_url: str | None = None,
        unsubscribe_mailto: str | None = None,
        css_inline: bool | None = None,
        css_inliner: str | Inliner | None = None,
        connection: Any = None,
    ) -> None:
        self.css_inline = css_inline
        self.css_inliner = css_inliner
        self.inline_images: dict[str, EmailAttachment] = {}
        if isinstance(reply_to, str):
            reply_to = [reply_to]
        files = [a for a in attachments or () if isinstance(a, (str, os.PathLike))]
        others = [a for a in attachments or () if not isinstance(a, (str, os.PathLike))]
        extra: dict[str, Any] = {}
        if connection is not None:  # only when given: Django 6.1 deprecates it
            extra["connection"] = connection
        super().__init__(
            subject,
            body,
            from_email,
            to,
            bcc=bcc,
            attachments=others,
            headers=dict(headers or {}),
            alternatives=alternatives,
            cc=cc,
            reply_to=reply_to,
            **extra,
        )
        self._check_addresses()
        self._set_headers(
            priority, in_reply_to, references, unsubscribe_url, unsubscribe_mailto
        )
        if css_inline:
            inline_message(self, css_inliner)
        if html is not None:
            self.attach_alternative(html, "text/html")
            if not body:
                self.body = html_to_text(html)
        for path in files:
            self.attach_file(path)
        if inline_images:
            if self.html is None:
                raise InvalidMessage(
                    "inline_images need an HTML body to show them in: pass html= "
                    '(and refer to each image as <img src="cid:NAME">).',
                    code="html_required",
                )
            for cid, source in inline_images.items():
                self.attach_inline_image(cid, source)

    # -- building -------------------------------------------------------------

    @property
    def html(self) -> str | None:
        """The HTML body (the first ``text/html`` alternative), or None."""
        for content, mimetype in self.alternatives:
            if mimetype == "text/html":
                return content if isinstance(content, str) else content.decode()
        return None

    def attach_alternative(self, content: Any, mimetype: str) -> None:
        """Attach an alternative; HTML is CSS-inlined first when ``css_inline``."""
        if self.css_inline and mimetype == "text/html" and isinstance(content, str):
            content = inline_css(content, self.css_inliner)
            setattr(self, INLINED_MARK, True)
        super().attach_alternative(content, mimetype)

    def attach_file(self, path: PathType, mimetype: str | None = None) -> None:
        """Attach a file from disk.

        Raises ``AttachmentNotFound`` (code ``attachment_not_found``) when it
        does not exist and ``AttachmentReadError`` (code ``read_error``) when
        it cannot be read.
        """
        super().attach(*_read_file(path, mimetype))

    def attach_inline_image(
        self,
        cid: str,
        source: ImageSource,
        mimetype: str | None = None,
        filename: str | None = None,
    ) -> None:
        """Add an image the HTML shows with ``<img src="cid:{cid}">``.

        ``source`` is a file path, the image's bytes (then give ``mimetype``),
        or a ``(filename, content, mimetype)`` triple. The image travels in a
        ``multipart/related`` part next to the HTML, with ``Content-ID:
        <cid>`` and an inline disposition, so clients show it in place and not
        as an attachment.
        """
        cid = _content_id(cid)
        if isinstance(source, tuple):
            if len(source) != 3:
                raise InvalidMessage(
                    f"Inline image {cid!r}: a tuple must be (filename, content, "
                    f"mimetype), got {len(source)} items.",
                )
            filename, content, mimetype = source
        elif isinstance(source, (bytes, bytearray)):
            content = bytes(source)
        else:
            filename, content, guessed = _read_file(source, mimetype)
            mimetype = mimetype or guessed
        if isinstance(content, str):
            content = content.encode()
        mimetype = mimetype or (filename and mimetypes.guess_type(filename)[0])
        if not mimetype or "/" not in mimetype:
            raise InvalidMessage(
                f"Inline image {cid!r}: cannot tell its type; pass mimetype= "
                "(e.g. 'image/png')."
            )
        self.inline_images[cid] = EmailAttachment(filename, content, mimetype)

    def message(self, *args: Any, **kwargs: Any) -> Any:
        """Django's MIME message, with the HTML and inline images related.

        The tree is the one mail clients expect::

            multipart/mixed              (only with attachments)
              multipart/alternative
                text/plain
                multipart/related        (only with inline images)
                  text/html
                  image/png              Content-ID: <logo>
              application/pdf            (attachments)
        """
        msg = super().message(*args, **kwargs)
        if self.inline_images:
            _relate(msg, self.inline_images, self.encoding or settings.DEFAULT_CHARSET)
        return msg

    # -- validation and headers ----------------------------------------------

    def _check_addresses(self) -> None:
        """Refuse an unusable address now; keep every address as written (the
        case of a local part is never changed)."""
        fields = {
            "from_email": [self.from_email],
            "to": self.to,
            "cc": self.cc,
            "bcc": self.bcc,
            "reply_to": self.reply_to,
        }
        for name, addresses in fields.items():
            for address in addresses:
                if not address:
                    continue  # Django skips empty recipients too
                try:
                    prep_address(address, force_ascii=False)
                except ValueError as exc:
                    raise InvalidEmail(
                        f"{exc} in {name} of the message {self.subject!r}. Fix the "
                        "address; nothing was sent."
                    ) from None

    def _set_headers(
        self,
        priority: str | None,
        in_reply_to: str | None,
        references: str | Sequence[str] | None,
        unsubscribe_url: str | None,
        unsubscribe_mailto: str | None,
    ) -> None:
        headers = self.extra_headers
        if priority is not None:
            if priority not in PRIORITY_HEADERS:
                raise InvalidPriority(
                    f"priority must be 'high', 'normal' or 'low', got {priority!r}."
                )
            headers.update(PRIORITY_HEADERS[priority])
        if in_reply_to is not None:
            headers["In-Reply-To"] = _message_id(in_reply_to, "in_reply_to")
        if references is not None:
            if isinstance(references, str):
                references = references.split()
            ids = [_message_id(ref, "references") for ref in references]
            if ids:
                headers["References"] = " ".join(ids)
        targets = []
        if unsubscribe_url is not None:
            targets.append(_https_url(unsubscribe_url))
        if unsubscribe_mailto is not None:
            targets.append(_mailto(unsubscribe_mailto))
        if targets:
            headers["List-Unsubscribe"] = ", ".join(f"<{t}>" for t in targets)
        if unsubscribe_url is not None:
            # RFC 8058: the https URL accepts a POST with this body, so Gmail
            # and Yahoo can unsubscribe in one click without a browser.
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"


# -- helpers -------------------------------------------------------------------


def _read_file(path: PathType, mimetype: str | None) -> tuple[str, bytes, str | None]:
    """Read a file for attaching: ``(filename, content, mimetype)``."""
    file = Path(path)
    if not file.exists():
        raise AttachmentNotFound(
            f"Cannot attach {str(file)!r}: no such file. Check the path (relative "
            f"paths start from {os.getcwd()!r})."
        )
    try:
        content = file.read_bytes()
    except OSError as exc:
        raise AttachmentReadError(
            f"Cannot attach {str(file)!r}: {exc.strerror or exc}."
        ) from None
    return file.name, content, mimetype or mimetypes.guess_type(file.name)[0]


def _content_id(cid: str) -> str:
    cid = str(cid).strip()
    if cid.startswith("<") and cid.endswith(">"):
        cid = cid[1:-1]
    if cid.startswith("cid:"):
        cid = cid[4:]
    if not cid or any(c.isspace() or c in '<>"' for c in cid) or not cid.isascii():
        raise InvalidMessage(
            f"Inline image name {cid!r} cannot be a Content-ID: use ASCII without "
            "spaces, quotes or angle brackets (e.g. 'logo').",
            code="invalid_content_id",
        )
    return cid


def _message_id(value: str, where: str) -> str:
    value = str(value).strip()
    if not value.startswith("<"):
        value = f"<{value}>"
    if not value.endswith(">") or any(c.isspace() for c in value) or "@" not in value:
        raise InvalidMessage(
            f"{where} must be Message-IDs such as '<abc@example.com>', got {value!r}.",
            code="invalid_message_id",
        )
    return value


def _https_url(url: str) -> str:
    url = str(url).strip()
    if not url.lower().startswith("https://") or _unsafe_in_header(url):
        raise InvalidMessage(
            f"unsubscribe_url must be an https:// URL without spaces or angle "
            f"brackets (RFC 8058 one-click unsubscribe requires HTTPS), got {url!r}.",
            code="invalid_unsubscribe_url",
        )
    return url


def _mailto(value: str) -> str:
    value = str(value).strip()
    address = value[len("mailto:") :] if value.lower().startswith("mailto:") else value
    try:
        prep_address(address.split("?", 1)[0])
    except ValueError as exc:
        raise InvalidEmail(f"unsubscribe_mailto: {exc}.") from None
    if _unsafe_in_header(address):
        raise InvalidMessage(
            f"unsubscribe_mailto must not contain spaces or angle brackets, got "
            f"{value!r}.",
            code="invalid_unsubscribe_url",
        )
    return f"mailto:{address}"


def _unsafe_in_header(value: str) -> bool:
    return any(c.isspace() or c in "<>" for c in value)


def _relate(msg: Any, images: Mapping[str, EmailAttachment], charset: str) -> None:
    """Turn the HTML alternative of a built message into ``multipart/related``
    holding the HTML first, then the images.

    Django 6 builds with the modern email API, where a part can become
    ``multipart/related`` in place; Django 5.2 builds compat32 ``SafeMIME*``
    objects, where the HTML part is swapped for a Django ``SafeMIMEMultipart``.
    """
    found = _find_html(msg)
    if found is None:
        raise InvalidMessage(
            "inline images need an HTML body to show them in: attach one with "
            "attach_alternative(html, 'text/html').",
            code="html_required",
        )
    parent, index, html = found
    if isinstance(html, email.message.MIMEPart):
        html.make_related()
        html.set_param("type", "text/html")
        for cid, image in images.items():
            maintype, subtype = image.mimetype.split("/", 1)
            content: Any = image.content
            options: dict[str, Any] = {"subtype": subtype}
            if maintype == "text":
                content = content.decode()
            else:
                options["maintype"] = maintype
            html.add_related(
                content,
                cid=f"<{cid}>",
                disposition="inline",
                filename=image.filename,
                **options,
            )
        return
    related = SafeMIMEMultipart(_subtype="related", encoding=charset)
    related.set_param("type", "text/html")
    related.attach(html)
    for cid, image in images.items():
        part = MIMEBase(*image.mimetype.split("/", 1))
        part.set_payload(image.content)
        email.encoders.encode_base64(part)
        part.add_header("Content-ID", f"<{cid}>")
        if image.filename:
            filename: Any = image.filename
            if not filename.isascii():
                filename = ("utf-8", "", filename)
            part.add_header("Content-Disposition", "inline", filename=filename)
        else:
            part.add_header("Content-Disposition", "inline")
        related.attach(part)
    if parent is None:  # pragma: no cover - Django 5.2 always wraps the HTML
        raise InvalidMessage("The HTML is the whole message; add a text body.")
    parent.get_payload()[index] = related


def _find_html(msg: Any) -> tuple[Any, int, Any] | None:
    """``(parent, index, part)`` of the first inline ``text/html`` part."""

    def visit(part: Any, parent: Any, index: int) -> tuple[Any, int, Any] | None:
        if part.is_multipart():
            for i, child in enumerate(part.get_payload()):
                found = visit(child, part, i)
                if found is not None:
                    return found
            return None
        if (
            part.get_content_type() == "text/html"
            and part.get_content_disposition() != "attachment"
        ):
            return parent, index, part
        return None

    return visit(msg, None, 0)
