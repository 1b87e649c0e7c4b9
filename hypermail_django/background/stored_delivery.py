"""Send one stored envelope through a mailer, and say how each recipient fared.

A ``FluxMailBackend`` sends the stored bytes through its pool and retry policy
and reports every recipient. Any other mailer gets the message rebuilt and
handed to ``send_messages()``; it reports success (or, for our memory and
console backends, ``message.hypermail_status``) or an exception, which is
classified as transient or permanent the way the transport does it.
"""

from __future__ import annotations

import smtplib
from typing import Any

from ..backends.outcome import accepted_by, everyone_failed
from ..exceptions import SendError
from ..transport import DeliveryStatus, Envelope
from .mailer_protocol import PreparingMailer
from .rebuild import message_from_envelope


def send_with(
    mailer: Any, envelope: Envelope
) -> tuple[DeliveryStatus, SendError | None]:
    """Send ``envelope``; return its status and the error if no recipient took it.

    Never raises a sending error: the caller decides what a failure means.
    """
    if isinstance(mailer, PreparingMailer):
        try:
            return mailer.deliver(envelope), None
        except SendError as error:
            return error.status or everyone_failed(envelope, error), error
    message = message_from_envelope(envelope)
    try:
        sent = mailer.send_messages([message])
    except Exception as exc:
        failure = as_send_error(exc)
        return everyone_failed(envelope, failure), failure
    reported = getattr(message, "hypermail_status", None)
    if isinstance(reported, DeliveryStatus) and (reported.cancelled or reported.sent):
        # One of our local backends (memory, console) ran pre_send and recorded
        # the outcome: a cancel there is a cancel, not a failure to retry.
        return reported, None
    if sent == 0:
        # A mailer with fail_silently swallowed its error: nothing went out.
        nothing = SendError(
            f"{type(mailer).__name__}.send_messages() sent nothing",
            code="not_sent",
            transient=True,
        )
        return everyone_failed(envelope, nothing), nothing
    return accepted_by(mailer, envelope), None


def as_send_error(exc: BaseException) -> SendError:
    """Our ``SendError`` for whatever another mailer raised, with ``transient`` set
    as the transport's policy would: 4xx replies and lost connections are."""
    if isinstance(exc, SendError):
        return exc
    error = SendError(
        f"{type(exc).__name__}: {exc}",
        code="mailer_error",
        smtp_code=getattr(exc, "smtp_code", None),
        transient=_is_transient(exc),
    )
    error.__cause__ = exc
    return error


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _reply in exc.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(exc, (smtplib.SMTPServerDisconnected, OSError))
