"""Templated email: subject, text and HTML rendered from templates by name.

An email called ``"welcome"`` is three templates, found by the project's
template engines (Django's template language, Jinja2, or both)::

    welcome/subject.txt     required; newlines removed
    welcome/body.txt        optional; generated from the HTML when missing
    welcome/body.html       optional when body.txt exists; autoescaped

The subject and text are rendered without HTML autoescaping (they are not HTML),
the HTML always with it. With ``language="de"`` everything renders inside
``translation.override("de")``, so ``{% translate %}`` and date formats follow
the recipient, not the request. The result is a :class:`HypermailMessage`, so
``css_inline``, ``inline_images``, ``unsubscribe_url`` and the rest apply.

A layout to extend ships with the app: ``hypermail_django/email/base.html`` and
its text twin ``hypermail_django/email/base.txt``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils import translation

from ..compat import MAILERS_SUPPORTED
from ..exceptions import ConfigurationError, TemplateNotFound
from .message import HypermailMessage
from .rendering import render
from .text import html_to_text

__all__ = ["RenderedEmail", "TemplatedEmail", "send_templated_mail"]


@dataclass(frozen=True)
class RenderedEmail:
    """The three rendered parts of a templated email."""

    subject: str
    text: str
    html: str | None


class TemplatedEmail:
    """One templated email: a name, a context, and optionally a language.

    Subclass to change the naming convention (``subject_template``,
    ``text_template``, ``html_template`` are formatted with ``name``) or to add
    to the context (override :meth:`get_context`).
    """

    subject_template = "{name}/subject.txt"
    text_template = "{name}/body.txt"
    html_template = "{name}/body.html"

    def __init__(
        self,
        name: str,
        context: Mapping[str, Any] | None = None,
        *,
        language: str | None = None,
        template_engine: str | None = None,
    ) -> None:
        self.name = name
        self.context = dict(context or {})
        self.language = language or None
        self.template_engine = template_engine

    def __repr__(self) -> str:
        language = f" language={self.language!r}" if self.language else ""
        return f"<{type(self).__name__} {self.name!r}{language}>"

    def get_context(self) -> dict[str, Any]:
        """The context every template renders with."""
        return dict(self.context)

    def render(self, extra_context: Mapping[str, Any] | None = None) -> RenderedEmail:
        """Render subject, text and HTML (in :attr:`language`, if set).

        ``extra_context`` is added to :meth:`get_context` for this rendering.

        Raises ``TemplateNotFound`` (code ``template_not_found``) when the
        subject template is missing, or both body templates are.
        """
        subject_name = self.subject_template.format(name=self.name)
        text_name = self.text_template.format(name=self.name)
        html_name = self.html_template.format(name=self.name)
        subject_template, missing_subject = self._find(subject_name)
        if subject_template is None:
            assert missing_subject is not None
            raise TemplateNotFound(
                f"Templated email {self.name!r} has no subject: no template engine "
                f"found {subject_name!r}.",
                tried=_tried(missing_subject),
                chain=[missing_subject],
            )
        text_template, missing_text = self._find(text_name)
        html_template, missing_html = self._find(html_name)
        if text_template is None and html_template is None:
            raise TemplateNotFound(
                f"Templated email {self.name!r} has no body: no template engine "
                f"found {text_name!r} or {html_name!r}. Add at least one.",
                tried=[*_tried(missing_text), *_tried(missing_html)],
                chain=[e for e in (missing_text, missing_html) if e is not None],
            )
        context = {**self.get_context(), **(extra_context or {})}
        with self._language():
            subject = _one_line(render(subject_template, context, autoescape=False))
            # The shipped layouts look up unsubscribe_url: a lookup that fails
            # makes django.template log the whole context at DEBUG (a token,
            # an address), so it is always defined.
            body_context = {"subject": subject, "unsubscribe_url": None, **context}
            html = (
                render(html_template, body_context, autoescape=True)
                if html_template is not None
                else None
            )
            if text_template is not None:
                text = _trim(render(text_template, body_context, autoescape=False))
            else:
                assert html is not None
                text = html_to_text(html)
        return RenderedEmail(subject=subject, text=text, html=html)

    def message(
        self, to: Sequence[str] | None = None, **options: Any
    ) -> HypermailMessage:
        """The rendered email as a :class:`HypermailMessage`.

        ``options`` are ``HypermailMessage``'s keyword arguments (``from_email``,
        ``cc``, ``bcc``, ``reply_to``, ``attachments``, ``inline_images``,
        ``headers``, ``priority``, ``unsubscribe_url``, ``css_inline``...).
        An ``unsubscribe_url`` is also given to the templates (unless the
        context has one), so the shipped layouts show the link that the
        ``List-Unsubscribe`` header names.
        """
        extra = {}
        if options.get("unsubscribe_url") and "unsubscribe_url" not in self.context:
            extra["unsubscribe_url"] = options["unsubscribe_url"]
        rendered = self.render(extra)
        return HypermailMessage(
            rendered.subject, rendered.text, to=to, html=rendered.html, **options
        )

    def send(
        self,
        to: Sequence[str],
        *,
        using: str | None = None,
        connection: Any = None,
        **options: Any,
    ) -> int:
        """Render and send; return the number of messages sent (0 or 1).

        ``using`` names a ``MAILERS`` alias (Django 6.1); ``connection`` is a
        backend instance to send through. Without either, the default mailer.
        """
        message = self.message(to, **options)
        return _send(message, using=using, connection=connection)

    def _find(self, name: str) -> tuple[Any, TemplateDoesNotExist | None]:
        try:
            return get_template(name, using=self.template_engine), None
        except TemplateDoesNotExist as missing:
            return None, missing

    def _language(self) -> contextlib.AbstractContextManager[None]:
        if self.language is None:
            return contextlib.nullcontext()
        return translation.override(self.language)


def send_templated_mail(
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    to: Sequence[str],
    language: str | None = None,
    template_engine: str | None = None,
    using: str | None = None,
    connection: Any = None,
    **options: Any,
) -> int:
    """Render the email ``name`` with ``context`` and send it to ``to``.

    ``options`` go to :class:`HypermailMessage` (``from_email``, ``cc``,
    ``bcc``, ``reply_to``, ``attachments``, ``inline_images``, ``headers``,
    ``priority``, ``unsubscribe_url``, ``css_inline``...). Returns the number
    of messages sent, as ``send_mail()`` does.
    """
    email = TemplatedEmail(
        name, context, language=language, template_engine=template_engine
    )
    return email.send(to, using=using, connection=connection, **options)


def _send(message: HypermailMessage, *, using: str | None, connection: Any) -> int:
    if connection is not None:
        if using is not None:
            raise ConfigurationError("Pass either using= or connection=, not both.")
        return int(connection.send_messages([message]))
    if using is not None:
        if not MAILERS_SUPPORTED:
            raise ConfigurationError(
                f"using={using!r} names a MAILERS alias, which needs Django 6.1+. "
                "Pass connection=get_connection(...) instead.",
                code="unknown_mailer",
            )
        return int(message.send(using=using))
    return int(message.send())


def _one_line(subject: str) -> str:
    """A subject on one line: header injection is impossible, and a template's
    trailing newline does not end up in the header."""
    return " ".join(line.strip() for line in subject.splitlines() if line.strip())


def _tried(missing: TemplateDoesNotExist | None) -> list[Any]:
    """Where the engines looked (``get_template`` keeps it per engine)."""
    if missing is None:
        return []
    return [*missing.tried, *(t for e in missing.chain for t in e.tried)]


def _trim(text: str) -> str:
    """Drop the blank lines templates leave around a text body (block tags on
    their own lines), and trailing spaces; keep everything else as written."""
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)
