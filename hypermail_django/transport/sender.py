"""Deliver one envelope over a lease with smtplib, retrying what can be retried.

The thin sync driver of :mod:`.dialogue`: it performs each step the dialogue
asks for on an ``smtplib.SMTP`` connection (write, read a reply, close, take or
drop the lease's connection) and throws :class:`~.dialogue.Broken` into it when
the socket fails. What to send, how to judge replies and when a connection may
be replaced are decided there, for both drivers.
"""

from __future__ import annotations

import smtplib
import socket

from . import dialogue as talk
from .attempts import run_with_retries
from .config import TransportConfig
from .dialogue import ACQUIRE, CLOSE, DISCARD, Acquired, Read, Reply, Write
from .envelope import Envelope
from .pool import Lease
from .results import DeliveryStatus, RecipientStatus

#: What smtplib and the socket raise when the connection fails.
_BROKEN = (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException, OSError)


def send_envelope(
    envelope: Envelope, lease: Lease, config: TransportConfig
) -> DeliveryStatus:
    """Send ``envelope`` and return its per-recipient status.

    Returns when at least one recipient accepted the message; raises a
    :class:`~.errors.SendError` (with ``.status`` set) when none did.
    """
    return run_with_retries(
        envelope,
        config,
        lambda recipients: _drive(talk.attempt(envelope, recipients, config), lease),
    )


def _drive(dialogue: talk.Dialogue, lease: Lease) -> dict[str, RecipientStatus]:
    """Perform the dialogue's steps until it returns the attempt's outcome."""
    driver = _Driver(lease)
    steps = talk.Stepper(dialogue)
    try:
        for step in steps:
            try:
                steps.answer(driver.perform(step))
            except _BROKEN as exc:
                # smtplib turns a read timeout into SMTPServerDisconnected.
                timed_out = isinstance(exc.__context__ or exc, TimeoutError)
                steps.fail(exc, timed_out=timed_out)
    finally:
        steps.close()
    return steps.outcome


class _Driver:
    """One attempt's I/O on the lease's smtplib connection."""

    __slots__ = ("conn", "lease")

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self.conn: smtplib.SMTP | None = None

    def perform(self, step: talk.Step) -> talk.Answer:
        if type(step) is Read:
            self._socket().settimeout(step.timeout)
            code, text = self.conn.getreply()  # type: ignore[union-attr]
            return Reply(code, text.decode("utf-8", "replace"))
        if type(step) is Write:
            self._socket().sendall(step.data)
        elif step is ACQUIRE:
            self.conn, fresh = self.lease.acquire()
            return Acquired(self.conn.has_extn, fresh)
        elif step is CLOSE:
            self._conn().close()
        elif step is DISCARD:
            self.lease.discard()
        elif isinstance(step, talk.Settle):
            self.lease.settle(step.delivered)
        return None

    def _conn(self) -> smtplib.SMTP:
        assert self.conn is not None, "the dialogue acquires before any I/O"
        return self.conn

    def _socket(self) -> socket.socket:
        sock = self.conn.sock  # type: ignore[union-attr]
        if sock is None:
            raise smtplib.SMTPServerDisconnected("the connection is closed")
        return sock
