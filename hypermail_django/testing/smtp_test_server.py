"""The test SMTP server itself: :class:`SMTPTestServer`, the one object a test
starts, scripts and reads.

Mocking ``smtplib`` only proves that the code calls ``smtplib`` the way its author
believed a server behaves. :class:`SMTPTestServer` instead runs aiosmtpd on
127.0.0.1 in a background thread, so the code under test talks real SMTP over a
real socket (plain, STARTTLS or implicit TLS, with or without AUTH and client
certificates), and a test makes that server misbehave on purpose: reply with an
error, drop the connection, answer slowly or not at all, at any step of the
dialogue. Everything the server saw is recorded for assertions.

This class only puts the parts together: options (:mod:`.server_options`),
faults (:mod:`.faults`), records (:mod:`.server_records`), the protocol
(:mod:`.harness_smtp`) and its thread (:mod:`.server_thread`). Nothing here
imports Django: it serves this project's own test suite and users' test suites
alike (``pip install hypermail-django[testing]``).

Example::

    with SMTPTestServer() as server:
        server.fail("RCPT", "451 4.3.0 Try again later", times=1)
        ...  # send through the code under test, to server.host / server.port
        [message] = server.wait_for_messages(1)
        assert message.rcpt_tos == ["someone@example.com"]
"""

from __future__ import annotations

import dataclasses
from types import TracebackType
from typing import Any

from .certificates import TLSCertificates
from .faults import Fault, FaultKind, FaultSchedule
from .harness_smtp import HarnessContext
from .server_options import HOST, SMTPServerOptions
from .server_records import AuthAttempt, ReceivedCommand, ReceivedMessage, ServerRecords
from .server_thread import HarnessController

__all__ = ["SMTPTestServer"]


