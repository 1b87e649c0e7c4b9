"""The test SMTP server's thread: aiosmtpd's controller, set up from the
server's options, started, and stopped without waiting for clients.

aiosmtpd runs its event loop in a thread of its own; this module owns that
thread and everything done on its loop from outside (aborting sessions,
counting them), so the server facade only ever calls blocking methods.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import ssl
import threading
from collections.abc import Coroutine
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from .harness_smtp import HarnessContext, HarnessSMTP, authenticate, make_handler
from .server_options import HOST, SMTPServerOptions

__all__ = ["SHUTDOWN_TIMEOUT", "HarnessController", "tls_context"]

#: How long stopping and :meth:`HarnessController.abort_sessions` wait for
#: sessions to wind down. Sessions are aborted, not closed politely, so this is
#: only a safety net.
SHUTDOWN_TIMEOUT = 5.0


def tls_context(options: SMTPServerOptions) -> ssl.SSLContext:
    """The server side of TLS, asking for client certificates when required."""
    assert options.certs is not None
    verify = ssl.CERT_NONE
    if options.require_client_cert:
        # aiosmtpd logs a warning on every connection when a STARTTLS context
        # *requires* a client certificate, so STARTTLS asks for one and
        # HarnessSMTP.on_tls_established enforces its presence.
        verify = ssl.CERT_REQUIRED if options.implicit_tls else ssl.CERT_OPTIONAL
    return options.certs.server_context(verify_client=verify)


def _excluded_mechanisms(options: SMTPServerOptions) -> list[str]:
    excluded = []
    if options.auth is None:
        excluded += ["PLAIN", "LOGIN"]
    if options.oauth is None:
        excluded += ["XOAUTH2", "OAUTHBEARER"]
    return excluded


class _RememberingListener(socket.socket):
    """A listening socket that keeps every connection it accepts until closed.

    asyncio hands an accepted connection to a task of its own, which owns the
    only reference. A task cancelled before its first step (or one that finds
    the server already closed, Python 3.11/3.12) drops the socket unclosed, and
    the test run warns "unclosed socket" when it is collected. Stopping the
    server closes whatever is still open here.
    """

    def __init__(self) -> None:
        # IPPROTO_TCP, as getaddrinfo gives: asyncio sets TCP_NODELAY only on
        # connections whose proto says TCP, and without it every reply waits
        # for the client's delayed ACK (40 ms a send on loopback).
        super().__init__(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.accepted: set[socket.socket] = set()

    def accept(self) -> tuple[socket.socket, Any]:
        conn, address = super().accept()
        # Forget the ones closed meanwhile: only open connections are kept.
        self.accepted = {s for s in self.accepted if s.fileno() != -1}
        self.accepted.add(conn)
        return conn, address

    def close_accepted(self) -> None:
        for conn in self.accepted:
            conn.close()
        self.accepted.clear()


class HarnessController(Controller):
    """aiosmtpd's threaded controller, creating the harness' protocol objects
    on an ephemeral port (or ``options.port``), with a start-up probe that the
    records do not count."""

    def __init__(self, context: HarnessContext) -> None:
        options = context.options
        super().__init__(
            make_handler(),
            hostname=HOST,
            port=options.port,
            ssl_context=tls_context(options) if options.implicit_tls else None,
            # Also spares SMTP.__init__ a socket.getfqdn() per connection.
            server_hostname="localhost",
            ident="hypermail-django test SMTP server",
            tls_context=tls_context(options) if options.starttls else None,
            require_starttls=False,
            enable_SMTPUTF8=options.smtputf8,
            authenticator=authenticate if options.auth is not None else None,
            auth_exclude_mechanism=_excluded_mechanisms(options),
            # With implicit TLS every connection is encrypted: aiosmtpd only
            # knows about STARTTLS and would refuse AUTH there.
            auth_require_tls=options.auth_require_tls and not options.implicit_tls,
        )
        self.context = context
        self._probing = threading.Event()
        self._listener: _RememberingListener | None = None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Serve from the thread; on failure, leave no thread or loop behind."""
        try:
            super().start()
        except BaseException:
            self.dispose()
            raise

    def shutdown(self) -> None:
        """Close every session and the listener, and join the thread."""
        try:
            self._run_on_loop(self._close_sessions(self.server))
        finally:
            self.dispose()

    def dispose(self) -> None:
        """Stop the loop and thread, and close the loop even when start()
        failed half-way (aiosmtpd leaves it open then)."""
        self.stop(no_assert=True)  # joins the thread
        if not self.loop.is_closed():
            self.loop.close()

    def _create_server(self) -> Coroutine[Any, Any, asyncio.AbstractServer]:
        """Listen on a socket that remembers its connections (see
        :class:`_RememberingListener`); otherwise as aiosmtpd does."""
        listener = _RememberingListener()
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.hostname, self.port))
            listener.listen(100)  # asyncio's default backlog
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        return self.loop.create_server(
            self._factory_invoker, sock=listener, ssl=self.ssl_context
        )

    # -- sessions -------------------------------------------------------------

    def factory(self) -> SMTP:
        internal = self._probing.is_set()
        return HarnessSMTP(
            self.handler,
            context=self.context,
            session_number=0 if internal else self.context.records.new_session(),
            internal=internal,
            loop=self.loop,
            **self.SMTP_kwargs,
        )

    def abort_sessions(self) -> None:
        """Close every open session from the server side; return once closed."""
        self._run_on_loop(self._close_sessions(None))

    def open_sessions(self) -> int:
        """How many sessions are open now, as the loop sees them."""
        future = asyncio.run_coroutine_threadsafe(self._count_open(), self.loop)
        return future.result(timeout=SHUTDOWN_TIMEOUT * 2)

    async def _count_open(self) -> int:
        return len(self.context.open_sessions)

    async def _close_sessions(self, server: asyncio.AbstractServer | None) -> None:
        """On the loop: abort every session; with ``server``, also stop listening
        and let every session task finish, so the loop closes clean."""
        if server is not None:
            # One loop turn first: a connection accepted in this turn gets its
            # handshake task now, so the task is either started before the
            # server closes or cancelled below before it starts (its socket is
            # then closed at the end). Started after the close, it would meet a
            # closed server and leave half-built transports (Python 3.11/3.12).
            await asyncio.sleep(0)
            server.close()
            # Python 3.13+: also connections still in their TLS handshake.
            abort_clients = getattr(server, "abort_clients", None)
            if abort_clients is not None:
                abort_clients()
        protocols = list(self.context.open_sessions)
        for protocol in protocols:
            protocol.abort()
        if protocols:
            await asyncio.wait([p.closed for p in protocols], timeout=SHUTDOWN_TIMEOUT)
        if server is not None:
            # What is left: the sessions' tasks winding down, and asyncio's own
            # tasks for connections still in their implicit-TLS handshake
            # (cancelling those closes their connection).
            tasks = asyncio.all_tasks() - {asyncio.current_task()}
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=SHUTDOWN_TIMEOUT)
            if self._listener is not None:
                self._listener.close_accepted()

    def _run_on_loop(self, coro: Coroutine[Any, Any, None]) -> None:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            future.result(timeout=SHUTDOWN_TIMEOUT * 2)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    # -- start-up probe -------------------------------------------------------

    def _trigger_server(self) -> None:
        # Controller.start() connects once so that aiosmtpd builds a protocol
        # object and start-up errors surface. The stock probe knows neither the
        # ephemeral port nor client certificates.
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self._probing.set()
        try:
            self._probe()
        finally:
            self._probing.clear()

    def _probe(self) -> None:
        """The start-up connection: read the greeting, say QUIT."""
        options = self.context.options
        try:
            with socket.create_connection((HOST, self.port), timeout=2.0) as sock:
                if options.implicit_tls:
                    assert options.certs is not None
                    context = options.certs.client_context(client_cert=True)
                    with context.wrap_socket(sock, server_hostname=HOST) as tls:
                        _greet_and_quit(tls)
                else:
                    _greet_and_quit(sock)
        except OSError:
            # Controller.start() reports what matters: whether aiosmtpd managed
            # to build a protocol object for the connection.
            pass


def _greet_and_quit(sock: socket.socket) -> None:
    sock.recv(1024)
    sock.sendall(b"QUIT\r\n")
    sock.recv(1024)
