"""The ``MAIL FROM`` and ``RCPT TO`` lines of one transaction, for both paths.

The smtplib and the aiosmtplib dialogues send the very same command lines, so
they are written here once. The envelope holds bare addr-specs that were
already checked, so they only need their angle brackets: the libraries' own
quoting (``smtplib.quoteaddr``, aiosmtplib's ``quote_address``) would parse
every address again, a tenth of a pooled send's client CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from . import failures
from .envelope import Envelope

__all__ = ["mail_options", "transaction_commands"]


def mail_options(envelope: Envelope, offers: Callable[[str], bool]) -> list[str]:
    """The ``MAIL FROM`` parameters for ``envelope`` on a server that ``offers``
    the named ESMTP extensions. Refuses, before anything is sent, an envelope
    that needs SMTPUTF8 on a server without it."""
    options = []
    if offers("size"):
        options.append(f"SIZE={len(envelope.data)}")
    if envelope.smtputf8:
        if not offers("smtputf8"):
            raise failures.smtputf8_unsupported(envelope)
        options.append("SMTPUTF8")
        if offers("8bitmime"):
            options.append("BODY=8BITMIME")
    return options


def transaction_commands(
    envelope: Envelope, recipients: Sequence[str], offers: Callable[[str], bool]
) -> tuple[str, list[str]]:
    """The ``MAIL FROM`` line (with its parameters) and one ``RCPT TO`` line per
    recipient, without line endings. Raises as :func:`mail_options` does."""
    options = mail_options(envelope, offers)
    mail = " ".join([f"MAIL FROM:<{envelope.mail_from}>", *options])
    rcpts = [f"RCPT TO:<{rcpt}>" for rcpt in recipients]
    for line in (mail, *rcpts):
        if not line.isprintable():
            # CR or LF would inject a command; addresses are checked upstream,
            # this is the last line of defence for both drivers.
            raise ValueError(f"Command contains a control character: {line!r}")
    return mail, rcpts
