"""A real SMTP server for tests, with faults injected on the server side.

Mocking ``smtplib`` only proves that the code calls ``smtplib`` the way its author
believed a server behaves. :class:`SMTPTestServer` instead runs aiosmtpd on
127.0.0.1 in a background thread, so the code under test talks real SMTP over a
real socket (plain, STARTTLS or implicit TLS, with or without AUTH and client
certificates), and a test makes that server misbehave on purpose: reply with an
error, drop the connection, answer slowly or not at all, at any step of the
dialogue. Everything the server saw is recorded for assertions.

Nothing here imports Django: the module serves this project's own test suite and
users' test suites alike (``pip install hypermail-django[testing]``).

Example::

    with SMTPTestServer() as server:
        server.fail("RCPT", "451 4.3.0 Try again later", times=1)
        ...  # send through the code under test, to server.host / server.port
        [message] = server.wait_for_messages(1)
        assert message.rcpt_tos == ["someone@example.com"]
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email
import email.message
import email.policy
import enum
import functools
import os
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from types import SimpleNamespace, TracebackType
from typing import Any, AnyStr, NamedTuple, NoReturn

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509

from .smtpd_oauth import OAuthMechanisms, TokenCheck

__all__ = [
    "AuthAttempt",
    "ReceivedCommand",
    "ReceivedMessage",
    "SMTPTestServer",
    "TLSCertificates",
]

#: The server only ever listens on IPv4 loopback: nothing outside the machine
#: should reach a server that accepts any credentials a test configures.
HOST = "127.0.0.1"

#: How long :meth:`SMTPTestServer.stop` and
#: :meth:`SMTPTestServer.drop_all_connections` wait for sessions to wind down.
#: Sessions are aborted, not closed politely, so this is only a safety net.
_SHUTDOWN_TIMEOUT = 5.0

#: Pseudo-verbs for the two moments of a dialogue that are not a client command.
CONNECT = "CONNECT"
DATA_END = "DATA_END"

#: Every command aiosmtpd understands (it dispatches to ``SMTP.smtp_<VERB>``).
_SMTP_VERBS = frozenset(
    name.removeprefix("smtp_") for name in dir(SMTP) if name.startswith("smtp_")
)
_FAULT_VERBS = _SMTP_VERBS | {CONNECT, DATA_END, "BDAT"}
#: RFC 3030: ``BDAT <chunk-size> [LAST]``.
_BDAT_RE = re.compile(r"([0-9]{1,18})(?: +(LAST))?", re.IGNORECASE)
_REPLY_RE = re.compile(r"[2-5][0-9]{2}( [\x20-\x7e]*)?")


# --------------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------------


class TLSCertificates:
    """A throw-away certificate authority with a server and a client certificate.

    TLS code paths (STARTTLS, implicit TLS, certificate verification, client
    certificates) are where mail delivery most often breaks in production, and
    they can only be tested against a server with a certificate the client can
    verify. This wraps trustme: a fresh CA, a server certificate for
    ``127.0.0.1``, ``::1`` and ``localhost`` and a client certificate, all
    written as PEM files because ``smtplib`` and Django settings want paths.

    The files live in a private temporary directory removed by :meth:`cleanup`
    (also on garbage collection and at interpreter exit). Generating the
    certificates takes a few milliseconds, so a session-scoped fixture is enough.
    """

    #: The names the server certificate is valid for.
    server_identities: tuple[str, ...] = ("127.0.0.1", "::1", "localhost")

    def __init__(
        self,
        *,
        client_common_name: str = "hypermail test client",
        client_email: str = "client@example.com",
    ) -> None:
        self.ca = trustme.CA()
        """The underlying :class:`trustme.CA`, to issue more certificates."""
        self.server_cert = self.ca.issue_cert(*self.server_identities)
        # An identity, not only a common name: Python 3.13's default
        # VERIFY_X509_STRICT rejects the empty subjectAltName trustme gives else.
        self.client_cert = self.ca.issue_cert(
            client_email, common_name=client_common_name
        )
        self.directory = tempfile.mkdtemp(prefix="hypermail-certs-")
        """The directory holding the PEM files."""
        self._finalizer = weakref.finalize(
            self, shutil.rmtree, self.directory, ignore_errors=True
        )
        self.ca_file = self._write("ca.pem", self.ca.cert_pem.bytes())
        """PEM file of the CA: a ``cafile`` / ``SSL_CERT_FILE`` that trusts the
        server certificate."""
        self.server_cert_file = self._write(
            "server.pem", b"".join(b.bytes() for b in self.server_cert.cert_chain_pems)
        )
        self.server_key_file = self._write(
            "server.key", self.server_cert.private_key_pem.bytes()
        )
        self.client_cert_file = self._write(
            "client.pem", b"".join(b.bytes() for b in self.client_cert.cert_chain_pems)
        )
        """PEM file of the client certificate (e.g. ``EMAIL_SSL_CERTFILE``)."""
        self.client_key_file = self._write(
            "client.key", self.client_cert.private_key_pem.bytes()
        )
        """PEM file of the client certificate's key (e.g. ``EMAIL_SSL_KEYFILE``)."""
        self.client_subject = _subject_of(
            x509.load_pem_x509_certificate(self.client_cert.cert_chain_pems[0].bytes())
        )
        """The client certificate's subject as :class:`SMTPTestServer` records it
        in ``client_cert_subjects`` (RFC 4514, e.g. ``CN=...,OU=...,O=...``)."""

    def _write(self, name: str, data: bytes) -> str:
        path = os.path.join(self.directory, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def client_context(self, *, client_cert: bool = False) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` for clients that trusts this CA (and only it).

        With ``client_cert=True`` it also presents the client certificate, for
        servers started with ``require_client_cert=True``.
        """
        context = ssl.create_default_context(cafile=self.ca_file)
        if client_cert:
            context.load_cert_chain(self.client_cert_file, self.client_key_file)
        return context

    def server_context(
        self, *, verify_client: ssl.VerifyMode = ssl.CERT_NONE
    ) -> ssl.SSLContext:
        """An ``ssl.SSLContext`` for a server presenting the server certificate.

        ``verify_client`` other than ``CERT_NONE`` asks clients for a certificate
        and verifies it against this CA.
        """
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.server_cert_file, self.server_key_file)
        if verify_client != ssl.CERT_NONE:
            context.load_verify_locations(cafile=self.ca_file)
            context.verify_mode = verify_client
        return context

    def cleanup(self) -> None:
        """Delete the PEM files. Idempotent."""
        self._finalizer()

    def __enter__(self) -> TLSCertificates:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()


def _subject_of(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string()


# --------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the server accepted (it replied 250 to the end of DATA).

    ``data`` holds the bytes exactly as received after dot-unstuffing, with the
    line endings the client sent, so a test can check what went over the wire,
    not a re-serialisation of it. Recipients refused at RCPT time (by a fault or
    otherwise) are not in ``rcpt_tos``: this is the envelope the server would
    deliver.
    """

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    mail_options: list[str]
    rcpt_options: list[str]
    session: int
    """Number of the TCP connection that delivered it (1 for the first one)."""
    smtputf8: bool
    """Whether the client asked for SMTPUTF8 in ``MAIL FROM``."""
    tls: bool
    """Whether the session was TLS-protected (STARTTLS or implicit TLS)."""
    authenticated_as: str | None
    """The username the session authenticated as, if any."""
    received_at: float = 0.0
    """``time.monotonic()`` when the server accepted it (for rate tests)."""

    def message(self) -> email.message.EmailMessage:
        """Parse ``data`` with the modern email API, for header/body assertions."""
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed


class ReceivedCommand(NamedTuple):
    """One SMTP command as the server received it (a plain 3-tuple too)."""

    session: int
    verb: str
    """Upper-case command verb (``"MAIL"``, ``"RCPT"``, ``"EHLO"``...)."""
    argument: str
    """Everything after the verb. For ``AUTH`` only the mechanism is kept: the
    rest of the line carries credentials."""


class AuthAttempt(NamedTuple):
    """One AUTH exchange that reached the credential check. No password, ever."""

    username: str
    success: bool


# --------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------


class _Kind(enum.Enum):
    FAIL = "fail"
    DROP = "drop"
    DELAY = "delay"
    HANG = "hang"


@dataclass
class _Fault:
    kind: _Kind
    verb: str
    remaining: int | None
    match: str | None
    reply: str = ""
    seconds: float = 0.0

    def applies_to(self, verb: str, subject: str) -> bool:
        if self.verb != verb or self.remaining == 0:
            return False
        return self.match is None or self.match.casefold() in subject.casefold()


class _Plan(NamedTuple):
    """What the server does at one step: wait ``delay``, then ``action`` (if any)."""

    delay: float
    action: _Fault | None


# --------------------------------------------------------------------------------
# aiosmtpd integration (runs on the server's event loop thread)
# --------------------------------------------------------------------------------


class _Session(Session):
    """aiosmtpd's session, minus the deprecation warning logged on every AUTH."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


async def _hook_data(server: SMTP, session: Session, envelope: Envelope) -> str:
    assert isinstance(server, _HarnessSMTP)
    return await server.on_data_end(envelope)


async def _hook_ehlo(
    server: SMTP,
    session: Session,
    envelope: Envelope,
    hostname: str,
    responses: list[str],
) -> list[str]:
    assert isinstance(server, _HarnessSMTP)
    session.host_name = hostname  # the 5-argument hook must do it itself
    return server.on_ehlo(responses)


def _hook_starttls(server: SMTP, session: Session, envelope: Envelope) -> bool:
    assert isinstance(server, _HarnessSMTP)
    return server.on_tls_established()


def _make_handler() -> SimpleNamespace:
    """The aiosmtpd handler. aiosmtpd looks its hooks up by name
    (``handle_<VERB>``); they forward to the session's protocol object, which
    knows its session number and its harness."""
    return SimpleNamespace(
        handle_DATA=_hook_data,
        handle_EHLO=_hook_ehlo,
        handle_STARTTLS=_hook_starttls,
    )


class _HarnessSMTP(OAuthMechanisms, SMTP):
    """aiosmtpd's protocol, one instance per TCP connection, with the hooks the
    harness needs: command recording and faults before each command, faults on
    the greeting and after the message body, a delay before each reply."""

    def __init__(
        self,
        handler: SimpleNamespace,
        *,
        harness: SMTPTestServer,
        session_number: int,
        internal: bool,
        loop: asyncio.AbstractEventLoop,
        **kwargs: Any,
    ) -> None:
        self.harness = harness
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
            self.harness._open_protocols.add(self)
        else:
            self._tls_upgraded = True
        super().connection_made(transport)
        if (
            transport is self._plain_transport
            and self.harness.implicit_tls
            and not self.internal
        ):
            self._record_peer_certificate()

    def data_received(self, data: bytes) -> None:
        if not self.internal:
            self.harness._record_chunk(self.session_number, data)
        self._flights += 1
        super().data_received(data)

    def connection_lost(self, error: Exception | None) -> None:
        if self.closed.done():
            return  # see abort()
        try:
            super().connection_lost(error)
        finally:
            self.harness._open_protocols.discard(self)
            self.closed.set_result(None)

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
        subject = _subject_of(x509.load_der_x509_certificate(der))
        self.harness._record(client_cert_subject=subject)
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
        if self.harness.reply_delay and not self.internal and not self._mid_reply:
            await asyncio.sleep(self.harness.reply_delay)
        harness = self.harness
        if (
            harness.round_trip_delay
            and not self.internal
            and not self._mid_reply
            and self._flights != self._answered_flight
        ):
            # The first reply to a new flight of client data waits one round
            # trip; replies to commands that came in the same flight (pipelined)
            # go out right behind it, as they would over a long network path.
            self._answered_flight = self._flights
            harness._count_round_trip()
            await asyncio.sleep(harness.round_trip_delay)
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
        plan = self.harness._plan(verb, subject)
        if plan.delay:
            await asyncio.sleep(plan.delay)
        fault = plan.action
        if fault is None:
            return None
        if fault.kind is _Kind.FAIL:
            return fault.reply
        if fault.kind is _Kind.DROP:
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
        self.harness._record(
            command=ReceivedCommand(self.session_number, verb, argument)
        )
        subject = self._envelope_text() if verb == "DATA" else argument
        reply = await self._run_faults(verb, subject)
        if reply is None and verb == "AUTH" and not self.harness.offers_auth:
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

    # -- hooks (called through _make_handler()) ------------------------------

    async def on_data_end(self, envelope: Envelope) -> str:
        reply = await self._run_faults(DATA_END, self._envelope_text())
        if reply is not None:
            return reply
        content = envelope.original_content or b""
        self.harness._record(
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
        harness = self.harness
        if not harness.offers_auth:
            responses = [r for r in responses if not r[4:].upper().startswith("AUTH")]
        offer = harness.offer_starttls_ext
        if offer is not None:
            responses = [r for r in responses if r[4:].upper() != "STARTTLS"]
            if offer and not self.tls_active:
                responses.insert(len(responses) - 1, "250-STARTTLS")
        if harness.pipelining:
            # aiosmtpd reads commands one line at a time, so pipelined ones are
            # answered in order; it just does not say so.
            responses.insert(len(responses) - 1, "250-PIPELINING")
        if harness.chunking:
            responses.insert(len(responses) - 1, "250-CHUNKING")
        return responses

    def on_tls_established(self) -> bool:
        has_cert = self._record_peer_certificate()
        # With STARTTLS the context only *asks* for a certificate (see
        # SMTPTestServer._tls_context); refusing here makes aiosmtpd answer 554
        # to every command but QUIT, as a server requiring one would.
        return has_cert or not self.harness.require_client_cert

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
        if not self.harness.chunking:
            await self.push('500 Error: command "BDAT" not recognized')
            return
        parsed = _BDAT_RE.fullmatch((arg or "").strip())
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
        self.harness._record(command=ReceivedCommand(self.session_number, "BDAT", arg))
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
    async def smtp_command(self: _HarnessSMTP, arg: str | None) -> None:
        if not await self.intercept(verb, arg):
            await original(self, arg)

    return smtp_command


# aiosmtpd dispatches each command to the protocol's ``smtp_<VERB>`` method: wrap
# them all so that every command is recorded and can be faulted.
for _verb in _SMTP_VERBS:
    setattr(_HarnessSMTP, f"smtp_{_verb}", _intercepting(_verb))


class _Controller(Controller):
    """aiosmtpd's threaded controller, creating the harness' protocol objects on
    an ephemeral port, with a start-up probe that the harness does not count."""

    def __init__(
        self,
        harness: SMTPTestServer,
        ssl_context: ssl.SSLContext | None,
        port: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            _make_handler(),
            hostname=HOST,
            port=port,
            ssl_context=ssl_context,
            # Also spares SMTP.__init__ a socket.getfqdn() per connection.
            server_hostname="localhost",
            ident="hypermail-django test SMTP server",
            **kwargs,
        )
        self.harness = harness

    def factory(self) -> SMTP:
        return self.harness._create_protocol(self.handler, self.SMTP_kwargs, self.loop)

    def _trigger_server(self) -> None:
        # Controller.start() connects once so that aiosmtpd builds a protocol
        # object and start-up errors surface. The stock probe knows neither the
        # ephemeral port nor client certificates.
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.harness._probe(self.port)


# --------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------


class SMTPTestServer:
    """An SMTP server on 127.0.0.1 for tests, whose misbehaviour tests control.

    A delivery backend is only as good as its handling of servers that refuse,
    stall and hang up, and those are hard to reproduce against a real relay.
    This server speaks real SMTP (aiosmtpd) and lets a test script the failures
    *on the server side*, so the client code runs unmodified:

    * :meth:`fail` replies with a chosen error line at any step,
    * :meth:`drop` closes the connection instead of replying,
    * :meth:`delay` answers late, :meth:`hang` never answers,
    * :meth:`drop_all_connections` closes every open session at once.

    Steps are SMTP verbs (``"EHLO"``, ``"MAIL"``, ``"RCPT"``, ``"DATA"``,
    ``"AUTH"``, ``"STARTTLS"``, ...) plus ``"CONNECT"`` (the greeting) and
    ``"DATA_END"`` (the reply to the final ``.`` of the message). With
    ``chunking=True``, ``"DATA"`` fires at a message's first ``BDAT`` chunk,
    ``"BDAT"`` at every chunk and ``"DATA_END"`` at the reply to the last one.

    The server records what it saw: accepted :attr:`messages`, every command
    (:attr:`commands`), connections (:attr:`sessions`), AUTH attempts and client
    certificates. All accessors are thread-safe snapshots: the server runs its
    event loop in a thread of its own while the test reads from the main thread.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.

    Args:
        starttls: offer STARTTLS (certificates from ``certs``).
        implicit_tls: TLS from the first byte, as on port 465.
        certs: the certificates to use; a :class:`TLSCertificates` is created
            when a TLS mode is on and none is given.
        auth: username to password. Offers AUTH PLAIN and LOGIN and checks the
            credentials; ``None`` offers no AUTH at all.
        oauth: ``check(mailbox, token) -> bool``: offers AUTH XOAUTH2 and
            OAUTHBEARER and accepts a token when it returns True (see
            :mod:`.smtpd_oauth`; ``OAuthTestServer.check`` is one). Without
            ``auth`` only these two are offered.
        oauth_refusal: refuse tokens as ``"microsoft"`` (``535 5.7.3``) or
            ``"google"`` (a ``334`` JSON challenge, then ``535 5.7.8``) does.
        auth_require_tls: refuse AUTH (538) on a connection without TLS, as
            aiosmtpd and most servers do. Set False to allow AUTH on plain
            connections.
        require_client_cert: demand a client certificate signed by ``certs``'
            CA. With implicit TLS a client without one fails the handshake; with
            STARTTLS every command after the handshake is refused with 554.
        smtputf8: advertise SMTPUTF8.
        offer_starttls_ext: override whether EHLO advertises STARTTLS (None: iff
            ``starttls``). True advertises it even without ``starttls`` (the
            command then fails with 454); False hides it while STARTTLS still
            works for a client that sends it anyway.
        reply_delay: seconds to wait before every reply, greeting included, to
            simulate a far-away server.
        port: listen on this port (0: any free one), so a server can be
            stopped and started again where clients expect it.
        pipelining: advertise RFC 2920 PIPELINING in EHLO, as real relays do.
        chunking: advertise RFC 3030 CHUNKING in EHLO and accept ``BDAT``, as
            Postfix, Exchange and Gmail do. Without it ``BDAT`` is an unknown
            command (500), as in aiosmtpd.
        round_trip_delay: seconds one network round trip takes, to simulate a
            far-away server: the first reply to each new flight of client data
            waits this long, replies to commands that arrived in the same
            flight (pipelined) do not. ``reply_delay`` instead waits before
            every single reply.
    """

    host: str = HOST

    def __init__(
        self,
        *,
        starttls: bool = False,
        implicit_tls: bool = False,
        certs: TLSCertificates | None = None,
        auth: dict[str, str] | None = None,
        auth_require_tls: bool = True,
        require_client_cert: bool = False,
        smtputf8: bool = True,
        offer_starttls_ext: bool | None = None,
        reply_delay: float = 0.0,
        port: int = 0,
        pipelining: bool = False,
        round_trip_delay: float = 0.0,
        chunking: bool = False,
        oauth: TokenCheck | None = None,
        oauth_refusal: str = "microsoft",
    ) -> None:
        if oauth_refusal not in ("microsoft", "google"):
            raise ValueError("oauth_refusal must be 'microsoft' or 'google'")
        if starttls and implicit_tls:
            raise ValueError("choose one of starttls and implicit_tls")
        if require_client_cert and not (starttls or implicit_tls):
            raise ValueError("require_client_cert needs starttls or implicit_tls")
        if reply_delay < 0 or round_trip_delay < 0:
            raise ValueError("reply_delay and round_trip_delay must not be negative")
        if certs is None and (starttls or implicit_tls):
            certs = TLSCertificates()
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.certs = certs
        self.auth = dict(auth) if auth is not None else None
        self.auth_require_tls = auth_require_tls
        #: Checks OAuth2 tokens (AUTH XOAUTH2, OAUTHBEARER); None: not offered.
        self.oauth = oauth
        self.oauth_refusal = oauth_refusal
        self.require_client_cert = require_client_cert
        self.smtputf8 = smtputf8
        self.offer_starttls_ext = offer_starttls_ext
        #: Advertise RFC 2920 PIPELINING, as real relays do.
        self.pipelining = pipelining
        #: Advertise RFC 3030 CHUNKING (``BDAT``).
        self.chunking = chunking
        self.round_trip_delay = round_trip_delay
        self._round_trips = 0
        self.reply_delay = reply_delay
        #: 0 lets the OS pick a free port at each start; a fixed port lets a test
        #: take the server down and bring it back where clients expect it.
        self.requested_port = port

        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._messages: list[ReceivedMessage] = []
        self._commands: list[ReceivedCommand] = []
        self._chunks: list[tuple[int, bytes]] = []
        self._auth_attempts: list[AuthAttempt] = []
        self._client_cert_subjects: list[str] = []
        self._sessions = 0
        self._faults: list[_Fault] = []
        self._probing = False
        self._controller: _Controller | None = None
        # Only touched on the event loop thread.
        self._open_protocols: set[_HarnessSMTP] = set()

    def __repr__(self) -> str:
        state = f"port={self._controller.port}" if self._controller else "stopped"
        return f"<SMTPTestServer {state}>"

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Bind the port on 127.0.0.1 (ephemeral unless given) and serve from a thread.

        Returns once the server answers; :attr:`port` is then valid. The
        connection aiosmtpd's controller makes to check the server is up is not
        recorded. Can be called again after :meth:`stop` (on a new port; records
        are kept until :meth:`reset`).
        """
        if self._controller is not None:
            raise RuntimeError("the server is already running")
        controller = _Controller(
            self,
            port=self.requested_port,
            ssl_context=self._tls_context() if self.implicit_tls else None,
            tls_context=self._tls_context() if self.starttls else None,
            require_starttls=False,
            enable_SMTPUTF8=self.smtputf8,
            authenticator=self._authenticate if self.auth is not None else None,
            auth_exclude_mechanism=self._excluded_mechanisms(),
            # With implicit TLS every connection is encrypted: aiosmtpd only
            # knows about STARTTLS and would refuse AUTH there.
            auth_require_tls=self.auth_require_tls and not self.implicit_tls,
        )
        with self._lock:
            self._probing = True
        try:
            controller.start()
        except BaseException:
            _dispose(controller)
            raise
        finally:
            with self._lock:
                self._probing = False
        self._controller = controller

    @property
    def offers_auth(self) -> bool:
        """Whether EHLO offers AUTH at all (passwords, tokens or both)."""
        return self.auth is not None or self.oauth is not None

    def _excluded_mechanisms(self) -> list[str]:
        excluded = []
        if self.auth is None:
            excluded += ["PLAIN", "LOGIN"]
        if self.oauth is None:
            excluded += ["XOAUTH2", "OAUTHBEARER"]
        return excluded

    def stop(self) -> None:
        """Close every session and the listener, and join the server thread.

        Does not wait for clients: sessions are aborted, including those parked
        by :meth:`hang`. Idempotent. Records stay readable after stopping.
        """
        controller, self._controller = self._controller, None
        if controller is None:
            return
        try:
            self._run_on_loop(controller, self._close_sessions(controller.server))
        finally:
            _dispose(controller)

    def __enter__(self) -> SMTPTestServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port the server listens on (chosen by the OS at start, unless
        a ``port`` was given)."""
        if self._controller is None:
            raise RuntimeError("the server is not running")
        return int(self._controller.port)

    def _tls_context(self) -> ssl.SSLContext:
        assert self.certs is not None
        verify = ssl.CERT_NONE
        if self.require_client_cert:
            # aiosmtpd logs a warning on every connection when a STARTTLS
            # context *requires* a client certificate, so STARTTLS asks for one
            # and _HarnessSMTP.on_tls_established enforces its presence.
            verify = ssl.CERT_REQUIRED if self.implicit_tls else ssl.CERT_OPTIONAL
        return self.certs.server_context(verify_client=verify)

    def _create_protocol(
        self,
        handler: SimpleNamespace,
        smtp_kwargs: dict[str, Any],
        loop: asyncio.AbstractEventLoop,
    ) -> _HarnessSMTP:
        with self._lock:
            internal = self._probing
            if not internal:
                self._sessions += 1
            number = 0 if internal else self._sessions
        return _HarnessSMTP(
            handler,
            harness=self,
            session_number=number,
            internal=internal,
            loop=loop,
            **smtp_kwargs,
        )

    def _probe(self, port: int) -> None:
        """The controller's start-up connection: read the greeting, say QUIT."""
        try:
            with socket.create_connection((HOST, port), timeout=2.0) as sock:
                if self.implicit_tls:
                    assert self.certs is not None
                    context = self.certs.client_context(client_cert=True)
                    with context.wrap_socket(sock, server_hostname=HOST) as tls:
                        _greet_and_quit(tls)
                else:
                    _greet_and_quit(sock)
        except OSError:
            # Controller.start() reports what matters: whether aiosmtpd managed
            # to build a protocol object for the connection.
            pass

    async def _close_sessions(self, server: asyncio.AbstractServer | None) -> None:
        """On the loop: abort every session; with ``server``, also stop listening
        and let every session task finish, so the loop closes clean."""
        if server is not None:
            server.close()
            # Python 3.13+: also connections still in their TLS handshake.
            abort_clients = getattr(server, "abort_clients", None)
            if abort_clients is not None:
                abort_clients()
        protocols = list(self._open_protocols)
        for protocol in protocols:
            protocol.abort()
        if protocols:
            await asyncio.wait([p.closed for p in protocols], timeout=_SHUTDOWN_TIMEOUT)
        if server is not None:
            # What is left: the sessions' tasks winding down, and asyncio's own
            # tasks for connections still in their implicit-TLS handshake
            # (cancelling those closes their connection).
            tasks = asyncio.all_tasks() - {asyncio.current_task()}
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=_SHUTDOWN_TIMEOUT)

    def _run_on_loop(
        self, controller: _Controller, coro: Coroutine[Any, Any, None]
    ) -> None:
        future = asyncio.run_coroutine_threadsafe(coro, controller.loop)
        try:
            future.result(timeout=_SHUTDOWN_TIMEOUT * 2)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    # -- fault injection ------------------------------------------------------

    def fail(
        self,
        verb: str,
        reply: str,
        *,
        times: int | None = None,
        match: str | None = None,
    ) -> None:
        """Reply ``reply`` (e.g. ``"451 4.3.0 Try again later"``) at step ``verb``
        instead of handling it.

        Exercises the client's handling of refusals: transient (4xx) ones it
        should retry, permanent (5xx) ones it should not. A failed ``RCPT``
        leaves that recipient out of the message; a failed ``DATA_END`` means
        the message is not recorded; a failed ``CONNECT`` sends ``reply`` as
        the greeting and closes the connection.

        Args:
            verb: the step (an SMTP verb, ``"CONNECT"`` or ``"DATA_END"``).
            times: how many times the fault fires before it is used up
                (None: forever).
            match: only fire when the step's subject contains this,
                case-insensitively: the command argument (``"TO:<b@x.org>"``
                for RCPT), the envelope sender and recipients for ``DATA`` and
                ``DATA_END``, the client address for ``CONNECT``.
        """
        if not isinstance(reply, str) or not _REPLY_RE.fullmatch(reply):
            raise ValueError(
                f"reply must be one line of printable ASCII starting with a "
                f"2xx-5xx code, e.g. '451 4.3.0 Try again later'; got {reply!r}"
            )
        self._add_fault(_Kind.FAIL, verb, times, match, reply=reply)

    def drop(
        self, verb: str, *, times: int | None = None, match: str | None = None
    ) -> None:
        """Close the TCP connection abruptly at step ``verb`` instead of replying.

        Simulates a server crash or a middlebox cutting the connection: the
        client sees the connection close while waiting for a reply. With
        ``"DATA_END"`` the message is not recorded, since it was never
        acknowledged. ``times`` and ``match`` work as in :meth:`fail`.
        """
        self._add_fault(_Kind.DROP, verb, times, match)

    def delay(
        self,
        verb: str,
        seconds: float,
        *,
        times: int | None = None,
        match: str | None = None,
    ) -> None:
        """Wait ``seconds`` before handling step ``verb``, then proceed normally.

        For client timeouts and slow-server behaviour on one step (use
        ``reply_delay`` to slow down every reply). Delays add up with each other
        and with a :meth:`fail`, :meth:`drop` or :meth:`hang` on the same step,
        which take effect after the wait. ``times`` and ``match`` work as in
        :meth:`fail`.
        """
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        self._add_fault(_Kind.DELAY, verb, times, match, seconds=seconds)

    def hang(
        self, verb: str, *, times: int | None = None, match: str | None = None
    ) -> None:
        """Never reply at step ``verb``: the session stays open and silent until
        the client gives up, :meth:`drop_all_connections` or :meth:`stop`.

        The way to exercise the client's timeouts. With ``"DATA_END"`` the
        message is not recorded. ``times`` and ``match`` work as in :meth:`fail`.
        """
        self._add_fault(_Kind.HANG, verb, times, match)

    def clear_faults(self) -> None:
        """Forget every fault not used up yet; the server behaves normally again."""
        with self._lock:
            self._faults.clear()

    def drop_all_connections(self) -> None:
        """Close every open session from the server side, now.

        Simulates a server idle timeout or restart under a connection pool: the
        client's next command on any of these connections finds it closed.
        Returns once the server has closed them. New connections still work.
        """
        controller = self._controller
        if controller is None:
            raise RuntimeError("the server is not running")
        self._run_on_loop(controller, self._close_sessions(None))

    def _add_fault(
        self,
        kind: _Kind,
        verb: str,
        times: int | None,
        match: str | None,
        *,
        reply: str = "",
        seconds: float = 0.0,
    ) -> None:
        verb = verb.upper()
        if verb not in _FAULT_VERBS:
            raise ValueError(
                f"unknown step {verb!r}; expected one of {sorted(_FAULT_VERBS)}"
            )
        if times is not None and times < 1:
            raise ValueError("times must be a positive number or None (forever)")
        fault = _Fault(kind, verb, times, match, reply=reply, seconds=seconds)
        with self._lock:
            self._faults.append(fault)

    def _plan(self, verb: str, subject: str) -> _Plan:
        """Pick, and use up, the faults for one step: all matching delays, then
        the first matching fail/drop/hang in the order they were added."""
        delay = 0.0
        action: _Fault | None = None
        with self._lock:
            for fault in self._faults:
                if not fault.applies_to(verb, subject):
                    continue
                if fault.kind is _Kind.DELAY:
                    delay += fault.seconds
                elif action is None:
                    action = fault
                else:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
            self._faults = [f for f in self._faults if f.remaining != 0]
        return _Plan(delay, action)

    # -- records --------------------------------------------------------------

    def _record(
        self,
        *,
        message: ReceivedMessage | None = None,
        command: ReceivedCommand | None = None,
        auth_attempt: AuthAttempt | None = None,
        client_cert_subject: str | None = None,
    ) -> None:
        with self._changed:
            if message is not None:
                self._messages.append(message)
            if command is not None:
                self._commands.append(command)
            if auth_attempt is not None:
                self._auth_attempts.append(auth_attempt)
            if client_cert_subject is not None:
                self._client_cert_subjects.append(client_cert_subject)
            self._changed.notify_all()

    def _authenticate(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        mechanism: str,
        auth_data: Any,
    ) -> AuthResult:
        """aiosmtpd's ``authenticator``: check PLAIN/LOGIN credentials."""
        if not isinstance(auth_data, LoginPassword) or self.auth is None:
            return AuthResult(success=False, handled=False)
        username = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        success = username in self.auth and self.auth[username] == password
        self._record(auth_attempt=AuthAttempt(username, success))
        if not success:
            return AuthResult(success=False, handled=False)
        # aiosmtpd stores auth_data on the session: keep the password out of it.
        return AuthResult(success=True, auth_data=username)

    def _record_oauth(self, mailbox: str, success: bool) -> None:
        """An XOAUTH2/OAUTHBEARER attempt (the mechanism is in :attr:`commands`)."""
        self._record(auth_attempt=AuthAttempt(mailbox, success))

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Messages accepted so far, in delivery order (a snapshot)."""
        with self._lock:
            return list(self._messages)

    @property
    def commands(self) -> list[ReceivedCommand]:
        """Every command received, in order, as ``(session, VERB, argument)``.

        For assertions on the dialogue itself: no AUTH before STARTTLS, one EHLO
        per connection, how many MAIL commands a retry sent... (A snapshot.)
        """
        with self._lock:
            return list(self._commands)

    @property
    def received_chunks(self) -> list[tuple[int, bytes]]:
        """``(session, bytes)`` for each read from a client socket, in order
        (the first 512 bytes of each): shows whether a client pipelines, that
        is, sends several commands in one write. (A snapshot.)"""
        with self._lock:
            return list(self._chunks)

    def _record_chunk(self, session: int, data: bytes) -> None:
        with self._lock:
            self._chunks.append((session, bytes(data[:512])))

    @property
    def round_trips(self) -> int:
        """How many round-trip delays (``round_trip_delay``) were paid so far."""
        with self._lock:
            return self._round_trips

    def _count_round_trip(self) -> None:
        with self._lock:
            self._round_trips += 1

    @property
    def sessions(self) -> int:
        """Number of TCP connections accepted so far (connection reuse checks)."""
        with self._lock:
            return self._sessions

    @property
    def open_sessions(self) -> int:
        """Number of connections open right now, as the server sees them (a
        check that clients do not leak connections)."""
        controller = self._controller
        if controller is None:
            return 0
        future = asyncio.run_coroutine_threadsafe(self._count_open(), controller.loop)
        return future.result(timeout=_SHUTDOWN_TIMEOUT * 2)

    async def _count_open(self) -> int:
        return len(self._open_protocols)

    @property
    def auth_attempts(self) -> list[AuthAttempt]:
        """``(username, success)`` for each AUTH that reached the credential
        check. Passwords are never stored. (A snapshot.)"""
        with self._lock:
            return list(self._auth_attempts)

    @property
    def client_cert_subjects(self) -> list[str]:
        """Subjects (RFC 4514) of the client certificates presented, one per TLS
        session that presented one. (A snapshot.)"""
        with self._lock:
            return list(self._client_cert_subjects)

    def reset(self) -> None:
        """Forget messages, commands, counters and faults, e.g. between the
        phases of a test. Open connections stay open (and keep their session
        numbers); the next new one is session 1 again."""
        with self._lock:
            self._messages.clear()
            self._commands.clear()
            self._chunks.clear()
            self._round_trips = 0
            self._auth_attempts.clear()
            self._client_cert_subjects.clear()
            self._sessions = 0
            self._faults.clear()

    def wait_for_messages(self, n: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until at least ``n`` messages were accepted; return them all.

        For code that sends in the background (a thread, a queue worker).
        Raises ``AssertionError`` after ``timeout`` seconds, describing what the
        server did receive, so the test failure explains itself.
        """
        with self._changed:
            if self._changed.wait_for(lambda: len(self._messages) >= n, timeout):
                return list(self._messages)
            messages = list(self._messages)
            commands = self._commands[-30:]
        lines = [
            f"expected {n} message(s) within {timeout}s, "
            f"the server accepted {len(messages)}:"
        ]
        lines += [
            f"  session {m.session}: {m.mail_from} -> {', '.join(m.rcpt_tos)}"
            for m in messages
        ]
        lines.append("last commands received (session, verb, argument):")
        lines += [f"  {tuple(c)!r}" for c in commands] or ["  (none)"]
        raise AssertionError("\n".join(lines))


def _greet_and_quit(sock: socket.socket) -> None:
    sock.recv(1024)
    sock.sendall(b"QUIT\r\n")
    sock.recv(1024)


def _dispose(controller: _Controller) -> None:
    """Stop the controller's loop and thread, and close its loop even when
    start() failed half-way (aiosmtpd leaves it open then)."""
    controller.stop(no_assert=True)  # joins the thread
    if not controller.loop.is_closed():
        controller.loop.close()
