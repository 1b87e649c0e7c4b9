"""The test SMTP server's protocol: aiosmtpd's, one instance per connection,
with recording, faults, delays and RFC 3030 CHUNKING (``BDAT``).

It runs on the server's event loop thread; everything it shares with the rest
of the server (options, records, faults, the open sessions) comes in one
:class:`HarnessContext`.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, AnyStr, NoReturn

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509

from .certificates import subject_of
from .faults import CONNECT, DATA_END, SMTP_VERBS, FaultKind, FaultSchedule
from .server_options import SMTPServerOptions
from .server_records import AuthAttempt, ReceivedCommand, ReceivedMessage, ServerRecords
from .smtpd_oauth import OAuthMechanisms

__all__ = ["HarnessContext", "HarnessSMTP", "authenticate", "make_handler"]

#: RFC 3030: ``BDAT <chunk-size> [LAST]``.
BDAT_RE = re.compile(r"([0-9]{1,18})(?: +(LAST))?", re.IGNORECASE)


@dataclass(frozen=True)
class HarnessContext:
    """What every session of one server shares."""

    options: SMTPServerOptions
    records: ServerRecords
    faults: FaultSchedule
    open_sessions: set[HarnessSMTP]
    """The sessions open now; only touched on the event loop thread."""


class _Session(Session):
    """aiosmtpd's session, minus the deprecation warning logged on every AUTH."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


async def _hook_data(server: SMTP, session: Session, envelope: Envelope) -> str:
    assert isinstance(server, HarnessSMTP)
    return await server.on_data_end(envelope)


async def _hook_ehlo(
    server: SMTP,
    session: Session,
    envelope: Envelope,
    hostname: str,
    responses: list[str],
) -> list[str]:
    assert isinstance(server, HarnessSMTP)
    session.host_name = hostname  # the 5-argument hook must do it itself
    return server.on_ehlo(responses)


def _hook_starttls(server: SMTP, session: Session, envelope: Envelope) -> bool:
    assert isinstance(server, HarnessSMTP)
    return server.on_tls_established()


def make_handler() -> SimpleNamespace:
    """The aiosmtpd handler. aiosmtpd looks its hooks up by name
    (``handle_<VERB>``); they forward to the session's protocol object, which
    knows its session number and its server's :class:`HarnessContext`."""
    return SimpleNamespace(
        handle_DATA=_hook_data,
        handle_EHLO=_hook_ehlo,
        handle_STARTTLS=_hook_starttls,
    )