def _option(name: str, doc: str = "") -> Any:
    """A read-only attribute showing one of the server's options."""
    return property(lambda self: getattr(self.options, name), doc=doc or None)


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

    The options come as keywords, or as one frozen
    :class:`~.server_options.SMTPServerOptions` (``options``) that a suite can
    define once; keywords given with ``options`` override it. They stay
    readable as attributes (``server.chunking``...).

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
        self, options: SMTPServerOptions | None = None, **keywords: Any
    ) -> None:
        options = options or SMTPServerOptions()
        if keywords:
            options = dataclasses.replace(options, **keywords)
        if options.certs is None and options.tls:
            options = dataclasses.replace(options, certs=TLSCertificates())
        self.options: SMTPServerOptions = options
        """Every option of this server, frozen."""
        self._records = ServerRecords()
        self._faults = FaultSchedule()
        self._context = HarnessContext(options, self._records, self._faults, set())
        self._controller: HarnessController | None = None

    starttls = _option("starttls")
    implicit_tls = _option("implicit_tls")
    certs = _option("certs", "The certificates of a TLS server (else None).")
    auth = _option("auth")
    auth_require_tls = _option("auth_require_tls")
    oauth = _option("oauth", "Checks OAuth2 tokens (XOAUTH2, OAUTHBEARER).")
    oauth_refusal = _option("oauth_refusal")
    require_client_cert = _option("require_client_cert")
    smtputf8 = _option("smtputf8")
    offer_starttls_ext = _option("offer_starttls_ext")
    pipelining = _option("pipelining", "Advertise RFC 2920 PIPELINING.")
    chunking = _option("chunking", "Advertise RFC 3030 CHUNKING (``BDAT``).")
    round_trip_delay = _option("round_trip_delay")
    reply_delay = _option("reply_delay")
    requested_port = _option(
        "port",
        "0 lets the OS pick a free port at each start; a fixed port lets a test "
        "take the server down and bring it back where clients expect it.",
    )
    offers_auth = _option("offers_auth", "Whether EHLO offers AUTH at all.")

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
        controller = HarnessController(self._context)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        """Close every session and the listener, and join the server thread.

        Does not wait for clients: sessions are aborted, including those parked
        by :meth:`hang`. Idempotent. Records stay readable after stopping.
        """
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.shutdown()

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

    @property
    def running(self) -> bool:
        """Whether the server is serving (between :meth:`start` and :meth:`stop`)."""
        return self._controller is not None

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
        self.inject(Fault(FaultKind.FAIL, verb, times, match, reply=reply))

    def drop(
        self, verb: str, *, times: int | None = None, match: str | None = None
    ) -> None:
        """Close the TCP connection abruptly at step ``verb`` instead of replying.

        Simulates a server crash or a middlebox cutting the connection: the
        client sees the connection close while waiting for a reply. With
        ``"DATA_END"`` the message is not recorded, since it was never
        acknowledged. ``times`` and ``match`` work as in :meth:`fail`.
        """
        self.inject(Fault(FaultKind.DROP, verb, times, match))

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
        self.inject(Fault(FaultKind.DELAY, verb, times, match, seconds=seconds))

    def hang(
        self, verb: str, *, times: int | None = None, match: str | None = None
    ) -> None:
        """Never reply at step ``verb``: the session stays open and silent until
        the client gives up, :meth:`drop_all_connections` or :meth:`stop`.

        The way to exercise the client's timeouts. With ``"DATA_END"`` the
        message is not recorded. ``times`` and ``match`` work as in :meth:`fail`.
        """
        self.inject(Fault(FaultKind.HANG, verb, times, match))

    def inject(self, fault: Fault) -> None:
        """Add a fault built beforehand (what :meth:`fail`, :meth:`drop`,
        :meth:`delay` and :meth:`hang` do), e.g. one a suite shares."""
        self._faults.add(fault)

    def clear_faults(self) -> None:
        """Forget every fault not used up yet; the server behaves normally again."""
        self._faults.clear()

    def drop_all_connections(self) -> None:
        """Close every open session from the server side, now.

        Simulates a server idle timeout or restart under a connection pool: the
        client's next command on any of these connections finds it closed.
        Returns once the server has closed them. New connections still work.
        """
        if self._controller is None:
            raise RuntimeError("the server is not running")
        self._controller.abort_sessions()

    # -- records --------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Messages accepted so far, in delivery order (a snapshot)."""
        return self._records.messages

    @property
    def commands(self) -> list[ReceivedCommand]:
        """Every command received, in order, as ``(session, VERB, argument)``.

        For assertions on the dialogue itself: no AUTH before STARTTLS, one EHLO
        per connection, how many MAIL commands a retry sent... (A snapshot.)
        """
        return self._records.commands

    @property
    def received_chunks(self) -> list[tuple[int, bytes]]:
        """``(session, bytes)`` for each read from a client socket, in order
        (the first 512 bytes of each): shows whether a client pipelines, that
        is, sends several commands in one write. (A snapshot.)"""
        return self._records.reads

    @property
    def round_trips(self) -> int:
        """How many round-trip delays (``round_trip_delay``) were paid so far."""
        return self._records.round_trips

    @property
    def sessions(self) -> int:
        """Number of TCP connections accepted so far (connection reuse checks)."""
        return self._records.sessions

    @property
    def open_sessions(self) -> int:
        """Number of connections open right now, as the server sees them (a
        check that clients do not leak connections)."""
        controller = self._controller
        return 0 if controller is None else controller.open_sessions()

    @property
    def auth_attempts(self) -> list[AuthAttempt]:
        """``(username, success)`` for each AUTH that reached the credential
        check. Passwords are never stored. (A snapshot.)"""
        return self._records.auth_attempts

    @property
    def client_cert_subjects(self) -> list[str]:
        """Subjects (RFC 4514) of the client certificates presented, one per TLS
        session that presented one. (A snapshot.)"""
        return self._records.client_cert_subjects

    def reset(self) -> None:
        """Forget messages, commands, counters and faults, e.g. between the
        phases of a test. Open connections stay open (and keep their session
        numbers); the next new one is session 1 again."""
        self._records.clear()
        self._faults.clear()

    def wait_for_messages(self, n: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until at least ``n`` messages were accepted; return them all.

        For code that sends in the background (a thread, a queue worker).
        Raises ``AssertionError`` after ``timeout`` seconds, describing what the
        server did receive, so the test failure explains itself.
        """
        return self._records.wait_for_messages(n, timeout)
