"""The staging allowlist and redirect: who a mailer may send to, and where the rest go.

``allowed_recipients`` lists exact addresses (``qa@example.com``), whole domains
(``@example.com``) and glob patterns (``*+test@example.com``,
``@*.example.com``); ``redirect_to`` lists addresses that receive, in place of
the recipients that are not allowed, what they would have been sent. A
recipient kept back is *suppressed*: never named in an SMTP command, recorded
as ``suppressed`` on ``message.hypermail_status``. When recipients are
suppressed, To and Cc are rewritten so a reply-all cannot reach them, the
originals travel in ``X-Original-To``/``X-Original-Cc``, and Bcc is never
revealed.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.mail import EmailMessage
from django.utils.encoding import punycode

from ..exceptions import ConfigurationError
from ..serialization.envelope_builder import needs_smtputf8, prep_address
from ..transport import DeliveryStatus, Envelope, RecipientStatus

#: What ``hypermail_status`` says for a suppressed recipient.
SUPPRESSED_REPLY = "suppressed by the mailer's allowed_recipients"

_GLOB = set("*?[")


@dataclass(frozen=True)
class Pattern:
    """One entry of ``allowed_recipients``, normalized (lowercase, IDNA domain)."""

    text: str

    def matches(self, address: str) -> bool:
        """Whether the bare, lowercased addr-spec ``address`` is allowed."""
        if self.text.startswith("@"):
            return fnmatch.fnmatchcase("@" + address.rpartition("@")[2], self.text)
        return fnmatch.fnmatchcase(address, self.text)


@dataclass(frozen=True)
class RecipientPolicy:
    """``allowed_recipients`` and ``redirect_to`` of one mailer (hashable, so
    bulk worker processes can cache what they were sent)."""

    allowed: tuple[Pattern, ...] | None = None
    redirect_to: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.allowed is not None or bool(self.redirect_to)

    def allows(self, address: str) -> bool:
        """Whether ``address`` (as the message names it) may be sent to."""
        if self.allowed is None:
            # redirect_to alone: nobody but the redirect addresses.
            return False
        spec = _normal(address)
        if spec is None:
            return True  # Invalid: left to the envelope's validation to report.
        return any(pattern.matches(spec) for pattern in self.allowed)

    def suppressed(self, message: EmailMessage) -> list[str]:
        """The recipients of ``message`` this policy keeps back (To, Cc, Bcc)."""
        if not self.active:
            return []
        return [addr for addr in message.recipients() if not self.allows(addr)]

    def nobody_left(self, message: EmailMessage) -> bool:
        """True when every recipient is suppressed and nothing is redirected."""
        return (
            self.active
            and not self.redirect_to
            and len(self.suppressed(message)) == len(message.recipients())
        )

    def apply(self, message: EmailMessage) -> tuple[EmailMessage, tuple[str, ...]]:
        """The message to send (a copy when rewritten) and who was suppressed.

        The caller's message is never changed, so sending it again, or through
        another mailer, starts from what its author wrote.
        """
        suppressed = self.suppressed(message)
        if not suppressed:
            return message, ()
        kept = set(suppressed)
        outgoing = copy.copy(message)
        headers = dict(message.extra_headers)
        for name, field in (("X-Original-To", "to"), ("X-Original-Cc", "cc")):
            original = [str(a) for a in getattr(message, field)]
            if original and any(a in kept for a in original):
                headers[name] = ", ".join(original)
        # Header overrides of To/Cc would name the suppressed: built from lists.
        headers.pop("To", None)
        headers.pop("Cc", None)
        outgoing.extra_headers = headers
        outgoing.to = [a for a in message.to if a not in kept]
        outgoing.cc = [a for a in message.cc if a not in kept]
        outgoing.bcc = [a for a in message.bcc if a not in kept]
        present = {_normal(a) for a in outgoing.recipients()}
        outgoing.to += [a for a in self.redirect_to if _normal(a) not in present]
        return outgoing, tuple(_as_status_key(a) for a in suppressed)


def _normal(address: Any) -> str | None:
    """The lowercase addr-spec of ``address``, its domain in IDNA; None if invalid."""
    try:
        spec = prep_address(address, force_ascii=False)
    except ValueError:
        return None
    local, _, domain = spec.rpartition("@")
    if domain and not domain.isascii():
        domain = punycode(domain)
    return f"{local}@{domain}".lower() if local else spec.lower()


def _as_status_key(address: Any) -> str:
    """How ``hypermail_status`` names a recipient: its bare addr-spec, as the
    transport names the ones it sent to."""
    try:
        return prep_address(address, force_ascii=not needs_smtputf8(address))
    except ValueError:
        return str(address)


def record_suppressed(status: DeliveryStatus, envelope: Envelope) -> DeliveryStatus:
    """Add the envelope's suppressed recipients to ``status`` (and return it)."""
    for address in envelope.suppressed:
        status.recipients.setdefault(
            address, RecipientStatus("suppressed", None, SUPPRESSED_REPLY)
        )
    return status