class HarnessSMTP(OAuthMechanisms, SMTP):
    """aiosmtpd's protocol, one instance per TCP connection, with the hooks the
    harness needs: command recording and faults before each command, faults on
    the greeting and after the message body, a delay before each reply."""

    def __init__(
        self,
        handler: SimpleNamespace,
        *,
        context: HarnessContext,
        session_number: int,
        internal: bool,
        loop: asyncio.AbstractEventLoop,
        **kwargs: Any,
    ) -> None:
        self.context = context
        self.session_number = session_number
        # The controller's start-up probe: neither recorded nor faulted.
        self.internal = internal
        self._greeted = False
        self._mid_reply = False
        # Reads from the client so far, and the read the last reply answered:
        # a round-trip delay is paid once per flight of client data.
        self._flights = 0
        self._answered_flight = -1
        # The transport of the TCP connection, and whether a STARTTLS handshake
        # on it completed (asyncio then calls connection_made a second time).
        self._plain_transport: asyncio.BaseTransport | None = None
        self._tls_upgraded = False
        # RFC 3030 chunks of the message in transaction, and whether a BDAT of
        # it was refused (the rest are refused too, until RSET).
        self._chunks: list[bytes] = []
        self._chunking_failed = False
        self.closed: asyncio.Future[None] = loop.create_future()
        super().__init__(handler, loop=loop, **kwargs)

    def _create_session(self) -> Session:
        return _Session(self.loop)

    def _set_post_data_state(self) -> None:
        # After the message, and on RSET: a new transaction starts clean.
        self._chunks = []
        self._chunking_failed = False
        super()._set_post_data_state()

    # -- connection lifecycle ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._plain_transport is None:
            self._plain_transport = transport
            self.context.open_sessions.add(self)
        else:
            self._tls_upgraded = True
        super().connection_made(transport)
        if (
            transport is self._plain_transport
            and self.context.options.implicit_tls
            and not self.internal
        ):
            self._record_peer_certificate()

    def data_received(self, data: bytes) -> None:
        if not self.internal:
            self.context.records.add_read(self.session_number, data)
        self._flights += 1
        super().data_received(data)

    def connection_lost(self, error: Exception | None) -> None:
        if self.closed.done():
            return  # see abort()
        transport = self.transport
        try:
            super().connection_lost(error)
        finally:
            self.context.open_sessions.discard(self)
            self.closed.set_result(None)
            # Python 3.10 does not mark an implicit-TLS transport closed when
            # its connection is lost (3.11 does), so it would warn "unclosed
            # transport" when collected: close it (a no-op once it is closed).
            if isinstance(transport, asyncio.WriteTransport) and not (
                transport.is_closing()
            ):
                transport.abort()

    def abort(self) -> None:
        """Close the connection at once: no reply, no TLS close_notify."""
        transport = self.transport
        if transport is None:
            return
        in_starttls_handshake = (
            transport is not self._plain_transport and not self._tls_upgraded
        )
        if isinstance(transport, asyncio.WriteTransport):
            transport.abort()
        else:
            transport.close()
        if in_starttls_handshake:
            # asyncio only reports the loss of a TLS layer whose handshake
            # completed, so nothing would ever end this session: do what
            # aiosmtpd itself does when a STARTTLS handshake fails.
            self.connection_lost(None)

    async def _never(self) -> NoReturn:
        # Parks the session's task until aiosmtpd cancels it, which it does when
        # the connection goes away (client gives up, drop, server stop).
        await self.loop.create_future()
        raise AssertionError("unreachable")

    @property
    def tls_active(self) -> bool:
        transport = self.transport
        return (
            transport is not None and transport.get_extra_info("ssl_object") is not None
        )

    def _record_peer_certificate(self) -> bool:
        transport = self.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        if not der:
            return False
        subject = subject_of(x509.load_der_x509_certificate(der))
        self.context.records.add(client_cert_subject=subject)
        return True

    # -- replies ------------------------------------------------------------

    async def push(self, status: AnyStr) -> None:
        if not self._greeted:
            self._greeted = True
            if not self.internal:
                await self._before_greeting()
        text = (
            status.decode("utf-8", "replace") if isinstance(status, bytes) else status
        )
        # A multi-line reply (EHLO) is one reply: delay before its first line only.
        if (
            self.context.options.reply_delay
            and not self.internal
            and not self._mid_reply
        ):
            await asyncio.sleep(self.context.options.reply_delay)
        options = self.context.options
        if (
            options.round_trip_delay
            and not self.internal
            and not self._mid_reply
            and self._flights != self._answered_flight
        ):
            # The first reply to a new flight of client data waits one round
            # trip; replies to commands that came in the same flight (pipelined)
            # go out right behind it, as they would over a long network path.
            self._answered_flight = self._flights
            self.context.records.count_round_trip()
            await asyncio.sleep(options.round_trip_delay)
        self._mid_reply = text[3:4] == "-"
        await super().push(status)

    async def _before_greeting(self) -> None:
        peer = self.session.peer if self.session else None
        subject = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        reply = await self._run_faults(CONNECT, subject)
        if reply is not None:
            await self.push(reply)
            assert self.transport is not None
            self.transport.close()
            await self._never()

    async def _run_faults(self, verb: str, subject: str) -> str | None:
        """Carry out the faults planned for this step: return a reply to send
        instead of the normal one, or None to proceed normally."""
        plan = self.context.faults.plan(verb, subject)
        if plan.delay:
            await asyncio.sleep(plan.delay)
        fault = plan.action
        if fault is None:
            return None
        if fault.kind is FaultKind.FAIL:
            return fault.reply
        if fault.kind is FaultKind.DROP:
            self.abort()
        await self._never()

    # -- commands -----------------------------------------------------------

    async def intercept(self, verb: str, arg: str | None) -> bool:
        """Record a command and run its faults; True when a fault replied."""
        if self.internal:
            return False
        argument = arg or ""
        if verb == "AUTH":
            argument = argument.split(maxsplit=1)[0] if argument.strip() else ""
        self.context.records.add(
            command=ReceivedCommand(self.session_number, verb, argument)
        )
        subject = self._envelope_text() if verb == "DATA" else argument
        reply = await self._run_faults(verb, subject)
        if reply is None and verb == "AUTH" and not self.context.options.offers_auth:
            reply = "503 5.5.1 Error: authentication not enabled"
        if reply is None:
            return False
        await self.push(reply)
        return True

    def _envelope_text(self) -> str:
        envelope = self.envelope
        if envelope is None:
            return ""
        return " ".join([envelope.mail_from or "", *envelope.rcpt_tos])

    # -- hooks (called through make_handler()) ------------------------------

    async def on_data_end(self, envelope: Envelope) -> str:
        reply = await self._run_faults(DATA_END, self._envelope_text())
        if reply is not None:
            return reply
        content = envelope.original_content or b""
        self.context.records.add(
            message=ReceivedMessage(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                data=bytes(content),
                mail_options=list(envelope.mail_options),
                rcpt_options=list(envelope.rcpt_options),
                session=self.session_number,
                smtputf8=bool(envelope.smtp_utf8),
                tls=self.tls_active,
                authenticated_as=self._authenticated_as(),
                received_at=time.monotonic(),
            )
        )
        return "250 2.0.0 OK: message accepted"

    def _authenticated_as(self) -> str | None:
        session = self.session
        if session is None or not session.authenticated:
            return None
        return str(session.auth_data)

    def on_ehlo(self, responses: list[str]) -> list[str]:
        options = self.context.options
        if not options.offers_auth:
            responses = [r for r in responses if not r[4:].upper().startswith("AUTH")]
        offer = options.offer_starttls_ext
        if offer is not None:
            responses = [r for r in responses if r[4:].upper() != "STARTTLS"]
            if offer and not self.tls_active:
                responses.insert(len(responses) - 1, "250-STARTTLS")
        if options.pipelining:
            # aiosmtpd reads commands one line at a time, so pipelined ones are
            # answered in order; it just does not say so.
            responses.insert(len(responses) - 1, "250-PIPELINING")
        if options.chunking:
            responses.insert(len(responses) - 1, "250-CHUNKING")
        return responses

    def on_tls_established(self) -> bool:
        has_cert = self._record_peer_certificate()
        # With STARTTLS the context only *asks* for a certificate (see
        # server_thread.tls_context); refusing here makes aiosmtpd answer 554
        # to every command but QUIT, as a server requiring one would.
        return has_cert or not self.context.options.require_client_cert

    # -- RFC 3030 CHUNKING ----------------------------------------------------

    async def smtp_BDAT(self, arg: str | None) -> None:  # noqa: N802 (aiosmtpd's naming)
        """RFC 3030 CHUNKING, which aiosmtpd lacks: ``BDAT <size> [LAST]`` followed
        by exactly ``size`` octets of message, neither dot-stuffed nor ended by a
        dot. The octets are always read, even when the command is refused, so the
        next command is found where the client put it.

        Faults: ``"BDAT"`` fires at every chunk, ``"DATA"`` at the first chunk of a
        message (the step that starts the message data, as DATA does), and
        ``"DATA_END"`` at the reply to the ``LAST`` chunk, so one test script
        covers both dialogues.
        """
        if not self.context.options.chunking:
            await self.push('500 Error: command "BDAT" not recognized')
            return
        parsed = BDAT_RE.fullmatch((arg or "").strip())
        if parsed is None:
            # Without a size nobody knows where the chunk ends: hang up.
            await self.push("501 5.5.4 Syntax: BDAT <size> [LAST]; closing")
            self.abort()
            return
        size, last = int(parsed[1]), parsed[2] is not None
        limit = self.data_size_limit or 0  # aiosmtpd: 0 or None means no limit
        too_big = 0 < limit < sum(map(len, self._chunks)) + size
        chunk = await self._read_octets(size, keep=not too_big)
        first = not self._chunks and not self._chunking_failed
        reply = await self._bdat_refusal(arg or "", first, too_big)
        if reply is not None:
            self._chunking_failed = True
            if last:
                self._set_post_data_state()
            await self.push(reply)
            return
        self._chunks.append(chunk)
        if not last:
            await self.push(f"250 2.0.0 {size} octets received")
            return
        assert self.envelope is not None
        content = b"".join(self._chunks)
        self.envelope.original_content = content
        self.envelope.content = content.decode("utf-8", errors="surrogateescape")
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(status)

    async def _read_octets(self, size: int, *, keep: bool) -> bytes:
        """Read ``size`` octets; when not ``keep``-ing them (a chunk over the
        size limit), read them in pieces and drop them."""
        if keep:
            return await self._reader.readexactly(size)
        while size:
            size -= len(await self._reader.readexactly(min(size, 1 << 16)))
        return b""

    async def _bdat_refusal(self, arg: str, first: bool, too_big: bool) -> str | None:
        """The reply refusing this chunk, or None to take it."""
        if self.internal:
            return None
        self.context.records.add(
            command=ReceivedCommand(self.session_number, "BDAT", arg)
        )
        envelope = self.envelope
        if envelope is None or envelope.mail_from is None:
            return "503 5.5.1 Error: need MAIL command"
        if self._chunking_failed:
            return "503 5.5.1 Error: a chunk of this message was refused; send RSET"
        if not envelope.rcpt_tos:
            return "554 5.5.1 Error: no valid recipients"
        subject = self._envelope_text()
        for verb in ("DATA", "BDAT") if first else ("BDAT",):
            reply = await self._run_faults(verb, subject)
            if reply is not None:
                return reply
        if too_big:
            return "552 5.3.4 Error: too much mail data"
        return None


