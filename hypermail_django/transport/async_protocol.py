"""aiosmtplib's protocol, able to read the replies to RFC 2920 pipelined commands
(and so to carry :mod:`.dialogue`'s writes, RFC 3030 BDAT chunks included).

Why a subclass: ``aiosmtplib.protocol.SMTPProtocol`` pairs one reply with one
``read_response()``. Its ``data_received`` parses at most one reply per read
from the socket and drops whatever arrives while a parsed reply waits to be
picked up ("ignore it so it can't be mis-paired"); its ``read_response``
docstring says so: "if multiple commands are written to the transport without
awaiting, response data will be lost". Pipelined replies come back together, so
all but the first would be lost (or left unparsed in the buffer until the read
times out). :class:`PipeliningProtocol` queues them instead, but only for a
batch written with :meth:`~PipeliningProtocol.send`, and only as
many replies as that batch asked for: everywhere else (EHLO, STARTTLS, AUTH,
RSET, QUIT, the unpipelined dialogue) it is aiosmtplib's protocol unchanged,
unsolicited-data protection included.

Why it is installed after connecting: ``aiosmtplib.SMTP`` builds its protocol
itself (``SMTPProtocol(...)`` in ``SMTP._create_connection``; there is no
factory hook), so :meth:`PipeliningProtocol.install` hands the connected
transport to a new instance through asyncio's ``transport.set_protocol()``,
right after the greeting, before anything else is said. From then on the same
object serves the connection: ``SMTPProtocol.start_tls`` passes ``self`` to
``loop.start_tls``, and implicit TLS wraps the protocol already in place, so it
survives STARTTLS and works over implicit TLS.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import aiosmtplib
from aiosmtplib.protocol import MAX_LINE_LENGTH, SMTPProtocol
from aiosmtplib.response import SMTPResponse

__all__ = ["PipeliningProtocol"]

#: How much of a reply may be buffered before it ends: aiosmtplib's own bound
#: (``MAX_RESPONSE_LENGTH`` since 5.1), so a runaway server cannot fill memory.
_MAX_PARTIAL_REPLY = MAX_LINE_LENGTH * 4


class PipeliningProtocol(SMTPProtocol):
    """``SMTPProtocol`` plus :meth:`send`: several commands (and content) in
    one write, whose replies the next ``read_response()`` calls return in
    order; and :attr:`unsolicited`, whether an idle connection heard anything.

    The caller owns the connection for the whole batch (the connection pools
    never share one), and either reads every reply of the batch or closes the
    connection.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Replies (or the error that ended the batch) parsed before anyone
        #: asked for them, oldest first.
        self._early: collections.deque[SMTPResponse | Exception] = collections.deque()
        #: How many replies of the pipelined batch have not arrived yet.
        self._owed = 0
        #: Whether a ``read_response()`` is waiting on the reply future.
        self._reading = False
        #: Whether the server said something while nothing was asked (a 421
        #: before closing an idle connection): the connection is not reusable.
        self.unsolicited = False

    @classmethod
    def install(cls, smtp: aiosmtplib.SMTP) -> PipeliningProtocol:
        """Make a new instance serve ``smtp``'s connection, in place of the
        ``SMTPProtocol`` aiosmtplib created. Call it between the greeting and
        the first command, when no reply is outstanding."""
        old, transport = smtp.protocol, smtp.transport
        if old is None or transport is None or not smtp.is_connected:
            raise aiosmtplib.SMTPServerDisconnected("Server not connected")
        protocol = cls(loop=smtp.loop)
        # What aiosmtplib (5.0+) wired up: SMTP.close() when the connection goes.
        protocol._connection_lost_callback = getattr(
            old, "_connection_lost_callback", None
        )
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        # connection_made() expects a greeting (aiosmtplib 5.1+ then accepts
        # data unasked); this connection already had it.
        protocol._response_pending = False
        smtp.protocol = protocol
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Also called again by asyncio once a STARTTLS handshake completes:
        # nothing said before TLS may carry over (RFC 3207).
        super().connection_made(transport)
        self._early.clear()
        self._owed = 0
        self.unsolicited = False

    def send(self, data: bytes, *, replies: int) -> None:
        """Write ``data`` (commands, and maybe content) at once; the next
        ``replies`` calls of :meth:`read_response` return the replies to it,
        in order, however they arrive.

        Raises ``SMTPServerDisconnected`` if the connection is gone.
        """
        self._early.clear()
        self._owed = replies
        self.unsolicited = False
        self.write(data)

    async def read_response(self, timeout: float | None = None) -> SMTPResponse:
        """The next reply: one of a pipelined batch that already arrived, or
        the next one to arrive (aiosmtplib's own read)."""
        if self._early:
            early = self._early.popleft()
            if isinstance(early, Exception):
                raise early
            return early
        self._reading = True
        try:
            return await super().read_response(timeout=timeout)
        finally:
            self._reading = False

    def data_received(self, data: bytes) -> None:
        if not self._owed:
            if not self._response_pending and data:
                self.unsolicited = True  # aiosmtplib drops it; we remember it.
            super().data_received(data)
            return
        if self._response_waiter is None:
            return  # Connection lost; a queued callback fired anyway.
        self._buffer.extend(data)
        try:
            while self._owed:
                reply = self._read_response_from_buffer()
                if reply is None:
                    break
                self._owed -= 1
                self._hand_out(reply)
            if len(self._buffer) > _MAX_PARTIAL_REPLY:
                raise aiosmtplib.SMTPResponseException(-1, "Response too long")
        except aiosmtplib.SMTPResponseException as exc:
            # A malformed or runaway reply: the batch cannot be read any further.
            self._owed = 0
            self._hand_out(exc)
        if not self._owed:
            # Anything after the batch's last reply was not asked for.
            del self._buffer[:]

    def _hand_out(self, reply: SMTPResponse | Exception) -> None:
        """Give ``reply`` to the read waiting for it, or keep it for the next one."""
        waiter = self._response_waiter
        if self._reading and waiter is not None and not waiter.done():
            # _early is empty: a read only waits when it found nothing there.
            if isinstance(reply, Exception):
                waiter.set_exception(reply)
            else:
                waiter.set_result(reply)
        else:
            self._early.append(reply)