def suppressed_status(message: EmailMessage) -> DeliveryStatus:
    """The status of a message none of whose recipients may be sent to."""
    fate = RecipientStatus("suppressed", None, SUPPRESSED_REPLY)
    return DeliveryStatus(
        recipients={_as_status_key(a): fate for a in message.recipients()}
    )


# -- option checks ------------------------------------------------------------------


def parse_allowed(value: Any, where: str) -> tuple[Pattern, ...] | None:
    """Check ``allowed_recipients``: a list of addresses, ``@domains``, globs.

    A string is one comma-separated list (as an environment variable gives it).
    An empty list allows nobody (every recipient suppressed or redirected).
    """
    if value is None:
        return None
    items = _items(value, where)
    return tuple(_pattern(item, where) for item in items)


def parse_redirect(value: Any, where: str) -> tuple[str, ...]:
    """Check ``redirect_to``: addresses (a list, or a comma-separated string)."""
    if value is None:
        return ()
    redirect = []
    for item in _items(value, where):
        try:
            prep_address(item, force_ascii=False)
        except ValueError as exc:
            raise ConfigurationError(
                f"{where} must list email addresses: {exc}.",
                code="invalid_redirect_to",
            ) from None
        redirect.append(item)
    return tuple(redirect)


def _items(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, Iterable) and not isinstance(value, (bytes, dict)):
        items = list(value)
        if all(isinstance(item, str) for item in items):
            return [item.strip() for item in items]
    raise ConfigurationError(
        f"{where} must be a list of strings, got {value!r}.",
        code="invalid_recipient_pattern",
    )


def _pattern(item: str, where: str) -> Pattern:
    """One allowlist entry, checked: a pattern that cannot match an address is
    a typo that would silently suppress everyone it was meant to let through."""
    local, at, domain = item.lower().rpartition("@")

    def bad(why: str) -> ConfigurationError:
        return ConfigurationError(
            f"{where}: {item!r} {why}. Use an address ('qa@example.com'), a "
            "domain ('@example.com') or a glob pattern ('*@example.com').",
            code="invalid_recipient_pattern",
        )

    if not at:
        raise bad("is neither an address nor a domain (it has no '@')")
    if not domain or any(c.isspace() or c in ',<>()@;:"' for c in domain):
        raise bad("has no usable domain")
    if any(c.isspace() or c in ",<>;" for c in local):
        raise bad("is not a single address")
    if not domain.isascii() and not _GLOB & set(domain):
        domain = punycode(domain)
    if not local:
        return Pattern(f"@{domain}")
    if not _GLOB & set(item):
        try:
            prep_address(item, force_ascii=False)
        except ValueError as exc:
            raise bad(f"is not a valid address ({exc})") from None
    return Pattern(f"{local}@{domain}")