def _intercepting(verb: str) -> Callable[..., Awaitable[None]]:
    original = getattr(SMTP, f"smtp_{verb}")

    # functools.wraps keeps aiosmtpd's @syntax metadata, which HELP reads.
    @functools.wraps(original)
    async def smtp_command(self: HarnessSMTP, arg: str | None) -> None:
        if not await self.intercept(verb, arg):
            await original(self, arg)

    return smtp_command


# aiosmtpd dispatches each command to the protocol's ``smtp_<VERB>`` method: wrap
# them all so that every command is recorded and can be faulted.
for _verb in SMTP_VERBS:
    setattr(HarnessSMTP, f"smtp_{_verb}", _intercepting(_verb))


def authenticate(
    server: SMTP,
    session: Session,
    envelope: Envelope,
    mechanism: str,
    auth_data: Any,
) -> AuthResult:
    """aiosmtpd's ``authenticator``: check PLAIN/LOGIN credentials against the
    server's ``auth`` and record the attempt (never the password)."""
    assert isinstance(server, HarnessSMTP)
    accounts = server.context.options.auth
    if not isinstance(auth_data, LoginPassword) or accounts is None:
        return AuthResult(success=False, handled=False)
    username = auth_data.login.decode("utf-8", "replace")
    password = auth_data.password.decode("utf-8", "replace")
    success = username in accounts and accounts[username] == password
    server.context.records.add(auth_attempt=AuthAttempt(username, success))
    if not success:
        return AuthResult(success=False, handled=False)
    # aiosmtpd stores auth_data on the session: keep the password out of it.
    return AuthResult(success=True, auth_data=username)
