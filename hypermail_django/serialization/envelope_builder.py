"""Turn a Django ``EmailMessage`` into an :class:`Envelope`, exactly as Django's
SMTP backend would put it on the wire.

The envelope sender is ``message.from_email`` (a ``From`` header override changes
only the header); the recipients are ``message.recipients()`` -- To, Cc and Bcc --
and Bcc never reaches the headers. Non-ASCII domains are IDNA-encoded; an address
whose local part is non-ASCII needs SMTPUTF8, so the whole envelope then keeps
its Unicode and is serialized with the ``SMTPUTF8`` policy.
"""

from __future__ import annotations

import functools
import re
from email.errors import HeaderParseError
from email.headerregistry import Address, AddressHeader
from typing import Any

from django.core.mail import EmailMessage
from django.utils.encoding import force_str, punycode

from ..compat import serialize
from ..exceptions import InvalidEmail
from ..transport import Envelope


def prep_address(address: Any, force_ascii: bool = True) -> str:
    """Return the addr-spec of ``address``; raise ``ValueError`` if it is invalid.

    This is Django 6's ``smtp.EmailBackend.prep_address``, kept here so every
    supported Django version builds the envelope the same way (5.2 lacks it).
    It rejects CR/LF injection and anything that is not exactly one mailbox, and
    turns the parser's own crashes on malformed input into ``ValueError``.
    """
    text: str = force_str(address)
    if _PLAIN.fullmatch(text):
        return text  # What the parser would return, without parsing.
    return _addr_spec(text, force_ascii)


#: An ASCII dot-atom ``local@domain``, nothing else (no display name, quotes,
#: comments or spaces): the parser returns it unchanged and defect-free. Most
#: recipients of a bulk send look like this, each one different, and parsing
#: one costs about a fifth of serializing a whole message.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN = re.compile(
    rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*", re.ASCII
)


@functools.lru_cache(maxsize=4096)
def _addr_spec(address: str, force_ascii: bool) -> str:
    """:func:`prep_address` on a string, memoized: a bulk send or a batch parses
    the same sender for every message, and the parse is a pure function of its
    input (errors are not cached; they are raised again)."""
    try:
        parsed = AddressHeader.value_parser(address)
    except (HeaderParseError, IndexError) as exc:
        # The stdlib parser fails this way on some malformed input ("a <").
        raise ValueError(f"Invalid address {address!r}: {exc}") from None
    defects = {str(defect) for defect in parsed.all_defects}
    # Django allows local mailboxes like "From: webmaster" (#15042).
    defects.discard("addr-spec local part with no domain")
    if not force_ascii:
        # A non-ASCII local part is valid with SMTPUTF8 (cpython#81074).
        defects.discard("local-part contains non-ASCII characters)")
    if defects:
        raise ValueError(f"Invalid address {address!r}: {'; '.join(defects)}")
    mailboxes = parsed.all_mailboxes
    if len(mailboxes) != 1:
        raise ValueError(f"Invalid address {address!r}: must be a single address")
    mailbox = mailboxes[0]
    if force_ascii and mailbox.domain and not mailbox.domain.isascii():
        domain = punycode(mailbox.domain)
        return str(Address(username=mailbox.local_part, domain=domain))
    return mailbox.addr_spec


def needs_smtputf8(address: Any) -> bool:
    """True when the address's local part is non-ASCII (IDNA cannot help)."""
    address = force_str(address)
    if address.isascii():
        return False
    try:
        local_part = prep_address(address, force_ascii=False).rpartition("@")[0]
    except ValueError:
        return False  # Reported properly by the strict pass.
    return not local_part.isascii()


def build_envelope(message: EmailMessage, prep: Any = prep_address) -> Envelope | None:
    """The envelope for ``message``, or None when it has no recipients.

    Raises :class:`InvalidEmail` (code ``invalid_email``) before anything is
    sent when an address cannot be used.
    """
    recipients = message.recipients()
    if not recipients:
        return None
    addresses = [message.from_email, *recipients]
    smtputf8 = any(needs_smtputf8(address) for address in addresses)
    try:
        mail_from = prep(message.from_email, force_ascii=not smtputf8)
        rcpt_to = tuple(prep(addr, force_ascii=not smtputf8) for addr in recipients)
        for address, spec in zip(recipients, rcpt_to, strict=True):
            # A sender may be a local mailbox ("webmaster", Django #15042); a
            # recipient without a domain cannot be delivered by a relay.
            _, at, domain = spec.rpartition("@")
            if not at or not domain:
                raise ValueError(f"Invalid address {force_str(address)!r}: no domain")
    except ValueError as exc:
        raise InvalidEmail(
            f"{exc} in the message {message.subject!r}. Fix the address; nothing "
            "was sent."
        ) from None
    data, message_id = serialize(message, smtputf8=smtputf8)
    return Envelope(
        mail_from=mail_from,
        recipients=rcpt_to,
        data=data,
        smtputf8=smtputf8,
        message_id=message_id,
    )
