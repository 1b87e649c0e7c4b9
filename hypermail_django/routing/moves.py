"""Which recipients of a failed or partly accepted send move to the next member.

Only those whose copy provably was not accepted: every recipient of a send
that failed before any content could have been accepted (no connection, bad
greeting, TLS or AUTH, ``421``, ``4xx`` at ``MAIL``), and otherwise only the
``deferred`` ones (4xx at ``RCPT`` or at the end of the data). Never a
recipient refused with 5xx, never an ``uncertain`` one (the server may have
queued it), never one that was ``sent``: nobody gets two copies.
"""

from __future__ import annotations

import smtplib
import socket
import ssl

from ..exceptions import (
    AuthenticationFailed,
    ConnectionFailed,
    SenderRefused,
    SendError,
    TLSFailed,
)
from ..transport import DeliveryStatus

#: Errors raised before the server could have accepted any content.
BEFORE_CONTENT = (ConnectionFailed, TLSFailed, AuthenticationFailed)

#: What a member that is not a FluxMailBackend may raise and still provably
#: have sent nothing: it could not connect, or was refused before MAIL.
NOT_CONNECTED = (
    ConnectionRefusedError,
    socket.gaierror,
    smtplib.SMTPConnectError,
    smtplib.SMTPAuthenticationError,
    smtplib.SMTPHeloError,
    ssl.SSLError,
)


def nothing_accepted(error: SendError) -> bool:
    """Whether ``error`` provably came before any content could be accepted."""
    if getattr(error, "code", None) == "rate_limited":
        return True
    if isinstance(error, SenderRefused):
        return error.smtp_code is not None and 400 <= error.smtp_code < 500
    return isinstance(error, BEFORE_CONTENT)


def to_move(status: DeliveryStatus, error: SendError | None) -> list[str]:
    """The recipients of ``status`` to hand to the next member."""
    whole = error is not None and not status.sent and not status.uncertain
    if whole and error is not None and nothing_accepted(error):
        # The attempt failed as a whole: those who share its fate move
        # (a recipient refused with 5xx by an earlier attempt does not).
        fate = str(error)
        return [
            rcpt
            for rcpt, outcome in status.recipients.items()
            if outcome.status == "deferred"
            or (outcome.status == "refused" and outcome.reply == fate)
        ]
    return status.deferred


def member_failed(status: DeliveryStatus, error: SendError | None) -> bool:
    """Whether the member itself failed (counts toward its cool-down): nothing
    was accepted and the reason was the server's state, not the recipients."""
    if status.sent or status.uncertain:
        return False
    if error is None:
        return bool(status.deferred)
    return nothing_accepted(error) or (bool(status.deferred) and not status.refused)
