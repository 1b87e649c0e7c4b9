"""Assertions about sent mail that explain themselves when they fail.

They take any list of sent messages: the memory backend's outbox
(``get_outbox()`` or the ``mail_outbox`` fixture), Django's
``mail.outbox`` (pytest-django's ``mailoutbox``), or the ``messages`` of an
``SMTPTestServer``. Criteria, all optional and combined with AND:

``subject``
    the exact subject, or a compiled regex searched in it.
``to``, ``cc``, ``bcc``, ``recipients``, ``reply_to``
    one address (it must be among them) or a list (they must be exactly these,
    in any order). Addresses compare by their addr-spec, case-insensitively,
    so ``"Alice <alice@example.com>"`` matches ``"alice@example.com"``.
    ``recipients`` is everyone the message went to, Bcc included.
``from_email``
    the sender's address.
``body_contains``, ``html_contains``
    text that must occur in the plain-text or the HTML body.
``headers``
    ``{name: value}`` that must all be present with exactly these values.

On failure the ``AssertionError`` lists every message that was sent, so the
test output shows what happened instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import getaddresses, parseaddr
from typing import Any

__all__ = ["assert_not_sent", "assert_sent", "assert_sent_count", "find_sent"]

_ADDRESS_FIELDS = ("to", "cc", "bcc", "recipients", "reply_to")
_CRITERIA = {
    "subject",
    "from_email",
    "body_contains",
    "html_contains",
    "headers",
    *_ADDRESS_FIELDS,
}


def find_sent(messages: Iterable[Any], **criteria: Any) -> list[Any]:
    """The messages that match every criterion, in the order they were sent."""
    _check_criteria(criteria)
    return [m for m in messages if _matches(_view(m), criteria)]


def assert_sent(messages: Iterable[Any], **criteria: Any) -> Any:
    """Exactly one message matches ``criteria``; return it.

    Exactly one, not at least one: a message sent twice is a bug too.
    """
    (match,) = assert_sent_count(messages, 1, **criteria)
    return match


def assert_sent_count(
    messages: Iterable[Any], count: int, **criteria: Any
) -> list[Any]:
    """Exactly ``count`` messages match ``criteria``; return them."""
    messages = list(messages)
    found = find_sent(messages, **criteria)
    if len(found) != count:
        raise AssertionError(_explain(messages, criteria, count, len(found)))
    return found


def assert_not_sent(messages: Iterable[Any], **criteria: Any) -> None:
    """No message matches ``criteria`` (with no criteria: nothing was sent)."""
    assert_sent_count(messages, 0, **criteria)


# -- a uniform view of the three kinds of sent message ------------------------


@dataclass
class _View:
    subject: str
    from_email: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    recipients: list[str]
    reply_to: list[str]
    body: str
    html: str | None
    headers: Mapping[str, str]


def _view(message: Any) -> _View:
    if hasattr(message, "rcpt_tos") and hasattr(message, "message"):
        return _from_parsed(message.message(), message.mail_from, message.rcpt_tos)
    if hasattr(message, "django_message") and hasattr(message, "data"):
        from .outbox import parse

        return _View(
            subject=message.subject,
            from_email=message.from_email,
            to=message.to,
            cc=message.cc,
            bcc=message.bcc,
            recipients=message.recipients,
            reply_to=message.reply_to,
            body=message.body,
            html=message.html_body,
            headers=_headers(parse(message.data)),
        )
    if hasattr(message, "recipients") and hasattr(message, "extra_headers"):
        from .outbox import html_body_of

        return _View(
            subject=str(message.subject),
            from_email=str(message.from_email),
            to=list(message.to),
            cc=list(message.cc),
            bcc=list(message.bcc),
            recipients=list(message.recipients()),
            reply_to=list(message.reply_to),
            body=str(message.body),
            html=html_body_of(message),
            headers={str(k): str(v) for k, v in message.extra_headers.items()},
        )
    raise TypeError(
        f"Cannot check {type(message).__name__!r}: pass an outbox entry, a Django "
        "EmailMessage or an SMTPTestServer's ReceivedMessage."
    )


def _from_parsed(parsed: Any, mail_from: str, rcpt_tos: Sequence[str]) -> _View:
    def addresses(name: str) -> list[str]:
        return [a for _, a in getaddresses(parsed.get_all(name, []))]

    to, cc = addresses("To"), addresses("Cc")
    shown = {_key(a) for a in to + cc}
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    return _View(
        subject=str(parsed.get("Subject", "")),
        from_email=mail_from,
        to=to,
        cc=cc,
        bcc=[a for a in rcpt_tos if _key(a) not in shown],
        recipients=list(rcpt_tos),
        reply_to=addresses("Reply-To"),
        body=text.get_content() if text is not None else "",
        html=html.get_content() if html is not None else None,
        headers=_headers(parsed),
    )


def _headers(parsed: Any) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in parsed.items():
        headers.setdefault(name.lower(), str(value).strip())
    return headers


# -- matching -----------------------------------------------------------------


def _check_criteria(criteria: Mapping[str, Any]) -> None:
    unknown = set(criteria) - _CRITERIA
    if unknown:
        raise TypeError(f"Unknown criteria {sorted(unknown)}; use {sorted(_CRITERIA)}.")


def _key(address: str) -> str:
    return parseaddr(str(address))[1].casefold() or str(address).casefold()


def _matches(view: _View, criteria: Mapping[str, Any]) -> bool:
    for name, expected in criteria.items():
        if name == "subject":
            if isinstance(expected, re.Pattern):
                if not expected.search(view.subject):
                    return False
            elif view.subject != expected:
                return False
        elif name == "from_email":
            if _key(view.from_email) != _key(expected):
                return False
        elif name in _ADDRESS_FIELDS:
            actual = {_key(a) for a in getattr(view, name)}
            if isinstance(expected, str):
                if _key(expected) not in actual:
                    return False
            elif actual != {_key(a) for a in expected}:
                return False
        elif name == "body_contains":
            if expected not in view.body:
                return False
        elif name == "html_contains":
            if view.html is None or expected not in view.html:
                return False
        elif name == "headers":
            for header, value in expected.items():
                if view.headers.get(header.lower()) != value:
                    return False
    return True


def _explain(
    messages: list[Any], criteria: Mapping[str, Any], count: int, found: int
) -> str:
    wanted = ", ".join(f"{k}={v!r}" for k, v in criteria.items()) or "(anything)"
    lines = [
        f"expected {count} message(s) matching {wanted}; found {found} among "
        f"{len(messages)} sent:"
    ]
    for number, message in enumerate(messages, 1):
        view = _view(message)
        lines.append(
            f"  {number}. subject={view.subject!r} from={view.from_email!r} "
            f"to={view.to!r} cc={view.cc!r} bcc={view.bcc!r}"
        )
    if not messages:
        lines.append("  (nothing was sent)")
    return "\n".join(lines)
