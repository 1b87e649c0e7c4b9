"""Per-mailer message defaults: each mailer its own From, Reply-To and headers.

Django fills ``from_email`` with ``DEFAULT_FROM_EMAIL`` when none is given, so
a message whose ``from_email`` is ``DEFAULT_FROM_EMAIL`` (or empty) takes the
mailer's; the envelope sender follows, since it is built from ``from_email``.
``reply_to`` is used when the message has none; each header when the message
does not set it (names compared case-insensitively).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage

from ..exceptions import ConfigurationError
from ..serialization.envelope_builder import prep_address

_KEYS = ("from_email", "reply_to", "headers")


@dataclass(frozen=True)
class MailerDefaults:
    """A mailer's ``defaults`` option, checked (hashable: tuples, not lists)."""

    from_email: str | None = None
    reply_to: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

    def apply(self, message: EmailMessage) -> EmailMessage:
        """``message`` with the defaults it lacks: a copy when anything changes,
        so the caller's message still says what its author wrote."""
        from_email = self.from_email and _takes_default(message.from_email)
        reply_to = self.reply_to and not message.reply_to
        present = {name.lower() for name in message.extra_headers}
        headers = [(n, v) for n, v in self.headers if n.lower() not in present]
        if not (from_email or reply_to or headers):
            return message
        outgoing = copy.copy(message)
        if from_email:
            outgoing.from_email = self.from_email
        if reply_to:
            outgoing.reply_to = list(self.reply_to)
        if headers:
            outgoing.extra_headers = {**message.extra_headers, **dict(headers)}
        return outgoing


def _takes_default(from_email: Any) -> bool:
    return not from_email or str(from_email) == str(settings.DEFAULT_FROM_EMAIL)


def parse_defaults(value: Any, where: str) -> MailerDefaults | None:
    """Check the ``defaults`` option: ``{"from_email", "reply_to", "headers"}``."""
    if value is None:
        return None

    def bad(why: str) -> ConfigurationError:
        return ConfigurationError(f"{where} {why}", code="invalid_defaults")

    if not isinstance(value, dict):
        raise bad(f"must be a dict with keys {', '.join(_KEYS)}; got {value!r}.")
    unknown = sorted(set(value) - set(_KEYS))
    if unknown:
        raise bad(f"has unknown key(s) {unknown}; valid keys: {', '.join(_KEYS)}.")
    from_email = value.get("from_email")
    if from_email is not None:
        _address(str(from_email), "['from_email']", bad)
        from_email = str(from_email)
    reply_to = value.get("reply_to") or ()
    if isinstance(reply_to, str):
        reply_to = [reply_to]
    if not isinstance(reply_to, (list, tuple)):
        raise bad(f"['reply_to'] must be a list of addresses, got {reply_to!r}.")
    for address in reply_to:
        _address(str(address), "['reply_to']", bad)
    headers = value.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise bad(f"['headers'] must be a dict of str to str, got {headers!r}.")
    for name, header in headers.items():
        if not name or any(c in name for c in ": \r\n") or not name.isascii():
            raise bad(f"['headers'] has an invalid header name {name!r}.")
        if "\r" in header or "\n" in header:
            raise bad(f"['headers'][{name!r}] must not contain a line break.")
    return MailerDefaults(
        from_email=from_email,
        reply_to=tuple(str(a) for a in reply_to),
        headers=tuple(headers.items()),
    )


def _address(address: str, key: str, bad: Any) -> None:
    try:
        prep_address(address, force_ascii=False)
    except ValueError as exc:
        raise bad(f"{key} is not a usable address: {exc}.") from None
